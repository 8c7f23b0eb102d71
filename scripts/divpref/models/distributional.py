"""Distributional reward models that predict the annotators' label distribution of a pair.

Both methods output probabilities over the five ordered labels of
:data:`divpref.common.constants.ORDERED_LABELS` (B clearly, B slightly, tie, A slightly, A clearly) and are
trained with KL(annotators || model):

* ``mean_var``: each response gets a reward r ~ N(mu, sigma^2); the label probabilities are the mass of
  r_A - r_B ~ N(mu_A - mu_B, sigma_A^2 + sigma_B^2 - 2 rho sigma_A sigma_B) on the SPEC intervals
  (-inf, -1.5), [-1.5, -0.5), [-0.5, 0.5), [0.5, 1.5), [1.5, inf). rho is a condition setting, not learned:
  each response is encoded on its own, so the model has no pair-level representation to predict a covariance
  from, and the loss only sees the total variance, so rho would not be identifiable from it
  (:mod:`divpref.models.method_options`: 0, a fixed number, or ``tie_frequency``). The condition's
  ``objective`` is ``kl`` (the full paper's Mean-Var (KL)) or ``nll``, the Gaussian negative log-likelihood of
  the annotators' strengths s in {-2..2} under that normal (with rho = 0 the paper's "Mean-Var (NLL,
  Independent)" baseline). The NLL of the interval LABELS would not be a new objective: it is KL + the entropy
  of the annotators' distribution, a constant, so it has the KL's gradients (tested).
* ``classification``: a 5-way distribution built antisymmetrically from per-response outputs, so swapping
  A and B reverses the distribution exactly (see :func:`classification_logits`).

Registered in :mod:`divpref.models.methods` on import. torch is imported inside functions only, like the
registry.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from divpref.common import constants
from divpref.common.constants import ORDERED_LABELS
from divpref.models.losses import pairwise_accuracy
from divpref.models.methods import RewardMethod, Targets, optional_row_weight, register, require_columns

if TYPE_CHECKING:
    import polars as pl
    from torch import Tensor

N_LABELS = len(ORDERED_LABELS)
LABEL_STRENGTHS = (-2, -1, 0, 1, 2)
"""Signed strength of each ordered label (+ favours A)."""

INTERVAL_BOUNDARIES = (-1.5, -0.5, 0.5, 1.5)
"""Cut points on r_A - r_B between consecutive labels (SPEC: tie (-0.5, 0.5), slight, clear beyond 1.5)."""

SIGMA_FLOOR = 0.05
"""Smallest per-response sigma; keeps the margin's std >= 0.07 so the interval z-scores stay finite."""

PROBABILITY_SMOOTHING = 1e-6
"""Mixes the model distribution with this much uniform mass: log q stays finite and every label keeps a
gradient even when the normal puts (numerically) zero mass on it."""

LABEL_DIST_TOLERANCE = 1e-4
"""How far a target distribution's sum may stray from 1."""


# ---------------------------------------------------------------------------------------------------------
# Shared distribution maths


def smooth(probabilities: Tensor) -> Tensor:
    """Mix with :data:`PROBABILITY_SMOOTHING` uniform mass (still sums to 1, strictly positive)."""
    return (probabilities + PROBABILITY_SMOOTHING) / (1.0 + N_LABELS * PROBABILITY_SMOOTHING)


def kl_divergence(target: Tensor, log_predicted: Tensor) -> Tensor:
    """Per-row KL(target || predicted) over the last axis; ``0 * log 0`` counts as 0."""
    import torch

    return (torch.xlogy(target, target) - target * log_predicted).sum(dim=-1)


def side_probabilities(label_probs: Tensor | np.ndarray) -> tuple[Tensor | np.ndarray, Tensor | np.ndarray]:
    """(P(A better), P(B better)): the mass on A-slightly + A-clearly and on B-clearly + B-slightly."""
    return label_probs[..., 3] + label_probs[..., 4], label_probs[..., 0] + label_probs[..., 1]


def expected_strength(label_probs: Tensor) -> Tensor:
    """Expected signed strength sum_k k * p_k (+ favours A)."""
    import torch

    strengths = torch.tensor(LABEL_STRENGTHS, dtype=label_probs.dtype, device=label_probs.device)
    return (label_probs * strengths).sum(dim=-1)


