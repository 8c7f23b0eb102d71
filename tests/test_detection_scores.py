"""Divergence detection: per-pair scores, AUROC, lambda and score tuning on dev, and the score join."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from divpref.detection import scores as detection_scores
from divpref.detection import tuning


def reference_auroc(positives: list[float], negatives: list[float]) -> float:
    """Mann-Whitney: share of (positive, negative) pairs ranked correctly, ties counting one half."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


# --- per-pair scores ---


def test_margin_score_is_minus_the_absolute_reward_gap():
    np.testing.assert_allclose(
        detection_scores.margin_divergence_score([1.0, -2.0, 0.5], [0.0, 1.0, 0.5]), [-1.0, -3.0, 0.0]
    )


def test_mean_var_score_adds_lambda_times_the_sigmas_and_subtracts_the_mean_gap():
    score = detection_scores.mean_var_divergence_score(
        [1.0, 0.0], [0.2, 0.0], [0.5, 1.0], [0.3, 1.0], lam=2.0
    )
    np.testing.assert_allclose(score, [2.0 * 0.8 - 0.8, 2.0 * 2.0 - 0.0])


def test_opposite_side_mass_is_the_smaller_side():
    probs = np.array([[0.1, 0.2, 0.3, 0.25, 0.15], [0.0, 0.0, 1.0, 0.0, 0.0], [0.6, 0.0, 0.0, 0.0, 0.4]])
    np.testing.assert_allclose(detection_scores.opposite_side_mass(probs), [0.3, 0.0, 0.4])


def test_label_entropy_by_hand():
    probs = np.array(
        [
            [0.2, 0.2, 0.2, 0.2, 0.2],  # uniform: ln 5
            [0.0, 0.0, 1.0, 0.0, 0.0],  # certain: 0 (0 ln 0 = 0)
            [0.5, 0.0, 0.0, 0.0, 0.5],  # two labels: ln 2
            [0.1, 0.1, 0.6, 0.1, 0.1],  # 4 * 0.1 ln 10 + 0.6 ln(1 / 0.6) = 0.92103 + 0.30650
        ]
    )
    np.testing.assert_allclose(
        detection_scores.label_entropy(probs), [1.6094379, 0.0, 0.6931472, 1.2275294], atol=1e-7
    )


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(0.0, 1.0), min_size=5, max_size=5).filter(lambda row: sum(row) > 0.01), min_size=1
    )
)
def test_label_entropy_matches_scipy_and_stays_within_zero_and_ln5(rows):
    from scipy.stats import entropy

    probs = np.array(rows) / np.array(rows).sum(axis=1, keepdims=True)
    got = detection_scores.label_entropy(probs)
    np.testing.assert_allclose(got, entropy(probs, axis=1), atol=1e-12)
    assert np.all(got >= -1e-12) and np.all(got <= np.log(5) + 1e-12)


def test_preference_correct_scores_sides_and_gives_half_credit_to_ties():
    correct = detection_scores.preference_correct(
        [1.0, 1.0, 0.0, 2.0], [0.0, 2.0, 0.0, 1.0], ["a", "a", "b", "b"]
    )
    np.testing.assert_allclose(correct, [1.0, 0.0, 0.5, 0.0])


def scores_frame(**columns) -> pl.DataFrame:
    return pl.DataFrame(
        columns, schema_overrides={"label_probs": pl.List(pl.Float64)} if "label_probs" in columns else None
    )


def test_divergence_scores_dispatch_on_method():
    frame = scores_frame(
        reward_a=[0.7, 0.5],
        reward_b=[0.3, 0.5],
        sigma_a=[1.0, 0.0],
        sigma_b=[1.0, 0.5],
        label_probs=[[0.1, 0.2, 0.3, 0.25, 0.15], [0.5, 0.0, 0.0, 0.0, 0.5]],
    )
    np.testing.assert_allclose(detection_scores.divergence_scores("bt", frame), [-0.4, 0.0])
    np.testing.assert_allclose(detection_scores.divergence_scores("mean_var", frame, lam=0.5), [0.6, 0.25])
    np.testing.assert_allclose(
        detection_scores.divergence_scores("classification", frame, score_name="opposite_mass"), [0.3, 0.5]
    )
    # -(0.1 ln 0.1 + 0.2 ln 0.2 + 0.3 ln 0.3 + 0.25 ln 0.25 + 0.15 ln 0.15) = 1.5444795; two halves: ln 2
    np.testing.assert_allclose(
        detection_scores.divergence_scores("classification", frame, score_name="entropy"),
        [1.5444795, np.log(2)],
        atol=1e-7,
    )
    with pytest.raises(ValueError, match="needs lambda"):
        detection_scores.divergence_scores("mean_var", frame)
    with pytest.raises(ValueError, match="classification divergence score needs a name"):
        detection_scores.divergence_scores("classification", frame)
    with pytest.raises(ValueError, match="no classification divergence score 'variance'"):
        detection_scores.divergence_scores("classification", frame, score_name="variance")
    with pytest.raises(ValueError, match="no divergence score"):
        detection_scores.divergence_scores("dpo", frame)


