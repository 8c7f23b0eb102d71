"""The contract of a reward-model training method (:class:`RewardMethod`) and the helpers methods share.

A method turns the per-response head outputs of a pair into a loss, dev metrics and score-file columns.
Both responses of every row are encoded in ONE forward pass (A rows then B rows); the trainer splits the
head output into ``out_a`` and ``out_b``, each of shape ``[batch, head_outputs]``.

Loss contract (stable; see :class:`RewardMethod`): ``loss`` returns one UNREDUCED loss per row. The trainer,
not the method, reduces: an optimisation step's loss is ``sum_i w_i * loss_i / sum_i w_i`` over ALL rows of
the step (every micro-batch, every data-parallel process), ``w_i`` being the row's optional :data:`ROW_WEIGHT`
target (default 1). Accumulating micro-batches or data-parallel shares therefore gives exactly the gradient
of the whole batch, including the smaller last batch of an epoch and rows of different weights.

Import these names from :mod:`divpref.models.methods`, the registry, which re-exports them. torch is imported
inside the functions only, so this module is cheap to import at Snakefile parse time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl
    from torch import Tensor

SCORE_COLUMNS = (
    "reward_a",
    "reward_b",
    "sigma_a",
    "sigma_b",
    "label_probs",
    "likert_probs_a",
    "likert_probs_b",
)
"""Columns of ``results/scores/...parquet`` besides ``pair_id`` (ARCHITECTURE.md)."""
OPTIONAL_SCORE_COLUMNS = ("likert_probs_a", "likert_probs_b")
"""Score columns a method's ``score_columns`` may leave out (then null): likert_classification's per-response
distributions over the five Likert classes."""
LIST_SCORE_COLUMNS = ("label_probs", "likert_probs_a", "likert_probs_b")


Targets = Mapping[str, "Tensor"]
"""A batch's targets: name -> tensor, batch first (see ``RewardMethod.encode_targets``)."""

ROW_WEIGHT = "weight"
"""Optional target (and trainset column) of per-row weights: finite, >= 0, default 1 for every row.

A method's ``encode_targets`` returns it (e.g. via :func:`optional_row_weight`) when its rows are weighted;
the trainer uses it to normalise the loss, and it is never passed to a method's loss maths otherwise."""


