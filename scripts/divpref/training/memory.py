"""Peak GPU memory of one training step: a fitted linear model, and the pre-flight check of GPU jobs.

``bench/bench_memory.py`` measures one real training step (the project's 8-bit + LoRA load path) on CPU,
on the configured backbone's architecture with 1-2 decoder layers, and fits

    peak = static_base + L * static_per_layer                   (weights, LoRA, head: resident)
         + step_base + L * step_per_layer                       (per-step buffers: dequantized weights, ...)
         + T * (per_token + L * per_token_per_layer)             (activations kept for backward, T tokens)

with ``T = 2 * micro_batch_size * max_length`` (both responses of every pair, padded to ``max_length``: the
worst case) and ``L`` the backbone's decoder layers. The coefficients it measured for Llama-3-8B's
architecture are :data:`LLAMA3_8B_FIT`; GPU jobs use them before loading the model (:func:`preflight`).
On a GPU, CUDA's context and the caching allocator add :data:`CUDA_CONTEXT_BYTES` and
:data:`ALLOCATOR_MARGIN` on top (assumptions).

The fit is the worst case of bitsandbytes' CUDA training kernel: on CUDA, ``MatMul8bitLt`` returns its output
in its input's dtype (fp32 after 8-bit preparation, unless outlier columns exist); on CPU bitsandbytes runs
``MatMul8bitFp``, whose output follows bf16 autocast. bench_memory therefore measures with the int8 matmuls'
outputs in their input's dtype, as on CUDA. Once rule gpu_check has measured a real training step on a GPU
(:data:`GPU_CHECK_FILE`), :func:`training_peak` takes that measurement where it is higher.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2

GPU_CHECK_FILE = "results/gpu_check.json"
"""Rule gpu_check's record (divpref.training.gpu_check), relative to the workflow's working directory."""

LLAMA3_8B_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-05,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
}
"""The published config.json values of meta-llama/Meta-Llama-3-8B(-Instruct): the fallback when the configured
backbone's config.json is not available locally (the hub is gated and often unreachable)."""

CUDA_CONTEXT_BYTES = int(0.75 * GIB)
"""CUDA context, cuBLAS workspace and kernels: about 0.5-1 GiB per process on Ampere GPUs (assumption)."""

ALLOCATOR_MARGIN = 0.10
"""Share added for the caching allocator's fragmentation (assumption)."""


@dataclass(frozen=True)
class MemoryFit:
    """Fitted coefficients (bytes) of one training setup (dtype, checkpointing) on one architecture."""

    static_base: float
    static_per_layer: float
    step_base: float
    step_per_layer: float
    per_token: float
    per_token_per_layer: float

    def predict(self, layers: int, tokens: int, extra_static: float = 0.0) -> float:
        """Peak bytes of one step with ``layers`` decoder layers over ``tokens`` tokens (no CUDA overhead)."""
        return (
            self.static_base
            + extra_static
            + layers * self.static_per_layer
            + self.step_base
            + layers * self.step_per_layer
            + tokens * (self.per_token + layers * self.per_token_per_layer)
        )


LLAMA3_8B_FIT: dict[bool, MemoryFit] = {
    # gradient_checkpointing -> fit (bytes), measured by bench/bench_memory.py on this project's CPU machine
    # (bf16 autocast, 8 bit + LoRA r=16 on q/k/v/o, AdamW; 1 and 2 layers x 128 and 384 tokens; the int8
    # matmuls' outputs in their input's dtype, CUDA's MatMul8bitLt worst case; the measured model has the
    # offline 30,522-token vocabulary, the full vocabulary's embedding is added by embedding_correction).
    # Rerun the bench after changing the load path and paste its coefficients here.
    False: MemoryFit(
        static_base=476.9536 * MIB,
        static_per_layer=209.6563 * MIB,
        step_base=336.2985 * MIB,
        step_per_layer=0.8125 * MIB,
        per_token=-0.0267 * MIB,
        per_token_per_layer=0.3948 * MIB,
    ),
    True: MemoryFit(
        static_base=476.9536 * MIB,
        static_per_layer=209.6563 * MIB,
        step_base=337.1315 * MIB,
        step_per_layer=0.0049 * MIB,
        per_token=0.3759 * MIB,
        per_token_per_layer=0.1094 * MIB,
    ),
}


