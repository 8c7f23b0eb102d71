"""Divergence detection: per-pair scores, AUROC, lambda tuning, the bootstrap table and its rendering."""

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from divpref.common.bootstrap import stratified_indices
from divpref.common.scorefiles import join_scores
from divpref.detection import scores as detection_scores
from divpref.detection import table as det
from divpref.detection import tuning


def join_method_scores(pairs: pl.DataFrame, scores: pl.DataFrame, method: str, source: str) -> pl.DataFrame:
    """The pairs with the score columns ``method`` needs (as detection joins them)."""
    return join_scores(
        pairs,
        scores,
        detection_scores.score_columns(method, source),
        list(detection_scores.TEST_COLUMNS),
        source,
    )


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
    joined = join_method_scores(PAIRS, scores, "bt", "s.parquet")
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
        join_method_scores(PAIRS, pl.DataFrame(scores), "bt", "s.parquet")


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
        join_method_scores(PAIRS, scores, "classification", "s.parquet")


# --- bootstrap and table ---


def test_stratified_indices_keep_every_strata_size():
    strata = np.array(["x", "y", "x", "z", "y", "x"])
    draws = stratified_indices(np.random.default_rng(0), strata, n_samples=50)
    assert draws.shape == (50, 6)
    for row in draws:
        assert sorted(strata[row]) == sorted(strata)


def hand_run(seed: int, rewards_a: list[float], method: str = "bt") -> det.DetectionRun:
    pairs = pl.DataFrame(
        {
            "pair_id": ["d1", "d2", "h1", "h2", "t1", "o1"],
            "agreement": [
                "diverging",
                "diverging",
                "high_agreement_pref",
                "high_agreement_pref",
                "high_agreement_tie",
                "other",
            ],
            "chosen": ["a", "b", "a", "b", "a", "a"],
            "reward_a": rewards_a,
            "reward_b": [0.0] * 6,
        }
    )
    return det.DetectionRun("multipref", f"{method}-agg", method, "agg", seed, pairs)


def test_detection_table_values_on_hand_made_runs():
    # seed 1: |gaps| d 0.1, 0.2; h 1.0, 2.0 (h2 on the wrong side); t 0.15. Scores -|gap|:
    # diverging (-0.1, -0.2) vs high agreement (-1, -2, -0.15): 5 of 6 orderings right -> 5/6.
    first = hand_run(1, [0.1, -0.2, 1.0, 2.0, 0.15, 9.0])
    # seed 2: every high-agreement pair is decided more weakly than the diverging ones -> AUROC 0; both prefs
    # right.
    second = hand_run(2, [3.0, 3.0, 1.0, -1.0, 0.5, 0.0])
    table = det.detection_table([second, first], n_samples=200, ci=0.95, seed=7)
    value = {(row["seed"], row["metric"]): row for row in table.iter_rows(named=True)}
    assert value[("1", "auroc")]["value"] == pytest.approx(5 / 6)
    assert value[("1", "accuracy")]["value"] == pytest.approx(0.5)
    assert value[("2", "auroc")]["value"] == pytest.approx(0.0)
    assert value[("2", "accuracy")]["value"] == pytest.approx(1.0)
    assert value[("all", "auroc")]["value"] == pytest.approx((5 / 6 + 0.0) / 2)
    assert value[("all", "accuracy")]["value"] == pytest.approx(0.75)
    assert value[("1", "auroc")]["n"] == 5 and value[("1", "accuracy")]["n"] == 2
    assert value[("1", "auroc")]["n_diverging"] == 2 and value[("1", "auroc")]["n_high_agreement"] == 3
    for row in table.iter_rows(named=True):
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
        assert row["score"] == "-|r_A - r_B|" and row["lambda"] is None and row["score_name"] is None
    assert table.equals(det.detection_table([first, second], n_samples=200, ci=0.95, seed=7))


