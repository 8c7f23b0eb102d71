"""A run's data as token ids, and the rows of each optimisation step.

Every distinct (prompt, response) is tokenized once; batches are grouped by length and padded only to their
own longest sequence; both responses of a batch are collated into ONE forward pass (A rows, then B rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from divpref.models.methods import RewardMethod
from divpref.models.tokenization import encode_text, pad_right

if TYPE_CHECKING:
    import polars as pl
    import torch

MEGABATCH_FACTOR = 50
"""Length grouping sorts windows of ``MEGABATCH_FACTOR * batch_size`` shuffled rows by length."""


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Row indices of every batch of ``epoch``: a seeded shuffle, grouped by length within megabatch windows.

    Each batch then holds rows of similar length (little padding); batch order is shuffled again so long and
    short batches alternate. A pure function of ``(lengths, batch_size, seed, epoch)``, which makes resuming
    at any step exact.
    """
    rng = np.random.default_rng([seed, epoch])
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    window = batch_size * MEGABATCH_FACTOR
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def batch_at_step(
    lengths: Sequence[int], batch_size: int, seed: int, step: int, steps_per_epoch: int
) -> np.ndarray:
    """Row indices of the batch consumed by optimisation step ``step`` (0-based)."""
    epoch, within = divmod(step, steps_per_epoch)
    return epoch_batches(lengths, batch_size, seed, epoch)[within]


@dataclass
class EncodedPairs:
    """Token ids of responses A and B for every row (texts shared between rows are encoded once)."""

    ids_a: list[list[int]]
    ids_b: list[list[int]]

    @property
    def lengths(self) -> np.ndarray:
        return np.array([max(len(a), len(b)) for a, b in zip(self.ids_a, self.ids_b, strict=True)])


def encode_pairs(frame: pl.DataFrame, tokenizer: Any, max_length: int) -> EncodedPairs:
    """Encode both responses of every row of a trainset frame."""
    cache: dict[tuple[str, str], list[int]] = {}

    def encoded(prompt: str, response: str) -> list[int]:
        key = (prompt, response)
        if key not in cache:
            cache[key] = encode_text(tokenizer, prompt, response, max_length)
        return cache[key]

    prompts = frame["prompt"].to_list()
    ids_a = [encoded(p, r) for p, r in zip(prompts, frame["response_a"].to_list(), strict=True)]
    ids_b = [encoded(p, r) for p, r in zip(prompts, frame["response_b"].to_list(), strict=True)]
    return EncodedPairs(ids_a=ids_a, ids_b=ids_b)


def collate(
    encoded: EncodedPairs, rows: np.ndarray, targets: Mapping[str, np.ndarray], pad_id: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One batch: A rows then B rows, right-padded to the batch's longest sequence, plus the row targets."""
    import torch

    sequences = [encoded.ids_a[i] for i in rows] + [encoded.ids_b[i] for i in rows]
    input_ids, attention = pad_right(sequences, pad_id)
    batch_targets = {name: torch.from_numpy(values[rows]) for name, values in targets.items()}
    inputs = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention)}
    return inputs, batch_targets


@dataclass
class TrainInputs:
    """Data of one run, already encoded."""

    train: EncodedPairs
    train_targets: dict[str, np.ndarray]
    dev: EncodedPairs
    dev_targets: dict[str, np.ndarray]


def read_trainset(path: str | Path, method: RewardMethod) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    """A trainset parquet and its encoded targets; ``ValueError`` names the file on missing columns/empty."""
    import polars as pl

    from divpref.models.methods import require_columns

    frame = pl.read_parquet(path)
    require_columns(
        frame, ["pair_id", "prompt", "response_a", "response_b", *method.target_columns], str(path)
    )
    if frame.height == 0:
        raise ValueError(f"{path}: no rows")
    for column in ("prompt", "response_a", "response_b"):
        nulls = frame.filter(pl.col(column).is_null())
        if nulls.height:
            raise ValueError(f"{path}: pair_id {nulls['pair_id'][0]!r}: {column} is null")
    return frame, method.encode_targets(frame, str(path))
