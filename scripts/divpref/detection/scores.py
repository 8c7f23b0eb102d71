"""Do reward models know when annotators disagree? Preference accuracy and divergence AUROC per condition.

* Preference accuracy, on high-agreement preference pairs: the model's side is the sign of
  reward_a - reward_b (BT/MSE: the rewards; Mean-Var: mu_A - mu_B, the side of the predicted margin's mean;
  Classification: P(A better) - P(B better), the score file's reward columns), compared with the annotators'
  ``chosen`` side; an exact tie counts one half.
* Divergence AUROC (sklearn ``roc_auc_score``): how well a per-pair score ranks ``diverging`` pairs above
  high-agreement pairs (``high_agreement_pref`` and ``high_agreement_tie``); ``other`` pairs are left out.
  Higher scores mean "more likely diverging" for every method:

  - BT, MSE, off-the-shelf reward models (``pretrained``) and any registered single-value method:
    -|r_A - r_B| (an undecided model);
  - Mean-Var: lambda (sigma_A + sigma_B) - |mu_A - mu_B|, the negation of the full paper's agreement score
    |mu_A - mu_B| - lambda (sigma_A + sigma_B), with lambda >= 0 tuned for dev AUROC;
  - Pairwise classification (``classification``, this project's pair-level model): one of two candidates on
    the 5-way ``label_probs``, chosen like Mean-Var's lambda by dev AUROC (ties: ``opposite_mass``):
    ``opposite_mass``, the mass on the side opposite the predicted one, min(P(A better), P(B better)), or
    ``entropy``, -sum_k p_k ln p_k. Entropy also rises on pairs the model thinks are ties, which
    high-agreement ties are; which one ranks diverging pairs better is an empirical question, so the dev
    pairs decide.
  - Classification (KL) (``likert_classification``, the full paper's per-response Likert classifier): one of
    :data:`divpref.models.likert_targets.DIVERGENCE_SCORES`, fixed by config
    ``detection.classification_score`` (``extreme_joint``, the paper's "joint probability of annotators
    labelling the response as a 1 or 5", by default) or chosen the same way (``dev``; ties:
    ``extreme_joint``).

Confidence intervals: percentile bootstrap over test pairs, stratified by agreement category (so both AUROC
classes keep their sizes), seeded per row key. With several seeds a pooled row (seed ``all``) averages the
per-seed metrics and its bootstrap also resamples seeds, as in :mod:`divpref.common.bootstrap`.
"""

from collections.abc import Sequence

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from divpref.common import scorefiles
from divpref.common.constants import BT, CLASSIFICATION, LIKERT_CLASSIFICATION, MEAN_VAR, MSE, PRETRAINED
from divpref.models import likert_targets as likert

DIVERGING = "diverging"
HIGH_AGREEMENT = ("high_agreement_pref", "high_agreement_tie")
METHOD_ORDER = (PRETRAINED, BT, MSE, MEAN_VAR, LIKERT_CLASSIFICATION, CLASSIFICATION)
METHOD_NAMES = {
    PRETRAINED: "Pretrained",
    BT: "BT",
    MSE: "MSE",
    MEAN_VAR: "Mean-Var",
    LIKERT_CLASSIFICATION: "Classification",
    CLASSIFICATION: "Pairwise classification",
}
SINGLE_VALUE = "single_value"
"""How a registered single-value method (``RewardMethod.single_value``) is scored: as BT/MSE are."""
DISTRIBUTIONAL_METHODS = (MEAN_VAR, LIKERT_CLASSIFICATION, CLASSIFICATION)
CLASSIFICATION_SCORES = {
    "opposite_mass": "min(P(A better), P(B better))",
    "entropy": "-sum_k p_k ln p_k of the 5 label probabilities",
}
"""Classification's candidate divergence scores (name: formula), in tie-break order."""
SCORE_DESCRIPTIONS = {
    SINGLE_VALUE: "-|r_A - r_B|",
    PRETRAINED: "-|r_A - r_B|",
    BT: "-|r_A - r_B|",
    MSE: "-|r_A - r_B|",
    MEAN_VAR: "lambda (sigma_A + sigma_B) - |mu_A - mu_B|",
    CLASSIFICATION: " or ".join(f"{name} {formula}" for name, formula in CLASSIFICATION_SCORES.items())
    + ", whichever has the better dev AUROC",
    LIKERT_CLASSIFICATION: "extreme_joint, "
    + likert.DIVERGENCE_SCORES["extreme_joint"]
    + " (detection.classification_score; with `dev`, the best on dev of "
    + ", ".join(likert.DIVERGENCE_SCORES)
    + ")",
}
CANDIDATE_SCORES = {
    CLASSIFICATION: CLASSIFICATION_SCORES,
    LIKERT_CLASSIFICATION: likert.DIVERGENCE_SCORES,
}
"""Methods whose divergence score is one of several candidates chosen on dev AUROC (ties: the first)."""
TEST_COLUMNS = ("pair_id", "agreement", "chosen")
SCORE_INPUTS = {
    SINGLE_VALUE: ("reward_a", "reward_b"),
    PRETRAINED: ("reward_a", "reward_b"),
    BT: ("reward_a", "reward_b"),
    MSE: ("reward_a", "reward_b"),
    MEAN_VAR: ("reward_a", "reward_b", "sigma_a", "sigma_b"),
    CLASSIFICATION: ("reward_a", "reward_b", "label_probs"),
    LIKERT_CLASSIFICATION: ("reward_a", "reward_b", "likert_probs_a", "likert_probs_b"),
}
"""Score-file columns each method's accuracy and divergence score read (flagging carries the same ones)."""

