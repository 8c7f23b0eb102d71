"""The built-in scalar reward methods, Bradley-Terry (``bt``) and MSE regression (``mse``).

:mod:`divpref.models.methods` registers them on import; the distributional methods register themselves
(:mod:`divpref.models.distributional`, :mod:`divpref.models.likert`). torch is imported inside the functions
only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from divpref.common import constants
from divpref.models.losses import (
    bradley_terry_row_loss,
    mean_or_nan,
    paired_mse_row_loss,
    pairwise_accuracy,
    signed_margin,
)
from divpref.models.reward_method import (
    RewardMethod,
    Targets,
    finite_float_column,
    mean_loss,
    optional_row_weight,
    pair_keys,
    require_columns,
    scalar_rewards,
    scalar_score_columns,
)

if TYPE_CHECKING:
    import polars as pl
    from torch import Tensor


# Bradley-Terry: P(A > B) = logistic(r_A - r_B); loss = -log sigma(r_chosen - r_rejected)


def _bt_encode(frame: pl.DataFrame, source: str) -> dict[str, np.ndarray]:
    require_columns(frame, ["chosen"], source)
    a_preferred = np.empty(frame.height, dtype=np.float32)
    for index, (key, chosen) in enumerate(zip(pair_keys(frame), frame["chosen"].to_list(), strict=True)):
        if chosen not in ("a", "b"):
            raise ValueError(f"{source}: pair_id {key!r}: chosen={chosen!r} is not 'a' or 'b'")
        a_preferred[index] = 1.0 if chosen == "a" else 0.0
    return {"a_preferred": a_preferred, **optional_row_weight(frame, source)}


def _bt_margin(out_a: Tensor, out_b: Tensor, targets: Targets) -> Tensor:
    reward_a, reward_b = scalar_rewards(out_a, out_b)
    return signed_margin(reward_a, reward_b, targets["a_preferred"])


def bt_loss(out_a: Tensor, out_b: Tensor, targets: Targets) -> Tensor:
    """Bradley-Terry negative log-likelihood per row: ``-logsigmoid(r_chosen - r_rejected)``."""
    reward_a, reward_b = scalar_rewards(out_a, out_b)
    return bradley_terry_row_loss(reward_a, reward_b, targets["a_preferred"])


def bt_dev_metrics(out_a: Tensor, out_b: Tensor, targets: Targets) -> dict[str, float]:
    """Pairwise accuracy (selection metric), mean margin ``r_chosen - r_rejected``, and the BT loss."""
    out_a, out_b = out_a.double(), out_b.double()
    margin = _bt_margin(out_a, out_b, targets)
    empty = margin.numel() == 0
    return {
        "accuracy": pairwise_accuracy(margin),
        "mean_margin": mean_or_nan(margin),
        "loss": float("nan") if empty else float(mean_loss(BT_METHOD, out_a, out_b, targets)),
    }


BT_METHOD = RewardMethod(
    name=constants.BT,
    head_outputs=1,
    target_columns=("chosen",),
    encode_targets=_bt_encode,
    loss=bt_loss,
    dev_metrics=bt_dev_metrics,
    selection_metric="accuracy",
    greater_is_better=True,
    score_columns=scalar_score_columns,
    single_value=True,
)


# MSE regression of each response's reward onto its (mean or per-annotator) Likert score


def _mse_encode(frame: pl.DataFrame, source: str) -> dict[str, np.ndarray]:
    require_columns(frame, ["score_a", "score_b"], source)
    return {
        "score_a": finite_float_column(frame, "score_a", source),
        "score_b": finite_float_column(frame, "score_b", source),
        **optional_row_weight(frame, source),
    }


def mse_loss(out_a: Tensor, out_b: Tensor, targets: Targets) -> Tensor:
    """Per row, the mean squared error of both responses' rewards against their scores."""
    reward_a, reward_b = scalar_rewards(out_a, out_b)
    return paired_mse_row_loss(reward_a, reward_b, targets["score_a"], targets["score_b"])


def mse_dev_metrics(out_a: Tensor, out_b: Tensor, targets: Targets) -> dict[str, float]:
    """MSE (selection metric, lower is better); mean margin and accuracy over pairs with unequal scores.

    The margin is ``r_better - r_worse``, "better" being the response with the higher target score.
    """
    out_a, out_b = out_a.double(), out_b.double()
    reward_a, reward_b = scalar_rewards(out_a, out_b)
    score_difference = targets["score_a"].double() - targets["score_b"].double()
    decided = score_difference != 0
    margin = (reward_a - reward_b)[decided] * score_difference[decided].sign()
    return {
        "mse": float("nan") if reward_a.numel() == 0 else float(mean_loss(MSE_METHOD, out_a, out_b, targets)),
        "mean_margin": mean_or_nan(margin),
        "accuracy": pairwise_accuracy(margin),
    }


MSE_METHOD = RewardMethod(
    name=constants.MSE,
    head_outputs=1,
    target_columns=("score_a", "score_b"),
    encode_targets=_mse_encode,
    loss=mse_loss,
    dev_metrics=mse_dev_metrics,
    selection_metric="mse",
    greater_is_better=False,
    score_columns=scalar_score_columns,
    needs_scores=True,
    single_value=True,
)


BUILTIN_SCALAR_METHODS = (BT_METHOD, MSE_METHOD)
"""Registered by :mod:`divpref.models.methods` when it is imported."""