def test_bootstrap_cis_are_seeded_and_contain_the_estimate():
    rng = np.random.default_rng(0)
    agreement = rng.choice(["diverging", "high_agreement_pref", "high_agreement_tie", "other"], size=80)
    pairs = pl.DataFrame(
        {
            "pair_id": [f"p{i}" for i in range(80)],
            "agreement": agreement,
            "chosen": rng.choice(["a", "b"], size=80),
            "reward_a": rng.normal(size=80),
            "reward_b": rng.normal(size=80),
        }
    )
    run = det.DetectionRun("helpsteer2", "bt-all", "bt", "all", 1, pairs)
    table = det.detection_table([run], n_samples=300, ci=0.9, seed=1)
    again = det.detection_table([run], n_samples=300, ci=0.9, seed=1)
    other = det.detection_table([run], n_samples=300, ci=0.9, seed=2)
    assert table.equals(again) and not table.equals(other)
    assert table["value"].to_list() == other["value"].to_list()
    for row in table.iter_rows(named=True):
        assert row["ci_low"] < row["value"] < row["ci_high"]


def test_detection_table_refuses_seeds_scored_on_different_pairs():
    other = hand_run(2, [0.0] * 6)
    other = det.DetectionRun(
        other.dataset, other.condition, other.method, other.labels, 2, other.pairs.reverse()
    )
    with pytest.raises(ValueError, match="seed 2 was scored on other test pairs"):
        det.detection_table([hand_run(1, [0.0] * 6), other], n_samples=10, ci=0.95, seed=0)


def test_markdown_has_paper_layout_rows_and_acc_auroc_cells():
    bt = hand_run(1, [0.1, -0.2, 1.0, 2.0, 0.15, 9.0])
    mean_var_pairs = bt.pairs.with_columns(sigma_a=pl.lit(0.5), sigma_b=pl.lit(0.5))
    mean_var = det.DetectionRun("multipref", "mean_var-all", "mean_var", "all", 1, mean_var_pairs, lam=0.0)
    table = det.detection_table([mean_var, bt], n_samples=50, ci=0.95, seed=0)
    markdown = det.render_markdown(table, ci=0.95)
    lines = markdown.splitlines()
    header = lines.index("| Model | MultiPref | paper MultiPref |")
    assert lines[header + 2] == "| BT (Agg) | .500 / .833 | .663 / .458 |"  # the paper's numbers beside
    assert lines[header + 3] == "| Mean-Var (KL) | .500 / .833 | .664 / .615 |"
    assert "With 95% bootstrap confidence intervals" in markdown
    assert table["label"].to_list()[0] == "Mean-Var (KL)"
    assert det.row_label("classification", "agg") == "Pairwise classification (KL, Agg)"


# --- a run from its files' frames: lambda tuned on the dev pairs ---


ALL_PAIRS = pl.DataFrame(
    {
        "pair_id": ["t1", "t2", "t3", "v1", "v2", "v3", "v4"],
        "agreement": [
            "diverging",
            "high_agreement_pref",
            "high_agreement_tie",
            "diverging",
            "diverging",
            "high_agreement_pref",
            "other",
        ],
        "chosen": ["a", "a", "b", "a", "b", "a", "a"],
    }
)
SPEC = {
    "dataset": "helpsteer2",
    "condition": "mean_var-all",
    "method": "mean_var",
    "labels": "all",
    "seed": 3,
    "scores": "scores/seed3.parquet",
    "dev_scores": "scores_dev/seed3.parquet",
}


def mean_var_scores(pair_ids, mu_a, sigma) -> pl.DataFrame:
    n = len(pair_ids)
    return pl.DataFrame(
        {"pair_id": pair_ids, "reward_a": mu_a, "reward_b": [0.0] * n, "sigma_a": sigma, "sigma_b": sigma}
    )


