"""Loading the reward-model backbone: sequence-classification head, pad handling, 8-bit, LoRA.

torch/transformers/peft are imported inside the functions (this module is imported by rule scripts only).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from divpref.common.devices import compute_device

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

HEAD_MODULE_NAMES = ("score", "classifier")
"""Names of the freshly initialised classification head (decoders: ``score``; BERT: ``classifier``)."""

HEAD_INFO_FILE = "reward_head.json"
"""Written beside an exported adapter: the ``num_labels`` and ``pad_token_id`` to load the base model with,
and the ``compute_dtype`` (``float32`` or ``bfloat16`` autocast) that training and dev evaluation ran at."""


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give the tokenizer a pad token (decoder models such as Llama have none: reuse EOS) and right padding.

    The classification head scores the rightmost token that is not the pad token, so padding on the right with
    ``pad = eos`` scores the last real token before any trailing EOS, identically for every sequence.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def head_module_name(model: Any) -> str:
    """Name of the model's classification head module; ``ValueError`` if none of the known names exists."""
    names = {name for name, _ in model.named_children()}
    for candidate in HEAD_MODULE_NAMES:
        if candidate in names:
            return candidate
    raise ValueError(
        f"no classification head among {HEAD_MODULE_NAMES} in {type(model).__name__}: {sorted(names)}"
    )


def lora_config(model_cfg: Mapping[str, Any], head_name: str) -> Any:
    """peft LoRA config for sequence classification; the head is fully trained and saved (modules_to_save)."""
    from peft import LoraConfig, TaskType

    lora = model_cfg["lora"]
    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=int(lora.get("r", 16)),
        lora_alpha=float(lora.get("alpha", 32)),
        lora_dropout=float(lora.get("dropout", 0.0)),
        target_modules=list(lora["target_modules"]),
        modules_to_save=[head_name],
    )


def quantization_config(model_cfg: Mapping[str, Any]) -> Any | None:
    """``BitsAndBytesConfig(load_in_8bit=True)`` when config asks for 8 bits, else ``None``.

    The new head is skipped: on CPU an int8 head fails with ``'Parameter' object has no attribute 'CB'``.
    """
    if not model_cfg.get("load_in_8bit", False):
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(HEAD_MODULE_NAMES))