@dataclass(frozen=True)
class RewardMethod:
    """Everything the trainer, the selector and the scorer need to know about one training method.

    Attributes:
        name: registry key, the ``method`` of a condition (``bt``, ``mse``, ...).
        head_outputs: ``num_labels`` of the per-response sequence-classification head.
        target_columns: trainset columns (besides pair_id/prompt/responses) that feed the targets.
        encode_targets: ``(frame, source) -> {target_name: float32/int64 array [rows, ...]}``;
            raises ``ValueError`` naming ``source``, the pair_id and the value on bad input.
        loss: ``(out_a, out_b, targets) -> Tensor [rows]``: the loss of EACH row, unreduced and unweighted
            (differentiable, float32 or wider). The trainer reduces it to the weighted mean over the whole
            optimisation step (:func:`weighted_loss_sum`, divided by the step's total :data:`ROW_WEIGHT`), so
            a method must not average, and a row's loss must depend on that row only (no batch-level terms:
            they could not be split into micro-batches or data-parallel shares).
        dev_metrics: ``(out_a, out_b, targets) -> {metric: float}`` over the WHOLE dev set; includes
            ``selection_metric`` and ``mean_margin``.
        selection_metric: the dev metric that picks the best checkpoint.
        greater_is_better: direction of ``selection_metric``.
        score_columns: ``(out_a, out_b) -> {column: array or None}`` with every key of :data:`SCORE_COLUMNS`
            (keys of :data:`OPTIONAL_SCORE_COLUMNS` may be left out); ``None`` means the column is null for
            this method. Inputs are numpy ``[n, head_outputs]``.
        configure: ``(options) -> RewardMethod``, the method with condition settings applied (e.g. Mean-Var's
            ``rho``, ``objective``); None for a method without settings.
        options: the resolved settings of a configured method (empty for the registered one); part of the
            training fingerprint, recorded in the training log.
        trainset: the training-set layout (``divpref.data.trainsets.LAYOUTS``) the targets come from; empty
            means the method's own name (``bt``, ``mse``, ``mean_var``, ``classification``).
        needs_scores: the training set needs per-annotator Likert scores (``score_a``/``score_b`` of the
            data); the workflow runs the method only on datasets that have them.
        single_value: the score file's ``reward_a``/``reward_b`` are one scalar reward per response, so
            divergence detection scores a pair by -|r_A - r_B| (otherwise the method needs its own rule in
            ``divpref.detection.table``, as Mean-Var and Classification have).

    Adding a method: write ``encode_targets`` (add ``optional_row_weight(frame, source)`` to its result if
    trainset rows may carry a ``weight`` column), a per-row ``loss``, ``dev_metrics`` and ``score_columns``;
    then ``register(RewardMethod(...))`` at import time.
    """

    name: str
    head_outputs: int
    target_columns: tuple[str, ...]
    encode_targets: Callable[[pl.DataFrame, str], dict[str, np.ndarray]]
    loss: Callable[[Tensor, Tensor, Targets], Tensor]
    dev_metrics: Callable[[Tensor, Tensor, Targets], dict[str, float]]
    selection_metric: str
    greater_is_better: bool
    score_columns: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray | None]]
    configure: Callable[[Mapping[str, Any]], RewardMethod] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    trainset: str = ""
    needs_scores: bool = False
    single_value: bool = False

    @property
    def fingerprint_key(self) -> str:
        """The method's name, with its options when it has any (so a changed setting never resumes)."""
        return self.name if not self.options else f"{self.name}{sorted(self.options.items())}"

    @property
    def trainset_layout(self) -> str:
        """The training-set layout this method's targets are read from."""
        return self.trainset or self.name

    def is_better(self, candidate: float, incumbent: float) -> bool:
        """Strictly better in this method's direction; NaN is never better, anything beats NaN."""
        if math.isnan(candidate):
            return False
        if math.isnan(incumbent):
            return True
        return candidate > incumbent if self.greater_is_better else candidate < incumbent


def row_weights(targets: Targets, n_rows: int, like: Tensor) -> Tensor:
    """The :data:`ROW_WEIGHT` target as ``like``'s dtype and device, or ones when the rows are unweighted."""
    import torch

    if ROW_WEIGHT in targets:
        return targets[ROW_WEIGHT].to(device=like.device, dtype=like.dtype)
    return torch.ones(n_rows, dtype=like.dtype, device=like.device)


def weighted_loss_sum(
    method: RewardMethod, out_a: Tensor, out_b: Tensor, targets: Targets
) -> tuple[Tensor, Tensor]:
    """``(sum_i w_i * loss_i, sum_i w_i)`` of one (micro-)batch; ``TypeError`` if the loss is not per row.

    Dividing the sums of all micro-batches of a step by the step's total weight gives the weighted mean
    loss of the whole step, whatever the split.
    """
    losses = method.loss(out_a, out_b, targets)
    if losses.dim() != 1 or losses.shape[0] != out_a.shape[0]:
        raise TypeError(
            f"reward method {method.name!r}: loss must return one unreduced loss per row, shape "
            f"[{out_a.shape[0]}], got shape {list(losses.shape)} (see RewardMethod.loss)"
        )
    weights = row_weights(targets, out_a.shape[0], losses)
    return (losses * weights).sum(), weights.sum()


def mean_loss(method: RewardMethod, out_a: Tensor, out_b: Tensor, targets: Targets) -> Tensor:
    """The weighted mean loss of one whole batch (what a step over exactly these rows minimises)."""
    total, weight = weighted_loss_sum(method, out_a, out_b, targets)
    return total / weight