# --- AUROC and lambda ---


def test_auroc_on_a_hand_made_case_equals_sklearn_and_leaves_out_other_pairs():
    agreement = ["diverging", "diverging", "high_agreement_pref", "high_agreement_tie", "other"]
    score = np.array([0.9, 0.4, 0.5, 0.1, 100.0])
    # positives 0.9, 0.4 vs negatives 0.5, 0.1: 3 of 4 orderings correct.
    assert detection_scores.divergence_auroc(agreement, score) == pytest.approx(0.75)
    assert detection_scores.divergence_auroc(agreement, score) == pytest.approx(
        roc_auc_score([1, 1, 0, 0], score[:4])
    )


@settings(max_examples=100, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.sampled_from(["diverging", "high_agreement_pref", "high_agreement_tie", "other"]),
            st.integers(-3, 3).map(float),  # few distinct values: plenty of ties
        ),
        min_size=2,
        max_size=30,
    )
)
def test_auroc_matches_the_mann_whitney_reference(data):
    agreement = [category for category, _ in data]
    score = np.array([value for _, value in data])
    positives = [value for category, value in data if category == "diverging"]
    negatives = [value for category, value in data if category.startswith("high_agreement")]
    if not positives or not negatives:
        with pytest.raises(ValueError, match="needs diverging and high-agreement"):
            detection_scores.divergence_auroc(agreement, score)
    else:
        assert detection_scores.divergence_auroc(agreement, score) == pytest.approx(
            reference_auroc(positives, negatives)
        )


def mean_var_dev(mu_gap, sigma_sum) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "reward_a": mu_gap,
            "reward_b": [0.0] * len(mu_gap),
            "sigma_a": [s / 2 for s in sigma_sum],
            "sigma_b": [s / 2 for s in sigma_sum],
        }
    )


def test_lambda_tuning_takes_the_smallest_lambda_that_uses_informative_sigmas():
    agreement = ["diverging", "diverging", "high_agreement_pref", "high_agreement_tie"]
    # Equal mean gaps (lambda 0 gives AUROC 0.5); diverging pairs have the larger sigmas.
    dev = mean_var_dev([1.0, 1.0, 1.0, 1.0], [2.0, 3.0, 1.0, 1.0])
    assert tuning.tune_lambda(agreement, dev, [4.0, 0.0, 0.5, 1.0]) == (0.5, 1.0)


