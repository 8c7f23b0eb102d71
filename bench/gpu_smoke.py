"""GPU smoke test: rule gpu_check's code (divpref.training.gpu_check) on a reduced Llama-3-8B, by hand.

Llama-3-8B's architecture (bench_memory's builder: the configured config.json, or the published values) with
random weights and ``--layers`` decoder layers, checked exactly as rule gpu_check checks the configured
backbone (driver, int8 matmul, a few training steps at the config's micro_batch_size padded to max_length);
prints the record as JSON. The rule itself checks the real backbone. Without CUDA it exits with status 2.
Usage: ``PYTHONPATH=scripts python bench/gpu_smoke.py [--config config.yaml] [--layers 4]``
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    import torch
    import yaml

    if not torch.cuda.is_available():
        print(
            f"gpu_smoke: no CUDA device visible (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda}); "
            "this script measures GPU memory and throughput and needs a GPU. Nothing was run."
        )
        sys.exit(2)
    from bench_memory import build_reduced

    from divpref.training import memory
    from divpref.training.gpu_check import run_gpu_check

    logging.basicConfig(level=logging.INFO)
    config = yaml.safe_load(args.config.read_text())
    architecture, _ = memory.architecture_config(config["model"])
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as scratch:
        folder = build_reduced(architecture, args.layers, Path(scratch) / "model")
        model = {**config["model"], "name_or_path": str(folder), "revision": None, "load_in_8bit": True}
        result = run_gpu_check(model, config["training"], gpus_requested=1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