def load_backbone(
    model_cfg: Mapping[str, Any],
    num_labels: int,
    for_training: bool = True,
    gradient_checkpointing: bool = False,
    device: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``model_cfg['name_or_path']`` with a ``num_labels`` head; wrap in LoRA when ``for_training``.

    Returns ``(model, tokenizer)``; ``model.config.pad_token_id`` is the tokenizer's pad token so the last
    non-pad token of every sequence is scored. The KV cache is off (nothing here generates text).
    ``gradient_checkpointing`` turns on non-reentrant activation checkpointing (it works with 8 bits and
    LoRA: non-reentrant checkpointing needs no input that requires grad). ``device`` places an 8-bit model
    (bitsandbytes quantizes while loading); default: the first GPU, else the CPU.
    """
    quiet_bitsandbytes_casts()
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = model_cfg["name_or_path"]
    common = {
        "revision": model_cfg.get("revision", None),
        "trust_remote_code": bool(model_cfg.get("trust_remote_code", False)),
    }
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(source, **common))
    quantization = quantization_config(model_cfg)
    placement = {}
    if quantization is not None:
        # bitsandbytes quantizes while loading, so the device is chosen here (the trainer does not move it).
        placement["device_map"] = {"": device or compute_device(local_rank=0)}
    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        num_labels=num_labels,
        pad_token_id=tokenizer.pad_token_id,
        quantization_config=quantization,
        **placement,
        **common,
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    if not for_training:
        return model, tokenizer
    checkpointing = {"use_reentrant": False}
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs=checkpointing,
        )
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing)
    from peft import get_peft_model

    model = get_peft_model(model, lora_config(model_cfg, head_module_name(model)))
    match_training_dtypes(model, quantized=quantization is not None)
    return model, tokenizer


TRAINED_PARAMETER_MARKERS = ("lora_", "modules_to_save")
"""Name parts of the parameters LoRA training updates: the adapters and the trained copy of the head."""


def match_training_dtypes(model: Any, quantized: bool) -> Any:
    """Cast ``model``'s parameters to the dtypes training uses, in place; training and scoring both call it.

    * 8 bit: every parameter that is not int8 goes to fp32 (embeddings, norms, the head), exactly the cast of
      peft's ``prepare_model_for_kbit_training``;
    * otherwise: the trained parameters (LoRA adapters, the head's trained copy) go to fp32; the frozen
      backbone keeps the checkpoint's dtype. A bf16 head would not move at small learning rates: most
      AdamW updates of a bf16 weight are below its rounding step.
    """
    import torch

    for name, param in model.named_parameters():
        if param.dtype not in (torch.float16, torch.bfloat16):
            continue
        if quantized or any(marker in name for marker in TRAINED_PARAMETER_MARKERS):
            param.data = param.data.to(torch.float32)
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if (
            "modules_to_save" in name
            and own
            and own[0].dtype == torch.float32
            and not getattr(module, "_divpref_fp32_inputs", False)
        ):
            # The fp32 head copy reads the frozen bf16 backbone's hidden states: cast them (LoRA's own layers
            # cast their inputs already).
            module.register_forward_pre_hook(_inputs_to_fp32)
            module._divpref_fp32_inputs = True
    return model


ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
"""The trained weights of a PEFT adapter folder (LoRA matrices and the trained head)."""


def reload_adapter_weights(model: Any, adapter_dir: str | Path) -> None:
    """Copy an adapter folder's saved weights into ``model`` (a PeftModel), unchanged by any earlier cast."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    result = set_peft_model_state_dict(model, load_file(str(Path(adapter_dir) / ADAPTER_WEIGHTS_FILE)))
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"{adapter_dir}: adapter has unexpected keys {unexpected[:5]}")


def _inputs_to_fp32(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: floating-point tensor inputs to fp32 (a no-op for fp32 inputs)."""
    import torch

    return tuple(
        arg.float() if isinstance(arg, torch.Tensor) and arg.is_floating_point() else arg for arg in args
    )


class _OncePerMessage(logging.Filter):
    """Let the first record of each distinct message through, drop the repeats."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


BITSANDBYTES_CAST_LOGGER = "bitsandbytes.autograd._functions"
"""bitsandbytes logs "MatMul8bitLt: inputs will be cast from <dtype> to float16" on EVERY int8 matmul."""


def quiet_bitsandbytes_casts() -> None:
    """Keep bitsandbytes' per-call cast warning to its first occurrence per dtype (idempotent).

    Measured before: 7 lines per layer per forward pass, about 3 GB of job logs over the paper grid.
    """
    logger = logging.getLogger(BITSANDBYTES_CAST_LOGGER)
    if not any(isinstance(existing, _OncePerMessage) for existing in logger.filters):
        logger.addFilter(_OncePerMessage())


def write_head_info(
    adapter_dir: str | Path, num_labels: int, pad_token_id: int, compute_dtype: str = "float32"
) -> None:
    """Record the base-model kwargs an exported adapter needs (:func:`load_for_inference` reads them)."""
    info = {"num_labels": int(num_labels), "pad_token_id": int(pad_token_id), "compute_dtype": compute_dtype}
    Path(adapter_dir, HEAD_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


def scores_in_bf16(adapter_dir: str | Path) -> bool:
    """Whether an exported adapter was trained and dev-evaluated under bf16 autocast (then score it so)."""
    info = json.loads(Path(adapter_dir, HEAD_INFO_FILE).read_text())
    return info.get("compute_dtype", "float32") == "bfloat16"


def load_for_inference(
    adapter_dir: str | Path, device: str = "cpu", base_model: str | Path | None = None, **kwargs: Any
) -> tuple[Any, Any]:
    """Load an exported adapter folder for scoring: ``(model in eval mode on device, tokenizer)``.

    Plain ``AutoPeftModelForSequenceClassification.from_pretrained(adapter_dir, num_labels=n,
    pad_token_id=p)`` does the same; ``n`` and ``p`` come from ``reward_head.json`` in the folder.
    ``kwargs`` go to ``from_pretrained`` (e.g. ``quantization_config``). ``base_model``: load the base from
    this folder instead of the adapter's ``base_model_name_or_path`` (a hub id: the workflow's jobs load the
    downloaded copy with the hub offline). The parameters get training's dtypes
    (:func:`match_training_dtypes`), so a model scores as it was evaluated on dev.
    """
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoTokenizer

    quiet_bitsandbytes_casts()
    adapter_dir = Path(adapter_dir)
    info = json.loads((adapter_dir / HEAD_INFO_FILE).read_text())
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(adapter_dir))
    head = {"num_labels": info["num_labels"], "pad_token_id": info["pad_token_id"]}
    if base_model is None:
        model = AutoPeftModelForSequenceClassification.from_pretrained(str(adapter_dir), **head, **kwargs)
    else:
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification

        base = AutoModelForSequenceClassification.from_pretrained(str(base_model), **head, **kwargs)
        model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.config.pad_token_id = info["pad_token_id"]
    model.config.use_cache = False
    quantized = bool(getattr(model, "is_loaded_in_8bit", False) or "quantization_config" in kwargs)
    match_training_dtypes(model, quantized=quantized)
    # peft loaded the trained weights into parameters of the checkpoint's dtype (bf16 for hub Llama-3), which
    # rounds them; load them again into the fp32 parameters, exactly as they were saved.
    reload_adapter_weights(model, adapter_dir)
    if not quantized:  # a quantized model sits where its device_map put it
        model = model.to(device)
    return model.eval(), tokenizer
