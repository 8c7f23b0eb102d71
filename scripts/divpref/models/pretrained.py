"""Off-the-shelf reward models (``method: pretrained``): score pairs with an existing model, no training.

The model is a sequence-classification reward model with one output (e.g.
``Skywork/Skywork-Reward-Gemma-2-27B`` or a local folder). Each response is rendered with the model's OWN chat
template (user: prompt, assistant: response; :func:`divpref.models.tokenization.encode_text`), and the scalar
output is the reward. Batching and length-sorting are :mod:`divpref.models.inference`'s. The score file has
``reward_a``/``reward_b``; the other columns are null (a single-value model).

Padding: a sequence-classification head scores the rightmost token that is not ``config.pad_token_id``. A
tokenizer without a pad token would pad with EOS, and a chat template that ends in EOS would then be scored
one token early. :func:`pooling_pad_id` therefore pads with an id that occurs in none of the scored sequences,
so every response is scored at its own last token, exactly as unpadded one-at-a-time scoring does (tested).

torch and transformers are imported inside the functions only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from divpref.common.constants import BT
from divpref.models.inference import head_outputs, unique_texts
from divpref.models.methods import get_method, scores_frame
from divpref.models.tokenization import encode_text

log = logging.getLogger(__name__)

SCALAR_METHOD = BT
"""The registered method whose score columns a scalar reward model writes (reward_a, reward_b; rest null)."""


def pooling_pad_id(encoded: Sequence[Sequence[int]], preferred: int | None, vocab_size: int) -> int:
    """A pad id that no sequence contains: ``preferred`` if possible, else the smallest unused id."""
    used = {token for sequence in encoded for token in sequence}
    if preferred is not None and preferred not in used:
        return int(preferred)
    for candidate in range(vocab_size):
        if candidate not in used:
            return candidate
    raise ValueError(f"every one of the {vocab_size} token ids occurs in the texts: no id left for padding")


def load_kwargs(model_cfg: Mapping[str, Any], device: str) -> dict[str, Any]:
    """``from_pretrained`` kwargs: on GPU bf16, or 8 bits when ``load_in_8bit``, spread over visible GPUs.

    On CPU the model loads in fp32 (bitsandbytes' 8-bit kernels need CUDA; ``load_in_8bit`` is then ignored
    with a warning).
    """
    kwargs: dict[str, Any] = {
        "revision": model_cfg.get("revision") or None,
        "trust_remote_code": bool(model_cfg.get("trust_remote_code", False)),
    }
    if device != "cuda":
        if model_cfg.get("load_in_8bit"):
            log.warning("load_in_8bit needs CUDA; loading %s in fp32 on CPU", model_cfg["name_or_path"])
        return kwargs
    import torch

    kwargs["device_map"] = "auto"
    if model_cfg.get("load_in_8bit"):
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    else:
        kwargs["dtype"] = torch.bfloat16
    return kwargs


def check_reward_model(source: str, config: Any) -> None:
    """Refuse a checkpoint that is not a one-output sequence-classifier (its head would be random)."""
    architectures = list(getattr(config, "architectures", None) or [])
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        raise ValueError(
            f"{source}: not a sequence-classification reward model (architectures {architectures}); "
            f"loading it would add a randomly initialised head"
        )
    if int(getattr(config, "num_labels", 1)) != 1:
        raise ValueError(f"{source}: the head has {config.num_labels} outputs; a scalar reward model has 1")


def load_pretrained(model_cfg: Mapping[str, Any], device: str) -> tuple[Any, Any]:
    """``(model in eval mode, tokenizer)`` of a pretrained reward model; its tokenizer has a chat template."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    source = model_cfg["name_or_path"]
    kwargs = load_kwargs(model_cfg, device)
    common = {"revision": kwargs["revision"], "trust_remote_code": kwargs["trust_remote_code"]}
    check_reward_model(source, AutoConfig.from_pretrained(source, **common))
    tokenizer = AutoTokenizer.from_pretrained(source, **common)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"{source}: the tokenizer has no chat template; a pretrained reward model needs its own"
        )
    model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
    if "device_map" not in kwargs:
        model = model.to(device)
    return model.eval(), tokenizer


def score_pairs(
    model: Any, tokenizer: Any, pairs: pl.DataFrame, *, max_length: int, batch_size: int, device: str
) -> pl.DataFrame:
    """The score-file frame of ``pairs`` (pair_id, prompt, response_a, response_b), in ``pairs`` order."""
    texts, index_a, index_b = unique_texts(pairs)
    encoded = [encode_text(tokenizer, prompt, response, max_length) for prompt, response in texts]
    vocab_size = min(len(tokenizer), int(getattr(model.config, "vocab_size", None) or len(tokenizer)))
    pad_id = pooling_pad_id(encoded, tokenizer.pad_token_id, vocab_size)
    model.config.pad_token_id = pad_id
    log.info(
        "scoring %d pairs (%d distinct texts) on %s, pad id %d", pairs.height, len(texts), device, pad_id
    )
    outputs = head_outputs(model, encoded, pad_id, batch_size, device)
    if outputs.shape[1] != 1:
        raise ValueError(f"the reward model has {outputs.shape[1]} outputs; a scalar reward model has 1")
    return scores_frame(
        get_method(SCALAR_METHOD), pairs["pair_id"].to_list(), outputs[index_a], outputs[index_b]
    )