# ---------------------------------------------------------------------------------------------------------
# Per-pair scores


def margin_divergence_score(reward_a: np.ndarray, reward_b: np.ndarray) -> np.ndarray:
    """BT/MSE divergence score -|r_A - r_B|: the closer the two rewards, the more likely diverging."""
    return -np.abs(np.asarray(reward_a, dtype=float) - np.asarray(reward_b, dtype=float))


def mean_var_divergence_score(
    mu_a: np.ndarray, mu_b: np.ndarray, sigma_a: np.ndarray, sigma_b: np.ndarray, lam: float
) -> np.ndarray:
    """lambda (sigma_A + sigma_B) - |mu_A - mu_B| (the paper's agreement score, negated)."""
    spread = np.asarray(sigma_a, dtype=float) + np.asarray(sigma_b, dtype=float)
    return lam * spread - np.abs(np.asarray(mu_a, dtype=float) - np.asarray(mu_b, dtype=float))


def opposite_side_mass(label_probs: np.ndarray) -> np.ndarray:
    """min(P(A better), P(B better)) of ``[n, 5]`` probabilities ordered B clearly .. A clearly."""
    label_probs = np.asarray(label_probs, dtype=float)
    return np.minimum(label_probs[:, 3] + label_probs[:, 4], label_probs[:, 0] + label_probs[:, 1])


