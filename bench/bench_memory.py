"""Peak GPU memory of the paper's training step, predicted from one real step measured on CPU.

Builds the configured backbone's architecture from its config.json (real hidden and intermediate sizes; the
published Llama-3-8B values when no config.json is available locally, as on this offline machine) with 1 and 2
decoder layers and random weights, loads it through the project's own path
(divpref.models.loading.load_backbone: 8 bit + LoRA, optionally gradient checkpointing), runs one training
step (bf16 autocast, the GPU's compute dtype; loss, backward, AdamW) on 2 sequences of two lengths, records
the peak of everything allocated (torch's profiler memory events) and the resident weights, and fits the
linear model of divpref.training.memory:

    peak = static(L) + step(L) + T * (per_token + L * per_token_per_layer)

It then predicts the configured run (all its layers, ``T = 2 * micro_batch_size * max_length``), prints the
table for 48, 80 and 141 GiB GPUs and micro-batch sizes 1, 2, 4, 8 with and without checkpointing, and ends
with the line other tools read:

    paper config: predicted peak <X> GiB on a <Y> GiB GPU (micro_batch_size <m>, gradient_checkpointing <b>)

bitsandbytes runs ``MatMul8bitFp`` on CPU, whose output follows bf16 autocast; CUDA training runs
``MatMul8bitLt``, whose output has its input's dtype (fp32 after 8-bit preparation, unless outlier columns
exist). The measurement therefore computes the CPU kernel's output in its input's dtype too
(:func:`cuda_int8_output_dtype`): the worst case of the CUDA kernel, about 2 bytes more per element of every
int8 matmul's output that autograd keeps.
The measured model uses the offline 30,522-token vocabulary (the activations do not depend on it); the full
vocabulary's fp32 embedding is added to the resident weights. CPU kernels differ from CUDA's (bitsandbytes
dequantizes on CPU; SDPA on CUDA never materialises the attention matrix), so rule gpu_check measures a real
step on the training GPU (bench/gpu_smoke.py does the same by hand).
Usage: ``PYTHONPATH=scripts python bench/bench_memory.py [--config config.yaml]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from divpref.models.loading import load_backbone  # noqa: E402
from divpref.models.losses import bradley_terry_loss  # noqa: E402
from divpref.models.tiny_backbone import build_tokenizer  # noqa: E402
from divpref.training import memory  # noqa: E402
from divpref.training.params import TrainingParams  # noqa: E402
from divpref.training.steps import trainable_parameters  # noqa: E402

GPU_SIZES_GIB = (48, 80, 141)
MICRO_BATCHES = (1, 2, 4, 8)


def load_config(path: Path) -> tuple[dict, TrainingParams]:
    """The config's model block and its resolved training defaults."""
    config = yaml.safe_load(path.read_text())
    training = {k: v for k, v in config["training"].items() if k != "seeds"}
    return config["model"], TrainingParams.from_mapping(training)


