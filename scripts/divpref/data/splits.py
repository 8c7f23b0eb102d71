"""Seeded train / dev / test splits: a pair and all its annotations go to exactly one split.

``group_by`` (config ``splits.group_by``):

- ``prompt`` (default): the unit of the split is a prompt with all its pairs, so no prompt sits in two splits.
  The distinct prompts are sorted and shuffled with the seed; walking that order, a prompt goes to test while
  test has fewer than ``test_size`` pairs, then to dev while dev has fewer than ``dev_size``, then to train.
  Each size is therefore met or exceeded by less than the largest prompt's pair count (the last prompt taken
  may overshoot); no prompt is skipped to hit a size exactly, so prompt sizes are not biased between splits.
- ``pair``: every pair is its own unit (exact sizes); pairs sharing a prompt may land in different splits.
"""

from collections.abc import Sequence

import numpy as np
import polars as pl

SPLITS = ("train", "dev", "test")
GROUP_BY = ("prompt", "pair")


def assign_splits(
    pair_ids: Sequence[str],
    test_size: int,
    dev_size: int,
    seed: int,
    prompts: Sequence[str] | None = None,
    group_by: str = "pair",
) -> pl.DataFrame:
    """``pair_id, split, seed, group_by`` per pair, in sorted pair order (see the module doc for the rule).

    ``prompts`` (aligned with ``pair_ids``) is needed for ``group_by="prompt"``. The result depends only on
    the set of (pair_id, prompt) and the seed. Raises ``ValueError`` if no training pair would remain or ids
    repeat.
    """
    if group_by not in GROUP_BY:
        raise ValueError(f"splits.group_by must be one of {GROUP_BY}, got {group_by!r}")
    if len(set(pair_ids)) != len(pair_ids):
        raise ValueError("pair ids are not unique; splits are defined per pair")
    if test_size < 1 or dev_size < 1:
        raise ValueError(f"splits.test_size and splits.dev_size must be >= 1, got {test_size}, {dev_size}")
    if test_size + dev_size >= len(pair_ids):
        raise ValueError(
            f"too few pairs for the requested splits: {len(pair_ids)} pairs, but "
            f"splits.test_size={test_size} + splits.dev_size={dev_size} leaves no training pair"
        )
    if group_by == "pair":
        ids = sorted(pair_ids)
        order = np.random.default_rng(seed).permutation(len(ids))
        labels = np.full(len(ids), "train", dtype=object)
        labels[order[:test_size]] = "test"
        labels[order[test_size : test_size + dev_size]] = "dev"
        assignment = dict(zip(ids, labels.tolist(), strict=True))
    else:
        if prompts is None or len(prompts) != len(pair_ids):
            raise ValueError("splits.group_by=prompt needs one prompt per pair")
        assignment = _assign_by_prompt(pair_ids, prompts, test_size, dev_size, seed)
    ids = sorted(pair_ids)
    if all(assignment[pair] != "train" for pair in ids):
        raise ValueError(
            f"splits.group_by=prompt: the test and dev prompts hold all {len(ids)} pairs "
            f"(test_size={test_size}, dev_size={dev_size}); no training pair remains"
        )
    return pl.DataFrame(
        {
            "pair_id": ids,
            "split": [assignment[pair] for pair in ids],
            "seed": [seed] * len(ids),
            "group_by": [group_by] * len(ids),
        },
        schema={"pair_id": pl.String, "split": pl.String, "seed": pl.Int64, "group_by": pl.String},
    )


def _assign_by_prompt(
    pair_ids: Sequence[str], prompts: Sequence[str], test_size: int, dev_size: int, seed: int
) -> dict[str, str]:
    members: dict[str, list[str]] = {}
    for pair, prompt in zip(pair_ids, prompts, strict=True):
        members.setdefault(prompt, []).append(pair)
    ordered = sorted(members)
    counts = {"test": 0, "dev": 0}
    assignment = {}
    for index in np.random.default_rng(seed).permutation(len(ordered)):
        group = members[ordered[index]]
        split = "test" if counts["test"] < test_size else "dev" if counts["dev"] < dev_size else "train"
        if split != "train":
            counts[split] += len(group)
        assignment.update(dict.fromkeys(group, split))
    return assignment


def split_summary(splits: pl.DataFrame, pairs: pl.DataFrame, test_size: int, dev_size: int) -> dict:
    """Requested vs achieved sizes, the grouping, and how many prompts sit in more than one split."""
    joined = splits.join(pairs.select("pair_id", "prompt"), on="pair_id", how="left")
    shared = joined.group_by("prompt").agg(pl.col("split").n_unique().alias("n")).filter(pl.col("n") > 1)
    sizes = dict(joined["split"].value_counts().iter_rows())
    return {
        "group_by": splits["group_by"][0],
        "seed": int(splits["seed"][0]),
        "requested": {"test": test_size, "dev": dev_size},
        "pairs": {split: int(sizes.get(split, 0)) for split in SPLITS},
        "prompts": {split: joined.filter(pl.col("split") == split)["prompt"].n_unique() for split in SPLITS},
        "prompts_in_several_splits": shared.height,
    }


def rows_of_split(pairs: pl.DataFrame, splits: pl.DataFrame, split: str) -> pl.DataFrame:
    """The rows of ``pairs`` assigned to ``split``, in the order of ``pairs``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    wanted = splits.filter(pl.col("split") == split).select("pair_id")
    return pairs.join(wanted, on="pair_id", how="semi", maintain_order="left")