def test_prepare_run_tunes_lambda_on_the_dev_pairs_agreement():
    test = ALL_PAIRS.head(3)
    scores = mean_var_scores(["t1", "t2", "t3"], [0.5, 1.0, 0.0], [1.0, 1.0, 1.0])
    # Dev: equal mean gaps except the 'other' pair; diverging pairs have larger sigmas -> smallest positive
    # lambda.
    dev = mean_var_scores(["v1", "v2", "v3", "v4"], [1.0, 1.0, 1.0, 9.0], [2.0, 3.0, 1.0, 0.0])
    run = det.prepare_run(SPEC, test, scores, pairs=ALL_PAIRS, dev_scores=dev, lambda_grid=[0.0, 0.25, 1.0])
    assert run.lam == 0.25 and run.seed == 3 and run.pairs["pair_id"].to_list() == ["t1", "t2", "t3"]
    # 0.25 * 2 - |gap|: t1 0.0, t2 -0.5, t3 0.5
    np.testing.assert_allclose(det.pair_scores(run)["divergence_score"].to_numpy(), [0.0, -0.5, 0.5])


def test_prepare_run_names_the_dev_file_when_lambda_cannot_be_tuned():
    test = ALL_PAIRS.head(3)
    scores = mean_var_scores(["t1", "t2", "t3"], [0.5, 1.0, 0.0], [1.0, 1.0, 1.0])
    only_diverging = mean_var_scores(["v1", "v2"], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(
        ValueError, match=r"scores_dev/seed3\.parquet: cannot tune lambda: .*0 high-agreement"
    ):
        det.prepare_run(SPEC, test, scores, pairs=ALL_PAIRS, dev_scores=only_diverging, lambda_grid=[0.0])
    unknown = mean_var_scores(["v1", "zz"], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"scores_dev/seed3\.parquet: pair_id 'zz' is not among"):
        det.prepare_run(SPEC, test, scores, pairs=ALL_PAIRS, dev_scores=unknown, lambda_grid=[0.0])


CLASSIFICATION_PAIRS = pl.DataFrame(
    {
        "pair_id": ["t1", "t2", "t3", "v1", "v2", "v3", "v4", "v5"],
        "agreement": [
            "diverging",
            "high_agreement_pref",
            "high_agreement_tie",
            *DEV_AGREEMENT,
            "other",
        ],
        "chosen": ["a", "a", "b", "a", "b", "a", "b", "a"],
    }
)
CLASSIFICATION_SPEC = SPEC | {"condition": "classification-all", "method": "classification"}
# Test pairs t1 (diverging), t2 (pref), t3 (tie): opposite mass 0.4, 0.0, 0.2; entropy ln 5, ln 2, 1.2275294.
TEST_PROBS = [[0.2] * 5, [0.0, 0.0, 0.0, 0.5, 0.5], [0.1, 0.1, 0.6, 0.1, 0.1]]
TEST_SCORES = {"opposite_mass": [0.4, 0.0, 0.2], "entropy": [np.log(5), np.log(2), 1.2275294]}


@pytest.mark.parametrize(
    ("dev_probs", "chosen"), [(ENTROPY_WINS, "entropy"), (OPPOSITE_MASS_WINS, "opposite_mass")]
)
def test_prepare_run_chooses_the_classification_score_on_dev_and_applies_it_to_test(dev_probs, chosen):
    test = CLASSIFICATION_PAIRS.head(3)
    scores = classification_scores(TEST_PROBS, ["t1", "t2", "t3"])
    # v5 ('other') would break either candidate's dev AUROC if it were counted: it is left out.
    dev = classification_scores([*dev_probs, [0.2] * 5], ["v1", "v2", "v3", "v4", "v5"])
    run = det.prepare_run(CLASSIFICATION_SPEC, test, scores, pairs=CLASSIFICATION_PAIRS, dev_scores=dev)
    assert run.score_name == chosen and run.lam is None
    frame = det.pair_scores(run)
    np.testing.assert_allclose(frame["divergence_score"].to_numpy(), TEST_SCORES[chosen], atol=1e-7)
    assert frame["score_name"].to_list() == [chosen] * 3
    table = det.detection_table([run], n_samples=20, ci=0.95, seed=0)
    assert table["score_name"].to_list() == [chosen, chosen]
    assert table["score"].to_list() == [detection_scores.CLASSIFICATION_SCORES[chosen]] * 2
    assert table["lambda"].to_list() == [None, None]


def test_prepare_run_needs_classification_dev_scores_with_both_classes():
    test = CLASSIFICATION_PAIRS.head(3)
    scores = classification_scores(TEST_PROBS, ["t1", "t2", "t3"])
    with pytest.raises(
        ValueError, match="Pairwise classification needs dev scores and pairs to choose the divergence"
    ):
        det.prepare_run(CLASSIFICATION_SPEC, test, scores)
    only_diverging = classification_scores(ENTROPY_WINS[:2], ["v1", "v2"])
    with pytest.raises(
        ValueError, match=r"scores_dev/seed3\.parquet: cannot choose the divergence score: .*0 high-agreement"
    ):
        det.prepare_run(
            CLASSIFICATION_SPEC, test, scores, pairs=CLASSIFICATION_PAIRS, dev_scores=only_diverging
        )


def test_pooled_row_lists_each_seeds_classification_score_and_markdown_names_the_choice():
    test = CLASSIFICATION_PAIRS.head(3)
    scores = classification_scores(TEST_PROBS, ["t1", "t2", "t3"])
    joined = join_method_scores(test, scores, "classification", "s.parquet")
    runs = [
        det.DetectionRun(
            "multipref", "classification-all", "classification", "all", seed, joined, score_name=name
        )
        for seed, name in [(1, "entropy"), (2, "opposite_mass")]
    ]
    table = det.detection_table(runs, n_samples=20, ci=0.95, seed=0)
    by_seed = {row["seed"]: row for row in table.filter(pl.col("metric") == "auroc").iter_rows(named=True)}
    assert by_seed["1"]["score_name"] == "entropy"
    assert by_seed["all"]["score_name"] == "opposite_mass,entropy"
    assert by_seed["all"]["score"] == "; ".join(detection_scores.CLASSIFICATION_SCORES.values())
    markdown = det.render_markdown(table.filter(pl.col("seed") == "1"), ci=0.95)
    assert "Scores chosen on dev: Pairwise classification (KL) on MultiPref: entropy." in markdown


# --- ROC plot ---


def test_roc_points_run_from_origin_to_one_with_sklearns_auroc(tmp_path):
    from divpref.detection.roc_plot import plot_roc_curves, roc_points

    rng = np.random.default_rng(5)
    agreement = rng.choice(["diverging", "high_agreement_pref", "high_agreement_tie", "other"], size=60)
    frames = []
    for condition, method, seed in [
        ("bt-agg", "bt", 1),
        ("bt-agg", "bt", 2),
        ("classification-all", "classification", 1),
    ]:
        score = rng.normal(size=60) + (agreement == "diverging")
        frames.append(
            pl.DataFrame(
                {
                    "dataset": "multipref",
                    "condition": condition,
                    "method": method,
                    "labels": condition.split("-")[1],
                    "seed": seed,
                    "pair_id": [f"p{i}" for i in range(60)],
                    "agreement": agreement,
                    "divergence_score": score,
                }
            )
        )
    pair_scores = pl.concat(frames)
    points = roc_points(pair_scores)
    for (condition, seed), curve in points.group_by("condition", "seed"):
        assert (curve["fpr"][0], curve["tpr"][0]) == (0.0, 0.0) and (curve["fpr"][-1], curve["tpr"][-1]) == (
            1.0,
            1.0,
        )
        run = pair_scores.filter(pl.col("condition") == condition, pl.col("seed") == seed)
        assert curve["auroc"][0] == pytest.approx(
            detection_scores.divergence_auroc(run["agreement"], run["divergence_score"].to_numpy())
        )
    png, pdf = tmp_path / "roc.png", tmp_path / "roc.pdf"
    plot_roc_curves(pair_scores, "multipref", png, pdf)
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="no detection scores for dataset 'helpsteer2'"):
        plot_roc_curves(pair_scores, "helpsteer2", png, pdf)