def test_lambda_tuning_keeps_zero_when_sigmas_mislead():
    agreement = ["diverging", "diverging", "high_agreement_pref", "high_agreement_tie"]
    # Mean gaps separate perfectly; sigmas point the wrong way, so any lambda > 0 can only hurt.
    dev = mean_var_dev([0.1, 0.2, 2.0, 3.0], [0.1, 0.1, 5.0, 5.0])
    assert tuning.tune_lambda(agreement, dev, [0.0, 0.1, 1.0, 10.0]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        tuning.tune_lambda(agreement, dev, [-1.0, 1.0])


# Dev cases for Classification's score: two diverging pairs, then two high-agreement ones (pref, tie).
DEV_AGREEMENT = ["diverging", "diverging", "high_agreement_pref", "high_agreement_tie"]
ENTROPY_WINS = [  # opposite mass 0.1, 0.4 | 0.0, 0.3; entropy 1.314, 1.609 | 0.500, 0.611
    [0.0, 0.1, 0.3, 0.3, 0.3],
    [0.2, 0.2, 0.2, 0.2, 0.2],
    [0.0, 0.0, 0.0, 0.8, 0.2],
    [0.3, 0.0, 0.0, 0.0, 0.7],
]
OPPOSITE_MASS_WINS = [  # opposite mass 0.5, 0.3 | 0.25, 0.0; entropy 1.194, 0.611 | 1.040, 0.325
    [0.4, 0.1, 0.0, 0.1, 0.4],
    [0.0, 0.3, 0.0, 0.7, 0.0],
    [0.0, 0.25, 0.5, 0.25, 0.0],  # an uncertain high-agreement tie: high entropy, little opposite mass
    [0.0, 0.0, 0.1, 0.9, 0.0],
]
BOTH_PERFECT = [  # opposite mass 0.4, 0.4 | 0.0, 0.0; entropy 1.609, 1.505 | 0.0, 0.325: AUROC 1 each
    [0.2, 0.2, 0.2, 0.2, 0.2],
    [0.3, 0.1, 0.2, 0.1, 0.3],
    [0.0, 0.0, 0.0, 0.0, 1.0],
    [0.0, 0.0, 0.1, 0.9, 0.0],
]


def classification_scores(label_probs, pair_ids=None) -> pl.DataFrame:
    """A classification score frame: reward_a = P(A better), reward_b = P(B better) of each row."""
    probs = np.asarray(label_probs, dtype=float)
    return pl.DataFrame(
        {
            "pair_id": pair_ids or [f"p{i}" for i in range(len(probs))],
            "reward_a": probs[:, 3] + probs[:, 4],
            "reward_b": probs[:, 0] + probs[:, 1],
            "label_probs": probs.tolist(),
        },
        schema_overrides={"label_probs": pl.List(pl.Float64)},
    )


@pytest.mark.parametrize(
    ("dev_probs", "expected"),
    [
        (ENTROPY_WINS, ("entropy", {"opposite_mass": 0.75, "entropy": 1.0})),
        (OPPOSITE_MASS_WINS, ("opposite_mass", {"opposite_mass": 1.0, "entropy": 0.75})),
        (BOTH_PERFECT, ("opposite_mass", {"opposite_mass": 1.0, "entropy": 1.0})),
        ([[0.2] * 5] * 4, ("opposite_mass", {"opposite_mass": 0.5, "entropy": 0.5})),
    ],
    ids=["entropy-wins", "opposite-mass-wins", "tie-at-1", "tie-at-half"],
)
def test_classification_score_is_chosen_by_dev_auroc_with_ties_to_opposite_mass(dev_probs, expected):
    assert tuning.choose_classification_score(DEV_AGREEMENT, classification_scores(dev_probs)) == expected


# --- joining scores ---


PAIRS = pl.DataFrame(
    {
        "pair_id": ["p1", "p2", "p3"],
        "agreement": ["diverging", "high_agreement_pref", "other"],
        "chosen": ["a", "b", "a"],
    }
)


def test_join_scores_keeps_pair_order_and_the_methods_columns():
    scores = pl.DataFrame(
        {
            "pair_id": ["p3", "p1", "p2"],
            "reward_a": [3.0, 1.0, 2.0],
            "reward_b": [0.0] * 3,
            "sigma_a": [None] * 3,
        }
    )
    joined = detection_scores.join_method_scores(PAIRS, scores, "bt", "s.parquet")
    assert joined["pair_id"].to_list() == ["p1", "p2", "p3"] and joined["reward_a"].to_list() == [
        1.0,
        2.0,
        3.0,
    ]
    assert joined.columns == ["pair_id", "agreement", "chosen", "reward_a", "reward_b"]


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (
            {"pair_id": ["p1", "p2"], "reward_a": [1.0, 1.0], "reward_b": [0.0, 0.0]},
            "pair_id 'p3' has no score",
        ),
        (
            {"pair_id": ["p1", "p2", "p3", "p3"], "reward_a": [1.0] * 4, "reward_b": [0.0] * 4},
            "'p3' is scored more than once",
        ),
        (
            {"pair_id": ["p1", "p2", "p3", "p9"], "reward_a": [1.0] * 4, "reward_b": [0.0] * 4},
            "'p9' is not among",
        ),
        (
            {"pair_id": ["p1", "p2", "p3"], "reward_a": [1.0, float("nan"), 1.0], "reward_b": [0.0] * 3},
            "'p2' has invalid reward_a = nan",
        ),
        ({"pair_id": ["p1", "p2", "p3"], "reward_a": [1.0] * 3}, r"missing column\(s\) \['reward_b'\]"),
    ],
)
def test_join_scores_names_the_file_pair_and_value_of_bad_scores(scores, message):
    with pytest.raises(ValueError, match=rf"s\.parquet: .*{message}"):
        detection_scores.join_method_scores(PAIRS, pl.DataFrame(scores), "bt", "s.parquet")


def test_join_scores_rejects_label_probs_of_the_wrong_length():
    scores = pl.DataFrame(
        {
            "pair_id": ["p1", "p2", "p3"],
            "reward_a": [0.5] * 3,
            "reward_b": [0.5] * 3,
            "label_probs": [[0.2] * 5, [0.25] * 4, [0.2] * 5],
        }
    )
    with pytest.raises(ValueError, match="'p2' has invalid label_probs"):
        detection_scores.join_method_scores(PAIRS, scores, "classification", "s.parquet")


# --- bootstrap and table ---
