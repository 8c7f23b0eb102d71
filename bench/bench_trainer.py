"""Benchmark: our reward trainer vs TRL's RewardTrainer (trl 1.16), same model, data, batch, length and steps.

    .venv/bin/python bench/bench_trainer.py [--steps 20] [--rounds 3] [--threads 1] [--bf16] [--tracking]

Runs alternate (ours, TRL, ours, TRL, ...), each in a fresh process; the medians of pairs/s are compared.
Both trainers get the SAME LoRA-wrapped model (our ``load_backbone``) and the SAME token ids. TRL's traps are
neutralised: ids are pre-truncated to ``max_length`` (TRL drops longer examples instead of truncating), every
sequence already ends with EOS (TRL appends one to raw text), gradient checkpointing is off (a TRL default),
and bf16 (a TRL default) is off on both sides, or with ``--bf16`` also on on both sides. Dropout is off on
both (LoRA dropout 0; TRL's ``disable_dropout``). Timed: the training steps only (tokenization and model
loading excluded on both sides); our time also includes one final dev evaluation of 16 pairs and one
checkpoint write, which TRL does not do. ``--tracking`` adds our trainer with live TensorBoard tracking
(``ours-tracked``: loss and learning rate every step, divpref.training.tracking) beside it without.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def write_data(folder: Path, n_rows: int, seed: int) -> tuple[Path, Path]:
    """Pairs with long-tailed lengths like chat data (log-normal word counts, about one token per word).

    Prompts: median 40 words (sigma 1.0); responses: median 200 words (sigma 0.7), so with the default
    ``max_length`` 512 about one pair in six is truncated (an assumption, not a measurement of the datasets).
    """
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    vocabulary = np.array(
        "the model answer explain because however code data result example first second step user question "
        "python table list value error note also would could should between about these those".split()
    )

    def text(median_words: float, sigma: float) -> str:
        count = max(1, int(rng.lognormal(np.log(median_words), sigma)))
        return " ".join(rng.choice(vocabulary, size=count))

    def frame(n: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "pair_id": [f"p{i}" for i in range(n)],
                "prompt": [text(40, 1.0) for _ in range(n)],
                "response_a": [text(200, 0.7) for _ in range(n)],
                "response_b": [text(200, 0.7) for _ in range(n)],
                "chosen": rng.choice(["a", "b"], size=n).tolist(),
            }
        )

    train, dev = folder / "train.parquet", folder / "dev.parquet"
    frame(n_rows).write_parquet(train)
    frame(16).write_parquet(dev)
    return train, dev


def load(backbone: str, args: argparse.Namespace):
    import torch

    from divpref.models.loading import load_backbone

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return load_backbone(
        {"name_or_path": backbone, "load_in_8bit": False, "lora": LORA}, 1, for_training=True
    )


def run_ours(
    backbone: str, train: str, dev: str, args: argparse.Namespace, bf16: bool, tracked: bool = False
) -> float:
    import polars as pl

    from divpref.common.constants import BT
    from divpref.models.methods import get_method
    from divpref.training.batching import TrainInputs, encode_pairs
    from divpref.training.loop import train_loop
    from divpref.training.params import TrainingParams

    model, tokenizer = load(backbone, args)
    method = get_method(BT)
    params = TrainingParams(
        seed=0,
        batch_size=args.batch_size,
        max_length=args.max_length,
        max_steps=args.steps,
        max_epochs=100,
        eval_every_epochs=1000,
        bf16=bf16,
    )
    frames = {name: pl.read_parquet(path) for name, path in (("train", train), ("dev", dev))}
    inputs = TrainInputs(
        train=encode_pairs(frames["train"], tokenizer, args.max_length),
        train_targets=method.encode_targets(frames["train"], train),
        dev=encode_pairs(frames["dev"], tokenizer, args.max_length),
        dev_targets=method.encode_targets(frames["dev"], dev),
    )
    from divpref.training.tracking import resolve_tracking

    with tempfile.TemporaryDirectory() as run_dir:
        spec = resolve_tracking({}, "bench", "bt", 0, run_dir) if tracked else None
        (Path(run_dir) / "ck").mkdir()
        started = time.perf_counter()
        train_loop(
            model,
            method,
            inputs,
            params,
            Path(run_dir) / "ck",
            tokenizer.pad_token_id,
            progress=False,
            tracking_spec=spec,
        )
        return args.steps * args.batch_size / (time.perf_counter() - started)


def run_trl(backbone: str, train: str, args: argparse.Namespace, bf16: bool) -> float:
    import polars as pl
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from divpref.training.batching import encode_pairs

    model, tokenizer = load(backbone, args)
    frame = pl.read_parquet(train)
    encoded = encode_pairs(
        frame, tokenizer, args.max_length
    )  # the same (pre-truncated, EOS-ended) ids as ours
    a_chosen = [c == "a" for c in frame["chosen"].to_list()]
    dataset = Dataset.from_dict(
        {
            "chosen_ids": [
                a if first else b for a, b, first in zip(encoded.ids_a, encoded.ids_b, a_chosen, strict=True)
            ],
            "rejected_ids": [
                b if first else a for a, b, first in zip(encoded.ids_a, encoded.ids_b, a_chosen, strict=True)
            ],
        }
    )
    with tempfile.TemporaryDirectory() as output_dir:
        config = RewardConfig(
            output_dir=output_dir,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            max_length=args.max_length,
            learning_rate=5e-5,
            bf16=bf16,
            gradient_checkpointing=False,
            disable_dropout=True,
            report_to="none",
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            dataloader_num_workers=0,
            use_cpu=True,
            seed=0,
        )
        trainer = RewardTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
        assert len(trainer.train_dataset) == len(dataset), "TRL dropped examples: pre-truncation failed"
        started = time.perf_counter()
        trainer.train()
        return args.steps * args.batch_size / (time.perf_counter() - started)


def worker(args: argparse.Namespace) -> None:
    if args.worker.startswith("trl"):
        speed = run_trl(args.backbone, args.train, args, bf16=args.worker == "trl-bf16")
    else:
        speed = run_ours(
            args.backbone,
            args.train,
            args.dev,
            args,
            bf16=args.worker == "ours-bf16",
            tracked=args.worker == "ours-tracked",
        )
    print(json.dumps({"trainer": args.worker, "pairs_per_second": speed}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="also time both trainers with bf16 autocast")
    parser.add_argument("--backbone", help="model folder (default: build the demo backbone in a temp dir)")
    parser.add_argument("--tracking", action="store_true", help="also time ours with TensorBoard tracking")
    parser.add_argument(
        "--worker", choices=["ours", "trl", "ours-bf16", "trl-bf16", "ours-tracked"], help=argparse.SUPPRESS
    )
    parser.add_argument("--train", help=argparse.SUPPRESS)
    parser.add_argument("--dev", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from divpref.models.tiny_backbone import build_backbone

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        backbone = args.backbone or str(build_backbone({"seed": 0}, scratch / "tiny-llama"))
        train, dev = write_data(scratch, n_rows=args.steps * args.batch_size, seed=0)
        trainers = ["ours", "trl"] + (["ours-bf16", "trl-bf16"] if args.bf16 else [])
        trainers += ["ours-tracked"] if args.tracking else []
        speeds: dict[str, list[float]] = {name: [] for name in trainers}
        for round_index in range(args.rounds):
            for name in trainers:
                command = [
                    sys.executable,
                    __file__,
                    "--worker",
                    name,
                    "--backbone",
                    backbone,
                    "--train",
                    str(train),
                    "--dev",
                    str(dev),
                    "--steps",
                    str(args.steps),
                    "--batch-size",
                    str(args.batch_size),
                    "--max-length",
                    str(args.max_length),
                    "--threads",
                    str(args.threads),
                ]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{done.stderr[-4000:]}")
                speed = json.loads(done.stdout.strip().splitlines()[-1])["pairs_per_second"]
                speeds[name].append(speed)
                print(f"round {round_index + 1} {name:9s} {speed:7.1f} pairs/s", flush=True)
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    print(
        f"\nsteps {args.steps}, batch {args.batch_size}, max_length {args.max_length}, threads {args.threads}"
    )
    for name, value in medians.items():
        print(f"{name:9s} median {value:7.1f} pairs/s")
    print(f"ratio ours / trl: {medians['ours'] / medians['trl']:.2f}x")
    if args.tracking:
        cost = 1 - medians["ours-tracked"] / medians["ours"]
        print(f"ratio ours-tracked / trl: {medians['ours-tracked'] / medians['trl']:.2f}x")
        print(f"tracking cost (1 - ours-tracked / ours): {100 * cost:.1f}%")
    if args.bf16:
        print(f"ratio ours-bf16 / trl-bf16: {medians['ours-bf16'] / medians['trl-bf16']:.2f}x")
        print(f"ratio ours-bf16 / trl (fp32): {medians['ours-bf16'] / medians['trl']:.2f}x")


if __name__ == "__main__":
    main()
