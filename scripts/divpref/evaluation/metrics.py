"""Table 2's per-pair metrics and agreement subsets, and the scored runs they are computed on.

SPEC "Table 2 metric": the paper's headline is side-free, "P(C > R) where C and R are the reward model's
chosen and rejected responses": for BT ``p_model_chosen``, the mean of max(sigmoid(r_A - r_B), sigmoid(r_B -
r_A)) = mean sigmoid(|r_A - r_B|); for MSE ``abs_margin``, the mean |r_A - r_B|. A second table gives
agreement with the ANNOTATORS' side ("chosen" in pairs.parquet): BT ``p_chosen`` = mean sigmoid(r_chosen -
r_rejected), MSE ``margin`` = mean r_chosen - r_rejected, and ``accuracy`` (share of pairs with r_chosen >
r_rejected). BT also keeps ``decisiveness``, mean |P(A > B) - 0.5| = p_model_chosen - 0.5.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import expit

from divpref.common.constants import BT, MSE, PRETRAINED
from divpref.common.scorefiles import join_scores

SUBSET_LABELS = {
    "high_agreement_pref": "High-agreement prefs",
    "high_agreement_tie": "High-agreement ties",
    "diverging": "Diverging (all)",
    "diverging_substantial": "Diverging (substantial)",
    "all": "All examples",
}
METRICS = {
    BT: ("p_model_chosen", "p_chosen", "decisiveness", "accuracy"),
    MSE: ("abs_margin", "margin", "accuracy"),
    # Off-the-shelf reward models (Skywork, Nemotron) are Bradley-Terry trained: reward gaps are log-odds.
    PRETRAINED: ("p_model_chosen", "p_chosen", "decisiveness", "accuracy"),
}
PROBABILITY_METHODS = (BT, PRETRAINED)
"""Methods whose reward gap r_A - r_B is read as the log-odds of P(A > B)."""
HEADLINE_METRIC = {BT: "p_model_chosen", MSE: "abs_margin", PRETRAINED: "p_model_chosen"}
"""Table 2's metric (the paper's): side-free, the reward model's own chosen side."""
SIDE_FREE_METRIC = HEADLINE_METRIC
ANNOTATOR_SIDE_METRIC = {BT: "p_chosen", MSE: "margin", PRETRAINED: "p_chosen"}
ACCURACY_METRIC = {BT: "accuracy", MSE: "accuracy", PRETRAINED: "accuracy"}
DATASET_ABBREVIATIONS = {"multipref": "MP", "helpsteer2": "HS2"}
TEST_COLUMNS = ("pair_id", "agreement", "substantial", "chosen")
SCORE_COLUMNS = ("reward_a", "reward_b")


@dataclass(frozen=True)
class ScoredRun:
    """One trained model's scores on a dataset's test pairs, joined with the pairs' agreement columns."""

    dataset: str
    method: str
    labels: str
    seed: int
    pairs: pl.DataFrame  # TEST_COLUMNS + reward_a, reward_b, in test-set order


def load_scored_runs(
    runs: Sequence[dict], test_paths: dict[str, str]
) -> tuple[list[ScoredRun], dict[str, pl.DataFrame]]:
    """Each run's scores joined to its test set (``runs``: dicts of dataset, method, labels, seed, scores)."""
    tests = {dataset: pl.read_parquet(path) for dataset, path in test_paths.items()}
    scored = [
        ScoredRun(
            dataset=run["dataset"],
            method=run["method"],
            labels=run["labels"],
            seed=int(run["seed"]),
            pairs=join_scores(
                tests[run["dataset"]],
                pl.read_parquet(run["scores"]),
                list(SCORE_COLUMNS),
                list(TEST_COLUMNS),
                run["scores"],
            ),
        )
        for run in runs
    ]
    return scored, tests


def per_pair_metrics(method: str, reward_a: np.ndarray, reward_b: np.ndarray, chosen: np.ndarray) -> dict:
    """Each metric of ``method`` per pair (its mean over pairs is the table's value)."""
    reward_a = np.asarray(reward_a, dtype=float)
    reward_b = np.asarray(reward_b, dtype=float)
    chosen_is_a = np.asarray(chosen) == "a"
    margin = np.where(chosen_is_a, reward_a - reward_b, reward_b - reward_a)
    accuracy = (margin > 0).astype(float)
    if method in PROBABILITY_METHODS:
        return {
            "p_model_chosen": expit(np.abs(reward_a - reward_b)),
            "p_chosen": expit(margin),
            "decisiveness": np.abs(expit(reward_a - reward_b) - 0.5),
            "accuracy": accuracy,
        }
    if method == MSE:
        return {"margin": margin, "abs_margin": np.abs(reward_a - reward_b), "accuracy": accuracy}
    raise ValueError(f"Table 2 covers methods {sorted(METRICS)}, not {method!r}")


def subset_masks(agreement: Sequence[str], substantial: Sequence[bool]) -> dict[str, np.ndarray]:
    """Boolean mask of each Table 2 subset over the pairs."""
    agreement = np.asarray(agreement)
    substantial = np.asarray(substantial, dtype=bool)
    return {
        "high_agreement_pref": agreement == "high_agreement_pref",
        "high_agreement_tie": agreement == "high_agreement_tie",
        "diverging": agreement == "diverging",
        "diverging_substantial": (agreement == "diverging") & substantial,
        "all": np.ones(agreement.shape, dtype=bool),
    }


def condition_label(dataset: str, method: str, labels: str) -> str:
    """Column header in the paper's style, e.g. ``MP BT-Agg``; a pretrained model by its condition name."""
    if method == PRETRAINED:
        return f"{DATASET_ABBREVIATIONS.get(dataset, dataset)} {labels}"
    return f"{DATASET_ABBREVIATIONS.get(dataset, dataset)} {method.upper()}-{labels.capitalize()}"
