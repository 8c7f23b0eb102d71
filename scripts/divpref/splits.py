"""Seeded pair-level train / dev / test splits: a pair and all its annotations go to exactly one split."""

from collections.abc import Sequence

import numpy as np
import polars as pl

SPLITS = ("train", "dev", "test")


def assign_splits(pair_ids: Sequence[str], test_size: int, dev_size: int, seed: int) -> pl.DataFrame:
    """``pair_id, split, seed`` per pair: ``test_size`` test pairs, ``dev_size`` dev pairs, the rest train.

    The ids are sorted before the seeded shuffle, so the result depends only on the set of ids and the seed.
    Raises ``ValueError`` if fewer than one training pair would remain or ids repeat.
    """
    ids = sorted(pair_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("pair ids are not unique; splits are defined per pair")
    if test_size < 1 or dev_size < 1:
        raise ValueError(f"splits.test_size and splits.dev_size must be >= 1, got {test_size}, {dev_size}")
    if test_size + dev_size >= len(ids):
        raise ValueError(
            f"too few pairs for the requested splits: {len(ids)} pairs, but splits.test_size={test_size} + "
            f"splits.dev_size={dev_size} leaves no training pair"
        )
    order = np.random.default_rng(seed).permutation(len(ids))
    labels = np.full(len(ids), "train", dtype=object)
    labels[order[:test_size]] = "test"
    labels[order[test_size : test_size + dev_size]] = "dev"
    return pl.DataFrame(
        {"pair_id": ids, "split": labels.tolist(), "seed": [seed] * len(ids)},
        schema={"pair_id": pl.String, "split": pl.String, "seed": pl.Int64},
    )


def rows_of_split(pairs: pl.DataFrame, splits: pl.DataFrame, split: str) -> pl.DataFrame:
    """The rows of ``pairs`` assigned to ``split``, in the order of ``pairs``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    wanted = splits.filter(pl.col("split") == split).select("pair_id")
    return pairs.join(wanted, on="pair_id", how="semi", maintain_order="left")