# --- the whole DAG on the CI-size config ---


@pytest.mark.slow
def test_ci_dag_scores_distributional_conditions_and_writes_the_detection_table(ci_run):
    from divpref.models.methods import get_method

    table = pl.read_csv(
        ci_run / "results/tables/divergence_detection.csv", schema_overrides={"seed": pl.String}
    )
    conditions = {(row["dataset"], row["condition"]) for row in table.iter_rows(named=True)}
    new = {"mean_var_tie-all", "mean_var_nll-all"}  # every Mean-Var variant runs end to end
    for dataset in ("multipref", "helpsteer2"):
        wanted = {"bt-agg", "mean_var-all", "classification-all", *new}
        assert {(dataset, condition) for condition in wanted} <= conditions
        for method in ("mean_var", "classification"):
            scores = pl.read_parquet(ci_run / f"results/scores/{dataset}/{method}-all/seed0.parquet")
            test = pl.read_parquet(ci_run / f"results/{dataset}/test.parquet")
            assert sorted(scores["pair_id"]) == sorted(test["pair_id"])
            np.testing.assert_allclose(
                np.asarray(scores["label_probs"].to_list()).sum(axis=1), 1.0, atol=1e-9
            )
            assert get_method(method).selection_metric == "kl"
        assert (ci_run / f"results/plots/roc_{dataset}.png").read_bytes()[:4] == b"\x89PNG"
    for row in table.iter_rows(named=True):
        assert 0.0 <= row["ci_low"] <= row["value"] <= row["ci_high"] <= 1.0
        assert (row["lambda"] is not None) == (row["method"] == "mean_var")
        candidates = detection_scores.CANDIDATE_SCORES.get(row["method"], {})
        assert (row["score_name"] in candidates) == (row["method"] in detection_scores.CANDIDATE_SCORES)
    # Classification (KL) exists for HelpSteer2 only (it needs Likert scores)
    likert = table.filter(pl.col("method") == "likert_classification")
    assert set(likert["dataset"]) == {"helpsteer2"} and set(likert["label"]) == {"Classification (KL)"}
    likert_scores = pl.read_parquet(
        ci_run / "results/scores/helpsteer2/likert_classification-all/seed0.parquet"
    )
    for column in ("likert_probs_a", "likert_probs_b"):
        np.testing.assert_allclose(np.asarray(likert_scores[column].to_list()).sum(axis=1), 1.0, atol=1e-9)
    tie_log = json.loads(
        (ci_run / "results/train/multipref/mean_var_tie-all/seed0/train_log.json").read_text()
    )
    train = pl.read_parquet(ci_run / "results/multipref/trainsets/mean_var-all/train.parquet")
    assert tie_log["method_options"]["rho"] == pytest.approx(np.mean([row[2] for row in train["label_dist"]]))
    dev = pl.read_parquet(ci_run / "results/scores_dev/helpsteer2/mean_var-all/seed0.parquet")
    dev_pairs = pl.read_parquet(ci_run / "results/helpsteer2/trainsets/mean_var-all/dev.parquet")
    assert sorted(dev["pair_id"]) == sorted(dev_pairs["pair_id"])
    assert (ci_run / "results/scores_dev/helpsteer2/classification-all/seed0.parquet").exists()
    markdown = (ci_run / "results/tables/divergence_detection.md").read_text()
    for label in (
        "Mean-Var (KL)",
        "Mean-Var (KL, rho = tie frequency)",
        "Mean-Var (NLL, Independent)",
        "Classification (KL)",
        "Pairwise classification (KL)",
    ):
        assert f"| {label} |" in markdown