def _distribution_dev_metrics(label_probs: Tensor, targets: Targets) -> dict[str, float]:
    """KL (selection metric), mean margin towards the annotators' side, and accuracy on decided pairs.

    The margin is P(A better) - P(B better), signed towards the side with the larger expected annotator
    strength; pairs whose annotators balance out (expected strength 0) are left out of margin and accuracy.
    """
    import torch

    target = targets["label_dist"].to(label_probs.dtype)
    if target.shape[0] == 0:
        return {"kl": float("nan"), "mean_margin": float("nan"), "accuracy": float("nan")}
    kl = kl_divergence(target, torch.log(label_probs)).mean()
    p_a, p_b = side_probabilities(label_probs)
    annotator_side = torch.sign(expected_strength(target))
    decided = annotator_side != 0
    margin = (p_a - p_b)[decided] * annotator_side[decided]
    return {
        "kl": float(kl),
        "mean_margin": float(margin.mean()) if margin.numel() else float("nan"),
        "accuracy": pairwise_accuracy(margin),
    }


def encode_label_dist(frame: pl.DataFrame, source: str) -> dict[str, np.ndarray]:
    """``label_dist`` as float32 ``[rows, 5]``; ``ValueError`` naming the pair and value of a bad row.

    A row is bad if it is null, does not have 5 entries, has a negative or non-finite share, or does not sum
    to 1 (within :data:`LABEL_DIST_TOLERANCE`).
    """
    require_columns(frame, ["label_dist"], source)
    keys = frame["pair_id"].to_list() if "pair_id" in frame.columns else list(range(frame.height))
    rows = frame["label_dist"].to_list()
    encoded = np.zeros((frame.height, N_LABELS), dtype=np.float32)
    for index, (key, row) in enumerate(zip(keys, rows, strict=True)):
        problem = _label_dist_problem(row)
        if problem:
            raise ValueError(f"{source}: pair_id {key!r}: label_dist={row!r} {problem}")
        encoded[index] = np.asarray(row) / sum(row)  # exact normalisation of rounding-level deviations
    return {"label_dist": encoded, **optional_row_weight(frame, source)}


def _label_dist_problem(row: list[float] | None) -> str:
    if row is None or len(row) != N_LABELS:
        return f"must be a list of {N_LABELS} shares"
    if any(value is None or not math.isfinite(value) or value < 0 for value in row):
        return "has a missing, negative or non-finite share"
    if abs(sum(row) - 1.0) > LABEL_DIST_TOLERANCE:
        return f"sums to {sum(row)!r}, not 1"
    return ""


def _as_float64_tensor(array: np.ndarray) -> Tensor:
    import torch

    return torch.as_tensor(np.asarray(array, dtype=np.float64))


# ---------------------------------------------------------------------------------------------------------
# Mean-Var: r ~ N(mu, sigma^2) per response


def mean_and_sigma(out: Tensor) -> tuple[Tensor, Tensor]:
    """Split a ``[n, 2]`` head output into mu and sigma = softplus(raw) + :data:`SIGMA_FLOOR`.

    softplus rather than exp: it grows linearly, so a pair whose annotators split widely (large optimal
    sigma) cannot drive the raw output into exp's overflow, and d sigma / d raw stays below 1.
    """
    import torch.nn.functional as F

    return out[:, 0], F.softplus(out[:, 1]) + SIGMA_FLOOR


def interval_probabilities(margin_mean: Tensor, margin_std: Tensor) -> Tensor:
    """Mass of N(margin_mean, margin_std^2) on the five label intervals, shape ``[..., 5]``, summing to 1.

    Each interval's mass is a difference of normal CDFs. Where the interval lies right of the mean the
    upper-tail form Phi(-z_lo) - Phi(-z_hi) is used instead, so neither form subtracts two numbers near 1.
    """
    import torch
    from torch.special import ndtr

    boundaries = torch.tensor(INTERVAL_BOUNDARIES, dtype=margin_mean.dtype, device=margin_mean.device)
    z = (boundaries - margin_mean.unsqueeze(-1)) / margin_std.unsqueeze(-1)  # [..., 4]
    infinity = torch.full_like(z[..., :1], math.inf)
    lower = torch.cat([-infinity, z], dim=-1)  # [..., 5]
    upper = torch.cat([z, infinity], dim=-1)
    lower_tail_form = ndtr(upper) - ndtr(lower)
    upper_tail_form = ndtr(-lower) - ndtr(-upper)
    return torch.where(lower > 0, upper_tail_form, lower_tail_form).clamp_min(0.0)


def margin_std(sigma_a: Tensor, sigma_b: Tensor, rho: float = 0.0) -> Tensor:
    """std of r_A - r_B: sqrt(sigma_A^2 + sigma_B^2 - 2 rho sigma_A sigma_B) (positive for |rho| < 1)."""
    return (sigma_a.square() + sigma_b.square() - 2.0 * rho * sigma_a * sigma_b).sqrt()


