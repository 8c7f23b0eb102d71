"""GPU smoke test: a few real optimisation steps of the paper's training path, measured against prediction.

Llama-3-8B's architecture (bench_memory's builder: the configured config.json, or the published values) with
random weights and ``--layers`` decoder layers, loaded through divpref.models.loading.load_backbone in 8 bit +
LoRA with gradient checkpointing, trained for ``--steps`` optimisation steps by the trainer's own step
(divpref.training.steps.accumulate_step_gradients: micro-batches of the config's micro_batch_size, bf16 where
the GPU has it) on pairs padded to the config's max_length (the worst case). Prints the measured peak GPU
memory beside divpref.training.memory's prediction for the same layers and settings, the prediction for the
full model, and training tokens per second (bench/bench_gpu_hours.py's throughput figure). Under 5 minutes on
one GPU.

Without CUDA it exits with status 2 and says so. Usage:
``PYTHONPATH=scripts python bench/gpu_smoke.py [--config config.yaml] [--layers 4] [--steps 6]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(
            f"gpu_smoke: no CUDA device visible (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda}); "
            "this script measures GPU memory and throughput and needs a GPU. Nothing was run."
        )
        sys.exit(2)

    import numpy as np
    from bench_memory import build_reduced, load_config

    from divpref.common.constants import BT
    from divpref.models.loading import load_backbone
    from divpref.models.methods import get_method
    from divpref.training import memory
    from divpref.training.batching import EncodedPairs
    from divpref.training.params import resolve_bf16
    from divpref.training.steps import accumulate_step_gradients, trainable_parameters

    model_cfg, params = load_config(args.config)
    architecture, source = memory.architecture_config(model_cfg)
    micro, length = params.pairs_per_micro_batch, params.max_length
    device = torch.device("cuda", 0)
    bf16 = resolve_bf16(params.bf16, "cuda")
    print(
        f"GPU {torch.cuda.get_device_name(0)}, {torch.cuda.mem_get_info()[1] / memory.GIB:.1f} GiB; {source}"
    )
    print(
        f"{args.layers} of {architecture['num_hidden_layers']} layers, "
        f"batch {params.batch_size} pairs in micro-batches "
        f"of {micro}, max_length {length}, gradient checkpointing on, bf16 {bf16}"
    )
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as scratch:
        folder = build_reduced(architecture, args.layers, Path(scratch) / "model")
        cfg = {**model_cfg, "name_or_path": str(folder), "revision": None, "load_in_8bit": True}
        torch.manual_seed(0)
        model, tokenizer = load_backbone(
            cfg, 1, for_training=True, gradient_checkpointing=True, device="cuda:0"
        )
        vocab = len(tokenizer)
    method = get_method(BT)
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=params.learning_rate)
    rng = np.random.default_rng(0)
    n_rows = params.batch_size * (args.steps + 1)
    data = EncodedPairs(
        ids_a=[list(rng.integers(100, vocab, length)) for _ in range(n_rows)],
        ids_b=[list(rng.integers(100, vocab, length)) for _ in range(n_rows)],
    )
    targets = {"a_preferred": rng.integers(0, 2, n_rows).astype(np.float32)}
    model.train()

    def step(index: int) -> None:
        rows = np.arange(index * params.batch_size, (index + 1) * params.batch_size)
        accumulate_step_gradients(
            model, method, data, targets, rows, micro, tokenizer.pad_token_id, device, bf16
        )
        torch.nn.utils.clip_grad_norm_(trainable_parameters(model), params.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(0)  # warm-up: kernels, Adam state
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for index in range(1, args.steps + 1):
        step(index)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    peak_allocated = torch.cuda.max_memory_allocated()
    peak_reserved = torch.cuda.max_memory_reserved()
    reduced = {**architecture, "num_hidden_layers": args.layers, "vocab_size": memory.MEASURED_VOCAB}
    predicted = memory.predict_training_peak(reduced, micro, length, True)
    fit = memory.scaled_fit(memory.LLAMA3_8B_FIT[True], reduced)
    predicted_raw = fit.predict(args.layers, memory.step_tokens(micro, length))
    full = memory.predict_training_peak(architecture, micro, length, True)
    tokens = 2 * params.batch_size * length * args.steps
    print(
        f"measured peak allocated {peak_allocated / memory.GIB:.2f} GiB "
        f"vs predicted {predicted_raw / memory.GIB:.2f} GiB (no CUDA overhead)"
    )
    print(
        f"measured peak reserved  {peak_reserved / memory.GIB:.2f} GiB "
        f"vs predicted {predicted / memory.GIB:.2f} GiB (with margin and context)"
    )
    print(f"full {architecture['num_hidden_layers']}-layer model: predicted {full / memory.GIB:.1f} GiB")
    print(
        f"throughput: {tokens / elapsed:,.0f} training tokens/s with {args.layers} layers "
        f"(~{tokens / elapsed * args.layers / architecture['num_hidden_layers']:,.0f} tokens/s for all "
        f"{architecture['num_hidden_layers']} layers), {elapsed / args.steps:.2f} s per step"
    )


if __name__ == "__main__":
    main()
