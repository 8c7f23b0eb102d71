"""GPU-hours of training runs from their trainsets' tokens and a throughput (bench_gpu_hours, gpu_check).

A run's tokens are those the trainer pushes through the model: both responses of every pair, truncated to
``max_length``, in length-grouped batches padded to their longest sequence (:mod:`divpref.training.batching`),
for every epoch. Training tokens cost :data:`CHECKPOINTING_COST` times more with gradient checkpointing (one
extra forward pass); each dev evaluation costs :data:`EVAL_COST` of a training token per dev token.
Hours = cost-weighted tokens / throughput (training tokens per second without checkpointing).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl

from divpref.training.batching import encode_pairs, epoch_batches
from divpref.training.params import TrainingParams

CHECKPOINTING_COST = 4 / 3  # one extra forward pass per training token
EVAL_COST = 1 / 3  # a forward pass costs about a third of forward + backward


def padded_tokens(frame: pl.DataFrame, tokenizer: Any, params: TrainingParams, epoch: int) -> int:
    """Tokens the trainer pushes through the model in one epoch (both responses, padded per batch)."""
    lengths = encode_pairs(frame, tokenizer, params.max_length).lengths
    batches = epoch_batches(lengths, params.batch_size, params.seed, epoch)
    return int(sum(2 * len(rows) * int(lengths[rows].max()) for rows in batches))


@dataclasses.dataclass(frozen=True)
class RunCost:
    """One run's padded tokens per epoch and the cost-weighted tokens of one epoch (training, evaluations)."""

    train_tokens: float
    dev_tokens: float
    cost_per_epoch: float


def run_cost(
    train: pl.DataFrame, dev: pl.DataFrame, tokenizer: Any, params: TrainingParams, scale: float = 1.0
) -> RunCost:
    """The tokens of one run (``scale`` rescales the rows, e.g. to the published datasets' pair counts)."""
    train_tokens = scale * padded_tokens(train, tokenizer, params, 0)
    eval_params = dataclasses.replace(params, batch_size=params.eval_batch_size or 2 * params.batch_size)
    dev_tokens = scale * padded_tokens(dev, tokenizer, eval_params, 0)
    cost = train_tokens * (CHECKPOINTING_COST if params.gradient_checkpointing else 1.0)
    cost += dev_tokens * EVAL_COST / params.eval_every_epochs
    return RunCost(train_tokens, dev_tokens, cost)


def hours(cost: RunCost, epochs: float, seeds: int, tokens_per_second: float) -> float:
    """GPU-hours of ``seeds`` runs of ``epochs`` epochs at ``tokens_per_second`` (no checkpointing)."""
    return seeds * epochs * cost.cost_per_epoch / tokens_per_second / 3600


def plain_tokens_per_second(measured: float, gradient_checkpointing: bool) -> float:
    """A throughput measured with ``gradient_checkpointing`` as training tokens/s without checkpointing."""
    return measured * (CHECKPOINTING_COST if gradient_checkpointing else 1.0)
