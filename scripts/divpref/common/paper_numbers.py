"""The paper's reported numbers (SPEC.md), printed beside the workflow's own so that outputs can be compared.

Table 2 (short paper): BT ``p_model_chosen`` and MSE ``abs_margin`` on the real test sets with
Llama-3-8B-Instruct. Divergence detection (full paper): (preference accuracy, divergence AUROC), of its
trained models and of two off-the-shelf reward models.
"""

from divpref.common.constants import SUBSETS

PAPER_DATASETS = {"multipref": "MultiPref", "helpsteer2": "HelpSteer2"}
"""The paper's datasets (the ones its numbers are for), by display name."""
TABLE2 = {
    # (dataset, method, labels): {subset: value}
    ("multipref", "bt", "agg"): (0.786, 0.663, 0.798, 0.820, 0.762),
    ("multipref", "bt", "all"): (0.669, 0.580, 0.663, 0.690, 0.647),
    ("helpsteer2", "bt", "agg"): (0.751, 0.673, 0.722, 0.731, 0.725),
    ("helpsteer2", "bt", "all"): (0.718, 0.631, 0.678, 0.694, 0.688),
    ("helpsteer2", "mse", "agg"): (0.811, 0.412, 0.706, 0.834, 0.683),
    ("helpsteer2", "mse", "all"): (0.676, 0.340, 0.573, 0.692, 0.565),
}
"""Values in the order of :data:`divpref.common.constants.SUBSETS`."""

DETECTION = {
    # row label (divpref.detection.table.row_label): {dataset: (accuracy, auroc)}
    "BT (Agg)": {"multipref": (0.663, 0.458), "helpsteer2": (0.683, 0.482)},
    "BT (All)": {"multipref": (0.648, 0.438), "helpsteer2": (0.678, 0.489)},
    "Mean-Var (KL)": {"multipref": (0.664, 0.615), "helpsteer2": (0.684, 0.582)},
    "Classification (KL)": {"helpsteer2": (0.659, 0.648)},
}
"""The full paper's table; its "Mean-Var (NLL, Independent)" baseline has no numbers in SPEC.md."""

DETECTION_PRETRAINED = {
    # pretrained condition name (config.yaml): {dataset: (accuracy, auroc)}
    "skywork-27b": {"multipref": (0.651, 0.494)},  # Skywork-Reward-Gemma-2-27B, off the shelf
    "nemotron-70b": {"multipref": (0.638, 0.400)},  # Llama-3.1-Nemotron-70B-Reward, off the shelf
}
"""The full paper's off-the-shelf reward models, by the names config.yaml gives their conditions (MultiPref
only: the paper reports no HelpSteer2 figures for them)."""

JUDGE_WINNER_RATE = {
    "multipref": {
        "high_agreement_pref": 0.731,
        "high_agreement_tie": 0.426,
        "diverging": 0.738,
        "diverging_substantial": 0.760,
    },
    "helpsteer2": {
        "high_agreement_pref": 0.646,
        "high_agreement_tie": 0.519,
        "diverging": 0.573,
        "diverging_substantial": 0.650,
    },
}
"""The full paper's LLM-as-judge winner rates (SPEC.md, "The later full paper")."""


def table2_value(dataset: str, method: str, labels: str, subset: str) -> float | None:
    """The paper's Table 2 value for a condition and subset, or None where the paper has none."""
    values = TABLE2.get((dataset, method, labels))
    return None if values is None else values[SUBSETS.index(subset)]


def detection_values(
    row_label: str, dataset: str, pretrained_condition: str | None = None
) -> tuple[float, float] | None:
    """The full paper's (accuracy, AUROC) for a detection row and dataset, or None.

    A pretrained condition's row is found by its condition name (:data:`DETECTION_PRETRAINED`), others by
    their row label (:data:`DETECTION`).
    """
    if pretrained_condition is not None:
        return DETECTION_PRETRAINED.get(pretrained_condition, {}).get(dataset)
    return DETECTION.get(row_label, {}).get(dataset)