def mean_var_label_probs(out_a: Tensor, out_b: Tensor, rho: float = 0.0) -> Tensor:
    """Smoothed label probabilities of r_A - r_B ~ N(mu_A - mu_B, margin_std^2), ``[n, 5]``."""
    mu_a, sigma_a = mean_and_sigma(_at_least_float32(out_a))
    mu_b, sigma_b = mean_and_sigma(_at_least_float32(out_b))
    return smooth(interval_probabilities(mu_a - mu_b, margin_std(sigma_a, sigma_b, rho)))


def mean_var_loss(out_a: Tensor, out_b: Tensor, targets: Targets, rho: float = 0.0) -> Tensor:
    """Per row, KL(annotators' label distribution || Mean-Var label distribution)."""
    import torch

    label_probs = mean_var_label_probs(out_a, out_b, rho)
    target = targets["label_dist"].to(label_probs.dtype)
    return kl_divergence(target, torch.log(label_probs))


def gaussian_nll(strength: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """-log N(strength; mean, std^2) = 0.5 ln(2 pi std^2) + (strength - mean)^2 / (2 std^2), elementwise."""
    return 0.5 * math.log(2.0 * math.pi) + std.log() + (strength - mean).square() / (2.0 * std.square())


def mean_var_nll_loss(out_a: Tensor, out_b: Tensor, targets: Targets, rho: float = 0.0) -> Tensor:
    """Per row: sum_k p_k * -log N(s_k; mu_A - mu_B, margin_std^2), s_k the strength of label k."""
    import torch

    mu_a, sigma_a = mean_and_sigma(_at_least_float32(out_a))
    mu_b, sigma_b = mean_and_sigma(_at_least_float32(out_b))
    target = targets["label_dist"].to(mu_a.dtype)
    strengths = torch.tensor(LABEL_STRENGTHS, dtype=mu_a.dtype, device=mu_a.device)
    std = margin_std(sigma_a, sigma_b, rho).unsqueeze(-1)
    return (target * gaussian_nll(strengths, (mu_a - mu_b).unsqueeze(-1), std)).sum(dim=-1)


def mean_var_dev_metrics(
    out_a: Tensor, out_b: Tensor, targets: Targets, rho: float = 0.0, objective: str = "kl"
) -> dict[str, float]:
    """Dev KL (selection), mean margin, accuracy, the mean margin std, and the NLL when it is the objective.

    Checkpoints are selected on dev KL for both objectives: it scores the predicted label distribution,
    which is what detection uses, on the same scale for the KL and the NLL model.
    """
    out_a, out_b = out_a.double(), out_b.double()
    metrics = _distribution_dev_metrics(mean_var_label_probs(out_a, out_b, rho), targets)
    _, sigma_a = mean_and_sigma(out_a)
    _, sigma_b = mean_and_sigma(out_b)
    metrics["mean_margin_std"] = float(margin_std(sigma_a, sigma_b, rho).mean()) if len(out_a) else math.nan
    if objective == "nll":
        metrics["nll"] = (
            float(mean_var_nll_loss(out_a, out_b, targets, rho).mean()) if len(out_a) else math.nan
        )
    return metrics


def mean_var_score_columns(
    out_a: np.ndarray, out_b: np.ndarray, rho: float = 0.0
) -> dict[str, np.ndarray | None]:
    """reward = mu, sigma per response, and the pair's five label probabilities."""
    tensor_a, tensor_b = _as_float64_tensor(out_a), _as_float64_tensor(out_b)
    mu_a, sigma_a = mean_and_sigma(tensor_a)
    mu_b, sigma_b = mean_and_sigma(tensor_b)
    return {
        "reward_a": mu_a.numpy(),
        "reward_b": mu_b.numpy(),
        "sigma_a": sigma_a.numpy(),
        "sigma_b": sigma_b.numpy(),
        "label_probs": mean_var_label_probs(tensor_a, tensor_b, rho).numpy(),
    }


MEAN_VAR_OBJECTIVES = ("kl", "nll")


def configure_mean_var(options: Mapping[str, Any]) -> RewardMethod:
    """Mean-Var with resolved settings ``{"rho": float, "objective": "kl" | "nll", ...}`` bound in.

    Other keys (how rho was resolved: ``rho_setting``, ``tie_rate``) are kept in ``options`` for the record.
    """
    rho = float(options.get("rho", 0.0))
    objective = options.get("objective", "kl")
    if not -1.0 < rho < 1.0:
        raise ValueError(f"Mean-Var rho must lie in (-1, 1), got {rho!r}")
    if objective not in MEAN_VAR_OBJECTIVES:
        raise ValueError(f"Mean-Var objective must be one of {MEAN_VAR_OBJECTIVES}, got {objective!r}")
    loss = mean_var_loss if objective == "kl" else mean_var_nll_loss
    return dataclasses.replace(
        MEAN_VAR,
        loss=functools.partial(loss, rho=rho),
        dev_metrics=functools.partial(mean_var_dev_metrics, rho=rho, objective=objective),
        score_columns=functools.partial(mean_var_score_columns, rho=rho),
        options=dict(options),
    )


# ---------------------------------------------------------------------------------------------------------
# Classification: a 5-way head over the ordered labels, antisymmetric in (A, B)

CLASSIFICATION_HEAD_OUTPUTS = 6
"""Per response: u (2 values, preference), v (2, response traits), w (2, traits that split annotators)."""


def classification_logits(out_a: Tensor, out_b: Tensor) -> Tensor:
    """Pair logits ``[n, 5]`` (B clearly, B slightly, tie, A slightly, A clearly) from ``[n, 6]`` outputs.

    With d_k = u_k(A) - u_k(B) (antisymmetric) and c_k = v_k(A) + v_k(B) + |w_k(A) - w_k(B)| (symmetric), k =
    1 (slight), 2 (clear), the logits are (c_2 - d_2, c_1 - d_1, 0, c_1 + d_1, c_2 + d_2). Swapping A and B
    negates d and keeps c, which reverses the logits, so the model cannot prefer a side by position. The tie
    logit is pinned to 0 (softmax is shift invariant), leaving the 4 free values any 5-way distribution needs.
    c_k sees response traits (v: e.g. both responses refuse) and how much the two responses differ in a trait
    (w: e.g. one is long, one short), the causes of divergence the paper names.
    """
    import torch

    difference = out_a[:, 0:2] - out_b[:, 0:2]
    common = out_a[:, 2:4] + out_b[:, 2:4] + (out_a[:, 4:6] - out_b[:, 4:6]).abs()
    tie = torch.zeros_like(difference[:, :1])
    return torch.cat(
        [
            common[:, 1:2] - difference[:, 1:2],
            common[:, 0:1] - difference[:, 0:1],
            tie,
            common[:, 0:1] + difference[:, 0:1],
            common[:, 1:2] + difference[:, 1:2],
        ],
        dim=-1,
    )


def classification_label_probs(out_a: Tensor, out_b: Tensor) -> Tensor:
    """Smoothed softmax of :func:`classification_logits`, ``[n, 5]``."""
    logits = classification_logits(_at_least_float32(out_a), _at_least_float32(out_b))
    return smooth(logits.softmax(dim=-1))


def classification_loss(out_a: Tensor, out_b: Tensor, targets: Targets) -> Tensor:
    """Per row, KL(annotators' label distribution || classifier distribution)."""
    import torch

    label_probs = classification_label_probs(out_a, out_b)
    target = targets["label_dist"].to(label_probs.dtype)
    return kl_divergence(target, torch.log(label_probs))


def classification_dev_metrics(out_a: Tensor, out_b: Tensor, targets: Targets) -> dict[str, float]:
    """Dev KL (selection), mean margin P(A better) - P(B better) towards the annotators' side, accuracy."""
    return _distribution_dev_metrics(classification_label_probs(out_a.double(), out_b.double()), targets)


def classification_score_columns(out_a: np.ndarray, out_b: np.ndarray) -> dict[str, np.ndarray | None]:
    """reward_a = P(A better), reward_b = P(B better) (per pair, not per response); the five probabilities."""
    label_probs = classification_label_probs(_as_float64_tensor(out_a), _as_float64_tensor(out_b)).numpy()
    p_a, p_b = side_probabilities(label_probs)
    return {"reward_a": p_a, "reward_b": p_b, "sigma_a": None, "sigma_b": None, "label_probs": label_probs}


def _at_least_float32(tensor: Tensor) -> Tensor:
    """Upcast half-precision head outputs (autocast) so the CDF and log maths run in float32 or better."""
    import torch

    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


# Dev metric for checkpoint selection: dev KL, lower is better. It is the training objective on held-out
# pairs, it scores the whole predicted distribution (what detection relies on) rather than only its side,
# and unlike accuracy it is defined on pairs whose annotators balance out.
MEAN_VAR = register(
    RewardMethod(
        name=constants.MEAN_VAR,
        head_outputs=2,
        target_columns=("label_dist",),
        encode_targets=encode_label_dist,
        loss=mean_var_loss,
        dev_metrics=mean_var_dev_metrics,
        selection_metric="kl",
        greater_is_better=False,
        score_columns=mean_var_score_columns,
        configure=configure_mean_var,
    )
)

CLASSIFICATION = register(
    RewardMethod(
        name=constants.CLASSIFICATION,
        head_outputs=CLASSIFICATION_HEAD_OUTPUTS,
        target_columns=("label_dist",),
        encode_targets=encode_label_dist,
        loss=classification_loss,
        dev_metrics=classification_dev_metrics,
        selection_metric="kl",
        greater_is_better=False,
        score_columns=classification_score_columns,
    )
)
