"""Shared fixtures for the reward-model tests: a tiny offline backbone and planted-signal trainsets."""

from __future__ import annotations

import atexit
import functools
import random
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
import torch

from divpref.models.tiny_backbone import build_backbone

WORDS = "the a model answer reply text some more words here and there about things".split()
# One torch thread: tiny models gain nothing from more, and on a busy 2-core machine torch's thread spin-waits
# made training 15x slower (measured 190 vs 12 pairs/s).
torch.set_num_threads(1)

LORA = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def planted_frame(n_rows: int, seed: int, method: str = "bt", max_words: int = 30) -> pl.DataFrame:
    """Pairs whose better response starts with 'excellent' and the worse with 'terrible' (an easy signal)."""
    rng = random.Random(seed)

    def words(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    rows = []
    for index in range(n_rows):
        good, bad = "excellent " + words(2, max_words), "terrible " + words(2, max_words)
        a_wins = rng.random() < 0.5
        row = {
            "pair_id": f"p{seed}-{index}",
            "prompt": words(3, 12),
            "response_a": good if a_wins else bad,
            "response_b": bad if a_wins else good,
        }
        if method == "bt":
            row["chosen"] = "a" if a_wins else "b"
        else:
            row["score_a"], row["score_b"] = (3.0, 1.0) if a_wins else (1.0, 3.0)
        rows.append(row)
    return pl.DataFrame(rows)


def write_trainset(
    folder: Path, n_train: int, n_dev: int, method: str = "bt", seed: int = 0
) -> tuple[Path, Path]:
    """Write train/dev parquet files with the planted signal; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    train, dev = folder / "train.parquet", folder / "dev.parquet"
    planted_frame(n_train, seed, method).write_parquet(train)
    planted_frame(n_dev, seed + 1000, method).write_parquet(dev)
    return train, dev


def model_cfg(backbone: Path | None = None, **overrides: object) -> dict:
    """A model config for ``backbone`` (default: the shared tiny backbone), fp32, LoRA on attention."""
    path = backbone if backbone is not None else shared_backbone()
    return {"name_or_path": str(path), "load_in_8bit": False, "lora": dict(LORA), **overrides}


@functools.cache
def shared_backbone() -> Path:
    """The demo/CI backbone (tiny seeded Llama, offline tokenizer), built once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="tiny-llama-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return build_backbone({"seed": 0}, folder / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_backbone() -> Path:
    """Fixture form of :func:`shared_backbone`."""
    return shared_backbone()
