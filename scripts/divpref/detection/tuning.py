"""The choices divergence detection makes on a model's dev scores: Mean-Var's lambda, a classifier's score.

Classification (KL) (``likert_classification``) takes its score from config
``detection.classification_score``: a fixed candidate (``extreme_joint``, the full paper's) or ``dev`` (the
candidate with the best dev AUROC).
"""

from collections.abc import Sequence

import numpy as np
import polars as pl

from divpref.common.constants import CLASSIFICATION, LIKERT_CLASSIFICATION, MEAN_VAR
from divpref.detection.scores import CANDIDATE_SCORES, divergence_auroc, divergence_scores

DEV_CHOICE = "dev"
"""``detection.classification_score`` value: choose Classification (KL)'s score on dev AUROC."""
CLASSIFICATION_SCORE_CHOICES = ("extreme_joint", DEV_CHOICE)
"""Values of ``detection.classification_score``; the first is the paper config's (and the default)."""


def tune_lambda(
    dev_agreement: Sequence[str], dev_scores: pl.DataFrame, grid: Sequence[float]
) -> tuple[float, float]:
    """(lambda, dev AUROC): the ``grid`` value whose Mean-Var divergence score has the best dev AUROC.

    Ties go to the smallest lambda.
    """
    if not grid or min(grid) < 0:
        raise ValueError(f"lambda grid must be non-empty and non-negative, got {list(grid)}")
    best_lambda, best_auroc = float("nan"), -np.inf
    for lam in sorted(grid):
        auroc = divergence_auroc(dev_agreement, divergence_scores(MEAN_VAR, dev_scores, lam))
        if auroc > best_auroc:
            best_lambda, best_auroc = float(lam), auroc
    return best_lambda, best_auroc


def choose_classification_score(
    dev_agreement: Sequence[str], dev_scores: pl.DataFrame, method: str = CLASSIFICATION
) -> tuple[str, dict[str, float]]:
    """(name, dev AUROC per candidate): the :data:`CANDIDATE_SCORES` candidate with the best dev AUROC.

    Ties go to the earlier candidate (``opposite_mass`` for classification, ``extreme_joint`` for
    likert_classification).
    """
    dev_aurocs = {
        name: divergence_auroc(dev_agreement, divergence_scores(method, dev_scores, None, name))
        for name in CANDIDATE_SCORES[method]
    }
    best_name = next(name for name, auroc in dev_aurocs.items() if auroc == max(dev_aurocs.values()))
    return best_name, dev_aurocs


def choose_on_dev(
    method: str,
    dev_agreement: Sequence[str],
    dev_scores: pl.DataFrame,
    lambda_grid: Sequence[float],
    classification_score: str = DEV_CHOICE,
) -> tuple[float | None, str | None, dict[str, float]]:
    """``(lambda, score_name, dev AUROCs)``: what detection chooses for ``method`` on its dev pairs.

    Mean-Var: :func:`tune_lambda`, its dev AUROC under ``"lambda"``; the classification methods:
    :func:`choose_classification_score` and each candidate's dev AUROC; other methods choose nothing.
    ``classification_score`` (config ``detection.classification_score``) other than ``dev`` fixes
    likert_classification's score to that candidate (every candidate's dev AUROC is still reported).
    """
    if classification_score not in CLASSIFICATION_SCORE_CHOICES:
        raise ValueError(
            f"detection.classification_score: {classification_score!r} is not one of "
            f"{list(CLASSIFICATION_SCORE_CHOICES)}"
        )
    if method == MEAN_VAR:
        lam, auroc = tune_lambda(dev_agreement, dev_scores, lambda_grid)
        return lam, None, {"lambda": auroc}
    if method in CANDIDATE_SCORES:
        score_name, aurocs = choose_classification_score(dev_agreement, dev_scores, method)
        if method == LIKERT_CLASSIFICATION and classification_score != DEV_CHOICE:
            score_name = classification_score
        return None, score_name, aurocs
    return None, None, {}