def step_tokens(micro_batch_size: int, max_length: int) -> int:
    """Tokens of one micro-batch at the worst case: both responses of every pair padded to ``max_length``."""
    return 2 * micro_batch_size * max_length


def with_cuda_overhead(peak_bytes: float) -> float:
    """``peak_bytes`` plus the allocator margin and the CUDA context."""
    return peak_bytes * (1 + ALLOCATOR_MARGIN) + CUDA_CONTEXT_BYTES


def architecture_config(model_cfg: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The backbone's config.json values and their source (a local file, the HF cache, or the fallback).

    Never touches the network: a hub id is looked up in the local Hugging Face cache only.
    """
    source = str(model_cfg["name_or_path"])
    local = Path(source) / "config.json"
    if local.is_file():
        return json.loads(local.read_text()), str(local)
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, "config.json", revision=model_cfg.get("revision"))
    except Exception:  # an id that is not a valid repo name, or no huggingface_hub
        cached = None
    if isinstance(cached, str) and Path(cached).is_file():
        return json.loads(Path(cached).read_text()), cached
    return dict(LLAMA3_8B_CONFIG), "published Llama-3-8B config (embedded; no local config.json)"


def scaled_fit(fit: MemoryFit, architecture: Mapping[str, Any]) -> MemoryFit:
    """``fit`` (measured on Llama-3-8B) scaled to another architecture by its hidden and intermediate sizes.

    A rough transfer for other backbones: resident bytes per layer scale with the layer's weights
    (~ h^2 + 3 h I), activation bytes per token with (h + I). Exact for Llama-3-8B itself.
    """
    h, i = float(architecture["hidden_size"]), float(architecture["intermediate_size"])
    h0, i0 = float(LLAMA3_8B_CONFIG["hidden_size"]), float(LLAMA3_8B_CONFIG["intermediate_size"])
    weights = (h * h + 3 * h * i) / (h0 * h0 + 3 * h0 * i0)
    tokens = (h + i) / (h0 + i0)
    return MemoryFit(
        static_base=fit.static_base * h / h0,
        static_per_layer=fit.static_per_layer * weights,
        step_base=fit.step_base * h / h0,
        step_per_layer=fit.step_per_layer * weights,
        per_token=fit.per_token * h / h0,
        per_token_per_layer=fit.per_token_per_layer * tokens,
    )


def embedding_correction(architecture: Mapping[str, Any], measured_vocab: int) -> float:
    """Resident bytes of the embedding rows beyond ``measured_vocab`` (fp32 after 8-bit preparation)."""
    return 4.0 * float(architecture["hidden_size"]) * (int(architecture["vocab_size"]) - measured_vocab)


MEASURED_VOCAB = 30522
"""Vocabulary of the model bench_memory measures (the offline WordPiece tokenizer's)."""


def predict_training_peak(
    architecture: Mapping[str, Any],
    micro_batch_size: int,
    max_length: int,
    gradient_checkpointing: bool,
    fits: Mapping[bool, MemoryFit] | None = None,
) -> float:
    """Predicted peak GPU bytes (CUDA overhead included) of one training step of the configured run."""
    fit = scaled_fit((fits or LLAMA3_8B_FIT)[bool(gradient_checkpointing)], architecture)
    peak = fit.predict(
        int(architecture["num_hidden_layers"]),
        step_tokens(micro_batch_size, max_length),
        embedding_correction(architecture, MEASURED_VOCAB),
    )
    return with_cuda_overhead(peak)


class GpuMemoryError(RuntimeError):
    """The configured run is predicted not to fit the visible GPU."""


def check_fits(
    predicted: float, available: float, micro_batch_size: int, gradient_checkpointing: bool
) -> None:
    """``GpuMemoryError`` naming the config keys to change when ``predicted`` exceeds ``available`` bytes."""
    if predicted <= available:
        return
    advice = "lower training.micro_batch_size (batch_size stays: gradients accumulate)"
    if micro_batch_size == 1:
        advice = "lower training.max_length"
    if not gradient_checkpointing:
        advice = f"set training.gradient_checkpointing: true, or {advice}"
    raise GpuMemoryError(
        f"predicted peak {predicted / GIB:.1f} GiB does not fit the GPU's {available / GIB:.1f} GiB "
        f"(training.micro_batch_size {micro_batch_size}, training.gradient_checkpointing "
        f"{str(bool(gradient_checkpointing)).lower()}): {advice}; bench/bench_memory.py prints the table"
    )


def predicted_peak(model_cfg: Mapping[str, Any], params: Any) -> float | None:
    """The memory model's peak bytes of the configured run (8-bit backbones only, the path it measured)."""
    if not model_cfg.get("load_in_8bit", False):
        return None
    architecture, _ = architecture_config(model_cfg)
    return predict_training_peak(
        architecture, params.pairs_per_micro_batch, params.max_length, params.gradient_checkpointing
    )


def measured_peak(
    model_cfg: Mapping[str, Any], params: Any, path: str | Path = GPU_CHECK_FILE
) -> float | None:
    """Peak reserved bytes gpu_check measured on a GPU for this backbone and these settings, else None."""
    path = Path(path)
    if not path.is_file():
        return None
    check = json.loads(path.read_text())
    same_setup = (
        check.get("device") == "cuda"
        and check.get("peak_memory_gib")
        and check.get("model") == str(model_cfg["name_or_path"])
        and check.get("load_in_8bit") == bool(model_cfg.get("load_in_8bit", False))
        and check.get("micro_batch_size") == params.pairs_per_micro_batch
        and check.get("max_length") == params.max_length
        and check.get("gradient_checkpointing") == bool(params.gradient_checkpointing)
    )
    return float(check["peak_memory_gib"]["reserved"]) * GIB if same_setup else None


def training_peak(
    model_cfg: Mapping[str, Any], params: Any, check_file: str | Path = GPU_CHECK_FILE
) -> tuple[float | None, str]:
    """The peak bytes GPU jobs plan for, and its source: the model, or gpu_check's higher measurement."""
    predicted = predicted_peak(model_cfg, params)
    measured = measured_peak(model_cfg, params, check_file)
    if measured is not None and (predicted is None or measured > predicted):
        return measured, f"measured by gpu_check ({check_file})"
    return predicted, "memory model (worst case of the int8 kernels)"


def preflight(
    model_cfg: Mapping[str, Any], params: Any, method: str, check_file: str | Path = GPU_CHECK_FILE
) -> float | None:
    """Before a GPU job loads the model: compare the planned peak with the visible GPU's memory.

    Only for 8-bit backbones on CUDA (the path the fit measured) unless gpu_check measured the setup; returns
    the planned peak in bytes or None.
    """
    import torch

    if not torch.cuda.is_available():
        return None
    peak, source = training_peak(model_cfg, params, check_file)
    if peak is None:
        return None
    _, config_source = architecture_config(model_cfg)
    _, total = torch.cuda.mem_get_info()
    log.info(
        "memory pre-flight (%s, method %s): peak %.1f GiB (%s), GPU has %.1f GiB (config from %s)",
        model_cfg["name_or_path"],
        method,
        peak / GIB,
        source,
        total / GIB,
        config_source,
    )
    check_fits(peak, total, params.pairs_per_micro_batch, params.gradient_checkpointing)
    return peak
