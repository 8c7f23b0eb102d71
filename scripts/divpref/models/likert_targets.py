"""Targets and divergence scores of ``likert_classification`` (numpy, polars; model: divpref.models.likert).

HelpSteer2 helpfulness scores are 0-4; score s is Likert class s + 1 (see :mod:`divpref.models.likert`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import polars as pl

N_CLASSES = 5
CLASS_VALUES = (1, 2, 3, 4, 5)
"""Likert value of each class; HelpSteer2 score s (0-4) is class s + 1."""
SCORE_RANGE = (0, 4)
TARGET_COLUMNS = ("likert_dist_a", "likert_dist_b")
DIVERGENCE_SCORES = {
    "extreme_joint": "mean over A, B of q(1) q(5)",
    "extreme_mass": "mean over A, B of q(1) + q(5)",
    "opposite_mass": "min(P(S_A > S_B), P(S_B > S_A)), S ~ q independent",
    "score_variance": "Var_A + Var_B of the predicted Likert score",
}
"""likert_classification's candidate divergence scores (name: formula), in tie-break order."""


# ---------------------------------------------------------------------------------------------------------
# Targets


def likert_class(score: int) -> int:
    """The Likert class (1..5) of a HelpSteer2 helpfulness score (0..4)."""
    low, high = SCORE_RANGE
    if isinstance(score, bool) or not isinstance(score, (int, np.integer)) or not low <= score <= high:
        raise ValueError(f"helpfulness score {score!r} is not an integer in {low}..{high}")
    return int(score) + 1


def score_distribution(scores: list[int]) -> list[float]:
    """Share of ``scores`` (0-4) in each Likert class 1..5; ValueError on an empty list or a bad score."""
    if not scores:
        raise ValueError("a Likert target needs at least one score")
    counts = [0] * N_CLASSES
    for score in scores:
        counts[likert_class(score) - 1] += 1
    return [count / len(scores) for count in counts]


def majority_distribution(scores: list[int]) -> list[float]:
    """All mass on the class of the rounded mean score (halves round up): the ``agg`` target."""
    score_distribution(scores)  # validates the scores
    mean = sum(scores) / len(scores)
    target = [0.0] * N_CLASSES
    target[math.floor(mean + 0.5)] = 1.0  # class index = rounded mean score (0-4)
    return target


def build_likert_trainset(labels: str, pairs: pl.DataFrame, annotations: pl.DataFrame) -> pl.DataFrame:
    """``pair_id, prompt, response_a, response_b, likert_dist_a, likert_dist_b``, one row per pair."""
    import polars as pl

    if annotations.is_empty() or annotations["helpfulness_a"].is_null().any():
        raise ValueError(
            "method 'likert_classification' needs helpfulness scores for every annotation; "
            "this dataset has none"
        )
    target = score_distribution if labels == "all" else majority_distribution
    scores = (
        annotations.sort("pair_id", "annotator", maintain_order=True)
        .group_by("pair_id", maintain_order=True)
        .agg("helpfulness_a", "helpfulness_b")
    )
    rows = {pair_id: (target(a), target(b)) for pair_id, a, b in scores.iter_rows()}
    texts = pairs.select("pair_id", "prompt", "response_a", "response_b").filter(
        pl.col("pair_id").is_in(list(rows))
    )
    dist = pl.List(pl.Float64)
    return texts.with_columns(
        pl.Series("likert_dist_a", [rows[p][0] for p in texts["pair_id"]], dtype=dist),
        pl.Series("likert_dist_b", [rows[p][1] for p in texts["pair_id"]], dtype=dist),
    )


def encode_likert(frame: pl.DataFrame, source: str) -> dict[str, np.ndarray]:
    """``likert_dist_a`` / ``_b`` as float32 ``[rows, 5]``; ValueError naming the pair and the bad value."""
    missing = [column for column in TARGET_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; has {frame.columns}")
    keys = frame["pair_id"].to_list() if "pair_id" in frame.columns else list(range(frame.height))
    encoded = {}
    for column in TARGET_COLUMNS:
        values = np.zeros((frame.height, N_CLASSES), dtype=np.float32)
        for index, (key, row) in enumerate(zip(keys, frame[column].to_list(), strict=True)):
            ok = row is not None and len(row) == N_CLASSES
            ok = ok and all(v is not None and math.isfinite(v) and v >= 0 for v in row)
            if not ok or abs(sum(row) - 1.0) > 1e-4:
                raise ValueError(
                    f"{source}: pair_id {key!r}: {column}={row!r} is not a distribution over 5 classes"
                )
            values[index] = np.asarray(row) / sum(row)
        encoded[column] = values
    return encoded


# ---------------------------------------------------------------------------------------------------------
# Divergence scores (numpy, for divpref.detection.table)


def _values() -> np.ndarray:
    return np.asarray(CLASS_VALUES, dtype=float)


def extreme_joint(q_a: np.ndarray, q_b: np.ndarray) -> np.ndarray:
    """Mean over the pair's two responses of q(1) q(5): the full paper's "joint probability of annotators
    labelling the response as a 1 or 5" (one annotator's 1 and another's 5, drawn independently from q)."""
    q_a, q_b = np.asarray(q_a, dtype=float), np.asarray(q_b, dtype=float)
    return (q_a[:, 0] * q_a[:, 4] + q_b[:, 0] * q_b[:, 4]) / 2.0


def extreme_mass(q_a: np.ndarray, q_b: np.ndarray) -> np.ndarray:
    """Mean over the pair's two responses of q(1) + q(5)."""
    q_a, q_b = np.asarray(q_a, dtype=float), np.asarray(q_b, dtype=float)
    return ((q_a[:, 0] + q_a[:, 4]) + (q_b[:, 0] + q_b[:, 4])) / 2.0


def opposite_mass(q_a: np.ndarray, q_b: np.ndarray) -> np.ndarray:
    """min(P(S_A > S_B), P(S_B > S_A)) for independent S_A ~ q_A, S_B ~ q_B."""
    q_a, q_b = np.asarray(q_a, dtype=float), np.asarray(q_b, dtype=float)
    joint = q_a[:, :, None] * q_b[:, None, :]  # [n, class of A, class of B]
    a_higher = np.tril(np.ones((N_CLASSES, N_CLASSES)), k=-1)  # A's class index above B's
    p_a = (joint * a_higher).sum(axis=(1, 2))
    p_b = (joint * a_higher.T).sum(axis=(1, 2))
    return np.minimum(p_a, p_b)


def score_variance(q_a: np.ndarray, q_b: np.ndarray) -> np.ndarray:
    """Var_A + Var_B of the predicted Likert scores."""
    values = _values()

    def variance(q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        mean = q @ values
        return q @ values**2 - mean**2

    return variance(q_a) + variance(q_b)


def likert_divergence_score(q_a: np.ndarray, q_b: np.ndarray, score_name: str) -> np.ndarray:
    """The :data:`DIVERGENCE_SCORES` candidate ``score_name`` of ``[n, 5]`` class distributions."""
    functions = {
        "extreme_joint": extreme_joint,
        "extreme_mass": extreme_mass,
        "opposite_mass": opposite_mass,
        "score_variance": score_variance,
    }
    if score_name not in functions:
        raise ValueError(
            f"no likert_classification divergence score {score_name!r}; known: {list(functions)}"
        )
    return functions[score_name](q_a, q_b)