def build_reduced(architecture: dict, layers: int, folder: Path) -> Path:
    """A random-weight model folder of ``architecture`` with ``layers`` decoder layers (bf16 on disk)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = build_tokenizer()
    values = {
        k: v for k, v in architecture.items() if not k.startswith("_") and k not in ("transformers_version",)
    }
    values.update(
        num_hidden_layers=layers,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
    )
    model_type = values.pop("model_type", "llama")
    config = AutoConfig.for_model(model_type, **values)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    gc.collect()
    return folder


@contextlib.contextmanager
def cuda_int8_output_dtype():
    """bitsandbytes' CPU training matmul with CUDA's output dtype: its result cast to the input's dtype.

    The CPU kernel's own buffers (the dequantized weight and its bf16 autocast copy) stay, so the measurement
    keeps the CPU's step buffers and adds the fp32 outputs: an upper bound of both kernels.
    """
    from bitsandbytes.autograd import _functions

    original = _functions.MatMul8bitFp.forward

    def forward(ctx, A, B, out=None, bias=None, state=None):
        return original(ctx, A, B, out, bias, state).to(A.dtype)

    _functions.MatMul8bitFp.forward = staticmethod(forward)
    try:
        yield
    finally:
        _functions.MatMul8bitFp.forward = staticmethod(original)


def resident_bytes(model: torch.nn.Module) -> int:
    """Bytes of all parameters and buffers (shared storages counted once)."""
    seen, total = set(), 0
    for tensor in [*model.parameters(), *model.buffers()]:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


def step_peak(model: torch.nn.Module, optimizer: torch.optim.Optimizer, seq_len: int, vocab: int) -> int:
    """Peak bytes allocated during one training step (forward, BT loss, backward, AdamW) of 1 pair."""
    from torch.profiler import ProfilerActivity, profile

    generator = torch.Generator().manual_seed(seq_len)
    ids = torch.randint(100, vocab, (2, seq_len), generator=generator)
    mask = torch.ones_like(ids)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        loss = bradley_terry_loss(logits[:1, 0], logits[1:, 0], torch.ones(1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        del logits, loss
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    allocated = np.cumsum([nbytes for _, nbytes in events]) if events else np.zeros(1)
    return int(max(0, allocated.max()))


def measure(
    architecture: dict, model_cfg: dict, layers: tuple[int, ...], seq_lens: tuple[int, ...], scratch: Path
):
    """{checkpointing: [(layers, tokens, resident, step_peak)]} for every combination."""
    results: dict[bool, list[tuple[int, int, int, int]]] = {False: [], True: []}
    for n_layers in layers:
        folder = build_reduced(architecture, n_layers, scratch / f"layers{n_layers}")
        cfg = {**model_cfg, "name_or_path": str(folder), "revision": None, "load_in_8bit": True}
        for checkpointing in (False, True):
            torch.manual_seed(0)
            model, tokenizer = load_backbone(cfg, 1, for_training=True, gradient_checkpointing=checkpointing)
            model.train()
            optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-5)
            resident = resident_bytes(model)
            with cuda_int8_output_dtype():
                step_peak(model, optimizer, seq_lens[0], len(tokenizer))  # warm-up: Adam state, kernels
            for seq_len in seq_lens:
                started = time.perf_counter()
                with cuda_int8_output_dtype():
                    peak = step_peak(model, optimizer, seq_len, len(tokenizer))
                results[checkpointing].append((n_layers, 2 * seq_len, resident, peak))
                print(
                    f"  measured: layers {n_layers}, checkpointing {str(checkpointing).lower():5s}, "
                    f"tokens {2 * seq_len:5d}: resident {resident / memory.MIB:8.1f} MiB, step peak "
                    f"{peak / memory.MIB:8.1f} MiB ({time.perf_counter() - started:.1f} s)",
                    flush=True,
                )
            del model, optimizer
            gc.collect()
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        folder.rmdir()
    return results


def fit(points: list[tuple[int, int, int, int]]) -> memory.MemoryFit:
    """Least-squares fit of the linear model to (layers, tokens, resident, step peak) points."""
    layers = np.array([p[0] for p in points], dtype=float)
    tokens = np.array([p[1] for p in points], dtype=float)
    resident = np.array([p[2] for p in points], dtype=float)
    peak = np.array([p[3] for p in points], dtype=float)
    static = np.linalg.lstsq(np.stack([np.ones_like(layers), layers], 1), resident, rcond=None)[0]
    design = np.stack([np.ones_like(layers), layers, tokens, tokens * layers], 1)
    step = np.linalg.lstsq(design, peak, rcond=None)[0]
    return memory.MemoryFit(*(float(v) for v in (*static, *step)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--gpu-gib", type=float, default=48.0, help="GPU memory of the last line (GiB)")
    parser.add_argument("--seq-lens", type=int, nargs=2, default=(64, 192), help="measured sequence lengths")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model_cfg, params = load_config(args.config)
    architecture, source = memory.architecture_config(model_cfg)
    print(f"backbone {model_cfg['name_or_path']}: architecture from {source}")
    print(
        f"  hidden {architecture['hidden_size']}, intermediate {architecture['intermediate_size']}, "
        f"{architecture['num_hidden_layers']} layers, {architecture['num_attention_heads']} heads, "
        f"{architecture['num_key_value_heads']} KV heads, vocab {architecture['vocab_size']}"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        results = measure(architecture, model_cfg, (1, 2), tuple(args.seq_lens), Path(scratch))
    fits = {checkpointing: fit(points) for checkpointing, points in results.items()}
    print(f"measured in {time.perf_counter() - started:.0f} s; fitted coefficients (MiB):")
    for checkpointing, fitted in fits.items():
        values = {k: round(v / memory.MIB, 4) for k, v in dataclasses.asdict(fitted).items()}
        print(f"  gradient_checkpointing {str(checkpointing).lower():5s}: {json.dumps(values)}")
    print(
        f"activations per token per layer: {fits[False].per_token_per_layer / memory.MIB:.3f} MiB without "
        f"checkpointing, {fits[True].per_token_per_layer / memory.MIB:.4f} MiB with it (bf16 autocast)"
    )
    recorded = memory.LLAMA3_8B_FIT
    for checkpointing in (False, True):
        now = memory.predict_training_peak(architecture, 4, params.max_length, checkpointing, fits)
        before = memory.predict_training_peak(architecture, 4, params.max_length, checkpointing, recorded)
        print(
            "  check against divpref.training.memory.LLAMA3_8B_FIT (used by GPU jobs' pre-flight), "
            "micro-batch 4, "
            f"checkpointing {str(checkpointing).lower()}: this run {now / memory.GIB:.1f} GiB, recorded "
            f"{before / memory.GIB:.1f} GiB"
        )

    print(f"\npredicted peak GPU memory (GiB), max_length {params.max_length}, CUDA overhead included:")
    print(
        "| micro_batch_size | gradient_checkpointing | peak GiB | "
        + " | ".join(f"{g} GB" for g in GPU_SIZES_GIB)
        + " |"
    )
    print("|---|---|---|" + "---|" * len(GPU_SIZES_GIB))
    for checkpointing in (False, True):
        for micro in MICRO_BATCHES:
            peak = memory.predict_training_peak(architecture, micro, params.max_length, checkpointing, fits)
            cells = " | ".join("fits" if peak <= g * memory.GIB else "no" for g in GPU_SIZES_GIB)
            print(f"| {micro} | {str(checkpointing).lower()} | {peak / memory.GIB:.1f} | {cells} |")
    micro = params.pairs_per_micro_batch
    peak = memory.predict_training_peak(
        architecture, micro, params.max_length, params.gradient_checkpointing, fits
    )
    print(
        f"paper config: predicted peak {peak / memory.GIB:.1f} GiB on a {args.gpu_gib:g} GiB GPU "
        f"(micro_batch_size {micro}, gradient_checkpointing {str(params.gradient_checkpointing).lower()})"
    )


if __name__ == "__main__":
    main()