def label_entropy(label_probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats, -sum_k p_k ln p_k (0 ln 0 = 0), of each row of ``[n, 5]`` probabilities."""
    label_probs = np.asarray(label_probs, dtype=float)
    logs = np.log(np.where(label_probs > 0, label_probs, 1.0))
    return -np.sum(label_probs * logs, axis=1)


def classification_divergence_score(label_probs: np.ndarray, score_name: str) -> np.ndarray:
    """The :data:`CLASSIFICATION_SCORES` candidate ``score_name`` of ``[n, 5]`` label probabilities."""
    if score_name == "opposite_mass":
        return opposite_side_mass(label_probs)
    if score_name == "entropy":
        return label_entropy(label_probs)
    raise ValueError(
        f"no classification divergence score {score_name!r}; known: {list(CLASSIFICATION_SCORES)}"
    )


def divergence_scores(
    method: str, scores: pl.DataFrame, lam: float | None = None, score_name: str | None = None
) -> np.ndarray:
    """The per-pair divergence score of ``method`` from score-file columns.

    ``lam`` is for mean_var only; ``score_name``, a :data:`CLASSIFICATION_SCORES` key, for classification.
    """
    if SCORE_INPUTS.get(method) == SCORE_INPUTS[SINGLE_VALUE]:
        return margin_divergence_score(scores["reward_a"].to_numpy(), scores["reward_b"].to_numpy())
    if method == MEAN_VAR:
        if lam is None:
            raise ValueError("the mean_var divergence score needs lambda")
        return mean_var_divergence_score(
            scores["reward_a"].to_numpy(),
            scores["reward_b"].to_numpy(),
            scores["sigma_a"].to_numpy(),
            scores["sigma_b"].to_numpy(),
            lam,
        )
    if method == CLASSIFICATION:
        if score_name is None:
            raise ValueError(
                f"the classification divergence score needs a name, one of {list(CLASSIFICATION_SCORES)}"
            )
        label_probs = np.asarray(scores["label_probs"].to_list(), dtype=float).reshape(-1, 5)
        return classification_divergence_score(label_probs, score_name)
    if method == LIKERT_CLASSIFICATION:
        if score_name is None:
            raise ValueError(
                f"the likert divergence score needs a name, one of {list(likert.DIVERGENCE_SCORES)}"
            )
        q_a, q_b = (
            np.asarray(scores[column].to_list(), dtype=float).reshape(-1, 5)
            for column in ("likert_probs_a", "likert_probs_b")
        )
        return likert.likert_divergence_score(q_a, q_b, score_name)
    raise ValueError(f"no divergence score for method {method!r}; known: {list(METHOD_ORDER)}")


def preference_correct(reward_a: np.ndarray, reward_b: np.ndarray, chosen: Sequence[str]) -> np.ndarray:
    """Per pair: 1 if the model's side (sign of reward_a - reward_b) is ``chosen``, 0.5 on a tie, else 0."""
    margin = np.asarray(reward_a, dtype=float) - np.asarray(reward_b, dtype=float)
    towards_chosen = np.where(np.asarray(chosen) == "a", margin, -margin)
    return (towards_chosen > 0) + 0.5 * (towards_chosen == 0)


# ---------------------------------------------------------------------------------------------------------
# AUROC


def detection_mask(agreement: Sequence[str]) -> np.ndarray:
    """Pairs that take part in divergence detection: diverging or high-agreement."""
    agreement = np.asarray(agreement)
    return (agreement == DIVERGING) | np.isin(agreement, HIGH_AGREEMENT)


def divergence_auroc(agreement: Sequence[str], score: np.ndarray) -> float:
    """sklearn AUROC of ``score`` for diverging (positive) vs high-agreement (negative) pairs.

    Raises ValueError if either class is empty.
    """
    agreement = np.asarray(agreement)
    mask = detection_mask(agreement)
    is_diverging = agreement[mask] == DIVERGING
    if is_diverging.all() or not is_diverging.any():
        raise ValueError(
            "divergence AUROC needs diverging and high-agreement pairs; "
            f"got {int(is_diverging.sum())} diverging and {int((~is_diverging).sum())} high-agreement"
        )
    return float(roc_auc_score(is_diverging, np.asarray(score, dtype=float)[mask]))


def score_columns(method: str, scores_source: str) -> list[str]:
    """The score-file columns of ``method`` (:data:`SCORE_INPUTS`); ValueError naming ``scores_source``."""
    if method not in SCORE_INPUTS:
        raise ValueError(
            f"{scores_source}: no detection scores for method {method!r}; known: {list(SCORE_INPUTS)}"
        )
    return list(SCORE_INPUTS[method])


def join_method_scores(pairs: pl.DataFrame, scores: pl.DataFrame, method: str, source: str) -> pl.DataFrame:
    """``pairs`` (:data:`TEST_COLUMNS`) with the columns ``method`` needs, from score file ``source``."""
    return scorefiles.join_scores(pairs, scores, score_columns(method, source), list(TEST_COLUMNS), source)


def join_dev_scores(pairs: pl.DataFrame, dev_scores: pl.DataFrame, method: str, source: str) -> pl.DataFrame:
    """The dataset's ``pairs`` that dev-score file ``source`` scores, joined as :func:`join_method_scores`."""
    scored = pairs.join(dev_scores.select("pair_id"), on="pair_id", how="semi")
    return join_method_scores(scored, dev_scores, method, source)


def score_labels(method: str, score_names: Sequence[str | None]) -> tuple[str | None, str]:
    """(``score_name``, ``score``) table cells for runs of ``method`` with these per-seed score names.

    Classification methods: the distinct names in :data:`CANDIDATE_SCORES` order, comma-joined, and their
    formulas; other methods: no name and the method's fixed formula.
    """
    if method not in CANDIDATE_SCORES:
        return None, SCORE_DESCRIPTIONS.get(method, SCORE_DESCRIPTIONS[SINGLE_VALUE])
    candidates = CANDIDATE_SCORES[method]
    names = [name for name in candidates if name in score_names]
    return ",".join(names), "; ".join(candidates[name] for name in names)
