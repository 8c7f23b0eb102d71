"""The full paper's Classification (KL), ``likert_classification``: 5-way classifier of each RESPONSE's score.

HelpSteer2 helpfulness scores are integers 0-4 in the published file (SPEC: "not 1-5"). They are mapped to the
five Likert classes 1..5 explicitly: score s is class s + 1 (``likert_targets.likert_class``). Each response's
target is the empirical distribution of its annotators' scores over the five classes (``labels: all``), or all
mass on the class of its rounded mean score (``labels: agg``, halves round up). The head has 5 outputs per
response, a softmax gives the predicted distribution q, and the loss is the mean over pairs of
(KL(t_A || q_A) + KL(t_B || q_B)) / 2. The preference is the difference of expected scores
E_A - E_B, E = sum_k k q_k (the score file's ``reward_a`` / ``reward_b``; ``likert_probs_a`` / ``_b`` hold q).

Divergence scores (higher = more likely diverging), in ``likert_targets.DIVERGENCE_SCORES``; config
``detection.classification_score`` fixes ``extreme_joint`` (the paper config's) or chooses one per trained
model on dev AUROC like Mean-Var's lambda (``dev``; ties: the first):

- ``extreme_joint``: the paper's "predicted joint probability of annotators labelling the response as a 1 or
  5", per pair the mean over its two responses of q(1) q(5) (one annotator's 1 and another's 5);
- ``extreme_mass``: the other reading, "a 1 or a 5" as one event: the mean over the two responses of
  q(1) + q(5);
- ``opposite_mass``: min(P(S_A > S_B), P(S_B > S_A)) for independent draws S_A ~ q_A, S_B ~ q_B, the mass on
  the side opposite the predicted one;
- ``score_variance``: Var_A + Var_B of the predicted scores, the spread Mean-Var's sigma_A + sigma_B measures.

Registered in :mod:`divpref.models.methods` on import (an ``EXTENSION_MODULES`` entry). torch is imported
inside functions; targets and divergence scores live in :mod:`divpref.models.likert_targets` (no torch).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from divpref.common import constants
from divpref.models.distributional import PROBABILITY_SMOOTHING, kl_divergence
from divpref.models.likert_targets import CLASS_VALUES, N_CLASSES, TARGET_COLUMNS, encode_likert
from divpref.models.losses import pairwise_accuracy
from divpref.models.methods import RewardMethod, Targets, optional_row_weight, register

if TYPE_CHECKING:
    from torch import Tensor


# ---------------------------------------------------------------------------------------------------------
# Model


def likert_probs(out: Tensor) -> Tensor:
    """Smoothed softmax of a ``[n, 5]`` head output (upcast from half precision)."""
    import torch

    logits = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
    return (logits.softmax(dim=-1) + PROBABILITY_SMOOTHING) / (1.0 + N_CLASSES * PROBABILITY_SMOOTHING)


def expected_score(probs: Tensor) -> Tensor:
    """sum_k k q_k over the Likert classes 1..5."""
    import torch

    values = torch.tensor(CLASS_VALUES, dtype=probs.dtype, device=probs.device)
    return (probs * values).sum(dim=-1)


def likert_loss(out_a: Tensor, out_b: Tensor, targets: Targets) -> Tensor:
    """Per row (pair), (KL(t_A || q_A) + KL(t_B || q_B)) / 2, unreduced (the RewardMethod loss contract)."""
    import torch

    q_a, q_b = likert_probs(out_a), likert_probs(out_b)
    kl_a = kl_divergence(targets["likert_dist_a"].to(q_a.dtype), torch.log(q_a))
    kl_b = kl_divergence(targets["likert_dist_b"].to(q_b.dtype), torch.log(q_b))
    return (kl_a + kl_b) / 2.0


def likert_dev_metrics(out_a: Tensor, out_b: Tensor, targets: Targets) -> dict[str, float]:
    """Dev KL (selection, lower is better); margin E_A - E_B towards the side with the higher mean target
    score, and accuracy, over pairs whose target means differ."""
    out_a, out_b = out_a.double(), out_b.double()
    if out_a.shape[0] == 0:
        return {"kl": math.nan, "mean_margin": math.nan, "accuracy": math.nan}
    target_a, target_b = targets["likert_dist_a"].double(), targets["likert_dist_b"].double()
    side = (expected_score(target_a) - expected_score(target_b)).sign()
    decided = side != 0
    margin = (expected_score(likert_probs(out_a)) - expected_score(likert_probs(out_b)))[decided] * side[
        decided
    ]
    return {
        "kl": float(likert_loss(out_a, out_b, targets).mean()),
        "mean_margin": float(margin.mean()) if margin.numel() else math.nan,
        "accuracy": pairwise_accuracy(margin),
    }


def likert_score_columns(out_a: np.ndarray, out_b: np.ndarray) -> dict[str, np.ndarray | None]:
    """reward = expected Likert score per response; likert_probs_* = the predicted class distributions."""
    import torch

    q_a = likert_probs(torch.as_tensor(np.asarray(out_a, dtype=np.float64)))
    q_b = likert_probs(torch.as_tensor(np.asarray(out_b, dtype=np.float64)))
    return {
        "reward_a": expected_score(q_a).numpy(),
        "reward_b": expected_score(q_b).numpy(),
        "sigma_a": None,
        "sigma_b": None,
        "label_probs": None,
        "likert_probs_a": q_a.numpy(),
        "likert_probs_b": q_b.numpy(),
    }


LIKERT_CLASSIFICATION = register(
    RewardMethod(
        name=constants.LIKERT_CLASSIFICATION,
        head_outputs=N_CLASSES,
        target_columns=TARGET_COLUMNS,
        encode_targets=lambda frame, source: {
            **encode_likert(frame, source),
            **optional_row_weight(frame, source),
        },
        loss=likert_loss,
        dev_metrics=likert_dev_metrics,
        selection_metric="kl",
        greater_is_better=False,
        score_columns=likert_score_columns,
        needs_scores=True,  # per-response Likert targets: only datasets with scores
    )
)