def pair_keys(frame: pl.DataFrame) -> list[Any]:
    """The rows' ``pair_id`` values (row numbers without that column), for error messages."""
    return frame["pair_id"].to_list() if "pair_id" in frame.columns else list(range(frame.height))


def require_columns(frame: pl.DataFrame, columns: Sequence[str], source: str) -> None:
    """Raise ``ValueError`` naming ``source`` if any of ``columns`` is missing."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; has {frame.columns}")


def finite_float_column(frame: pl.DataFrame, column: str, source: str) -> np.ndarray:
    """``frame[column]`` as float32; ``ValueError`` names the first null/non-finite pair_id and value."""
    values = frame[column].to_list()
    for key, value in zip(pair_keys(frame), values, strict=True):
        if value is None or not math.isfinite(float(value)):
            raise ValueError(f"{source}: pair_id {key!r}: {column}={value!r} is not a finite number")
    return np.asarray(values, dtype=np.float32)


def optional_row_weight(frame: pl.DataFrame, source: str) -> dict[str, np.ndarray]:
    """``{ROW_WEIGHT: float32 [rows]}`` from a trainset's ``weight`` column, or ``{}`` without one.

    ``ValueError`` names the pair and value of a null, negative or non-finite weight.
    """
    if ROW_WEIGHT not in frame.columns:
        return {}
    values = frame[ROW_WEIGHT].to_list()
    for key, value in zip(pair_keys(frame), values, strict=True):
        if value is None or not math.isfinite(float(value)) or float(value) < 0:
            raise ValueError(f"{source}: pair_id {key!r}: {ROW_WEIGHT}={value!r} is not a finite weight >= 0")
    return {ROW_WEIGHT: np.asarray(values, dtype=np.float32)}


def scalar_rewards(out_a: Tensor | np.ndarray, out_b: Tensor | np.ndarray) -> tuple[Any, Any]:
    """The single head output of each response as a 1-d vector."""
    return out_a[:, 0], out_b[:, 0]


def scalar_score_columns(out_a: np.ndarray, out_b: np.ndarray) -> dict[str, np.ndarray | None]:
    reward_a, reward_b = scalar_rewards(
        np.asarray(out_a, dtype=np.float64), np.asarray(out_b, dtype=np.float64)
    )
    return {"reward_a": reward_a, "reward_b": reward_b, "sigma_a": None, "sigma_b": None, "label_probs": None}


def scores_frame(
    method: RewardMethod, pair_ids: Sequence[Any], out_a: np.ndarray, out_b: np.ndarray
) -> pl.DataFrame:
    """The score-file frame (``pair_id`` + :data:`SCORE_COLUMNS`, nulls typed) for one method's outputs."""
    import polars as pl

    columns = method.score_columns(np.asarray(out_a), np.asarray(out_b))
    columns = {**dict.fromkeys(OPTIONAL_SCORE_COLUMNS), **columns}
    if set(columns) != set(SCORE_COLUMNS):
        raise ValueError(
            f"method {method.name!r} returned score columns {sorted(columns)}, want {SCORE_COLUMNS}"
        )
    n = len(pair_ids)
    data: dict[str, pl.Series] = {"pair_id": pl.Series("pair_id", list(pair_ids))}
    for name in ("reward_a", "reward_b", "sigma_a", "sigma_b"):
        values = columns[name]
        data[name] = (
            pl.Series(name, [None] * n, dtype=pl.Float64)
            if values is None
            else pl.Series(name, np.asarray(values, dtype=np.float64))
        )
    for name in LIST_SCORE_COLUMNS:
        probs = columns[name]
        data[name] = (
            pl.Series(name, [None] * n, dtype=pl.List(pl.Float64))
            if probs is None
            else pl.Series(name, np.asarray(probs, dtype=np.float64).tolist(), dtype=pl.List(pl.Float64))
        )
    return pl.DataFrame(data)
