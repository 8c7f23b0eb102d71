"""Estimated GPU-hours of the configured training grid on one A6000-class GPU, with and without early stop.

For every training run of the config's grid (condition x dataset x seed) it reads that run's trainset
(``<results>/<dataset>/trainsets/<method>-<labels>/{train,dev}.parquet``), tokenizes it as the trainer does
(truncated to ``max_length``, length-grouped batches padded to their longest sequence,
``divpref.training.batching``), and counts the tokens of all epochs: training steps (x 4/3 with gradient
checkpointing, which recomputes the forward pass) plus the dev evaluations (forward only, 1/3 of a training
token). Tokens / throughput = hours.

* Throughput: ``--tokens-per-second`` training tokens per second on one A6000 in 8 bit (default 1,000, the
  assumed figure; rule gpu_check measures it on the cluster's GPU and records `grid_gpu_hours`).
* Early stopping: a run stops ``patience`` evaluations after its best dev evaluation; the best epoch is an
  assumption (``--best-epoch``, default 1: reward models are commonly trained for a single epoch because they
  overfit after it, e.g. InstructGPT, Ouyang et al. 2022, "Training language models to follow instructions").
* Tokenizer: the configured backbone's tokenizer if available locally, else the offline WordPiece tokenizer of
  the demo backbone (a proxy: Llama-3's tokenizer needs about as many tokens for English text).

Usage: ``PYTHONPATH=scripts python bench/bench_gpu_hours.py --results <results dir> [--config config.yaml]``;
the trainsets come from ``snakemake`` (the data stages only). On the synthetic sample the figures describe the
sample, not MultiPref or HelpSteer2; ``--scale-pairs`` rescales each dataset's rows to the real pair counts.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from divpref.models.methods import get_method  # noqa: E402
from divpref.training.gpu_hours import hours, run_cost  # noqa: E402
from divpref.training.params import TrainingParams  # noqa: E402

PAPER_PAIRS = {"multipref": 10_461, "helpsteer2": 11_826}
"""Pairs of the published datasets (as bench/bench_divergence.py); ``--scale-pairs`` uses them."""


def load_tokenizer(model_cfg: dict):
    from transformers import AutoTokenizer

    from divpref.models.loading import prepare_tokenizer
    from divpref.models.tiny_backbone import build_tokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_cfg["name_or_path"], local_files_only=True)
        return prepare_tokenizer(tokenizer), "configured"
    except Exception:
        return prepare_tokenizer(build_tokenizer()), "offline WordPiece proxy"


def grid(config: dict) -> list[tuple[str, str, dict, TrainingParams]]:
    """(dataset, condition, spec, params) for every condition x dataset (seeds are counted separately)."""
    runs = []
    for name, spec in config["conditions"].items():
        get_method(spec["method"])
        training = {k: v for k, v in config["training"].items() if k != "seeds"}
        training.update(spec.get("training", {}))
        for dataset in spec.get("datasets", list(config["datasets"])):
            runs.append((dataset, name, spec, TrainingParams.from_mapping(training)))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--tokens-per-second", type=float, default=1000.0)
    parser.add_argument("--best-epoch", type=float, default=1.0)
    parser.add_argument(
        "--patience", type=int, default=None, help="default: the config's, else 4 evaluations"
    )
    parser.add_argument(
        "--scale-pairs", action="store_true", help="rescale rows to the real datasets' pair counts"
    )
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    seeds = len(config["training"]["seeds"])
    tokenizer, tokenizer_source = load_tokenizer(config["model"])
    print(f"config {args.config}, trainsets under {args.results}, tokenizer: {tokenizer_source}")
    print(
        f"throughput {args.tokens_per_second:g} training tokens/s (A6000-class GPU, 8 bit); {seeds} seed(s)"
    )
    header = (
        "| dataset | condition | train rows | tokens/epoch (M) | epochs | GPU-h | epochs (early stop) "
        "| GPU-h (early stop) |"
    )
    print(header + "\n" + "|---" * 8 + "|")
    total, total_early, patience = 0.0, 0.0, 4
    for dataset, condition, spec, params in grid(config):
        folder = args.results / dataset / "trainsets" / f"{spec['method']}-{spec['labels']}"
        train_path, dev_path = folder / "train.parquet", folder / "dev.parquet"
        if not train_path.is_file():
            sys.exit(f"{train_path} is missing: run the data stages first (snakemake -- {train_path})")
        train, dev = pl.read_parquet(train_path), pl.read_parquet(dev_path)
        scale = 1.0
        if args.scale_pairs:
            scale = PAPER_PAIRS[dataset] / (train["pair_id"].n_unique() + dev["pair_id"].n_unique())
        cost = run_cost(train, dev, tokenizer, params, scale)
        train_tokens = cost.train_tokens
        patience = args.patience or params.early_stopping_patience or 4
        epochs = params.max_epochs
        early = min(epochs, args.best_epoch + patience * params.eval_every_epochs)
        run_hours = hours(cost, epochs, seeds, args.tokens_per_second)
        hours_early = hours(cost, early, seeds, args.tokens_per_second)
        total += run_hours
        total_early += hours_early
        print(
            f"| {dataset} | {condition} | {math.ceil(scale * train.height):,} | {train_tokens / 1e6:.2f} | "
            f"{epochs:g} | "
            f"{run_hours:.1f} | {early:g} | {hours_early:.1f} |"
        )
    print(
        f"grid: {total:.0f} GPU-hours without early stopping, {total_early:.0f} with it (patience "
        f"{patience} evaluations after a best epoch of {args.best_epoch:g}); "
        f"ratio {total / max(total_early, 1e-9):.1f}x"
    )


if __name__ == "__main__":
    main()
