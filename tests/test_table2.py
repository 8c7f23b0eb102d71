"""Table 2 on hand-made scored pairs with known subsets: exact values, validation, layout."""

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from divpref.common.constants import SUBSETS
from divpref.common.scorefiles import join_scores
from divpref.evaluation.metrics import SCORE_COLUMNS, TEST_COLUMNS, ScoredRun, per_pair_metrics
from divpref.evaluation.table2 import (
    TABLE2_COLUMNS,
    render_latex,
    render_markdown,
    table2_long,
)


def join_test_scores(pairs: pl.DataFrame, scores: pl.DataFrame, source: str) -> pl.DataFrame:
    return join_scores(pairs, scores, list(SCORE_COLUMNS), list(TEST_COLUMNS), source)


LN3, LN4, LN9 = math.log(3), math.log(4), math.log(9)

# Six pairs; rewards chosen so that P = sigmoid(margin) is exact: sigmoid(ln 3) = 3/4, sigmoid(ln 4) = 4/5.
BT_PAIRS = pl.DataFrame(
    {
        "pair_id": ["p1", "p2", "p3", "p4", "p5", "p6"],
        "agreement": [
            "high_agreement_pref",
            "high_agreement_pref",
            "high_agreement_tie",
            "diverging",
            "diverging",
            "other",
        ],
        "substantial": [False, False, False, True, False, False],
        "chosen": ["a", "b", "a", "b", "a", "a"],
    }
)
BT_SCORES = pl.DataFrame(
    {
        "pair_id": ["p6", "p5", "p4", "p3", "p2", "p1"],  # order differs from the test set on purpose
        "reward_a": [0.0, LN4, 0.0, 0.0, LN3, LN3],
        "reward_b": [LN4, 0.0, LN9, 0.0, 0.0, 0.0],
    }
)
# Per pair: P(chosen > rejected) .75 .25 .5 .9 .8 .2; |P(A > B) - .5| .25 .25 0 .4 .3 .3; correct 1 0 0 1 1 0
# P(model's chosen > model's rejected) = sigmoid(|r_A - r_B|): .75 .75 .5 .9 .8 .8 (p2 and p6: the model picks
# the side the annotators did not, so p_model_chosen = 1 - p_chosen there).
BT_EXPECTED = {
    "high_agreement_pref": (
        2,
        {"p_model_chosen": 0.75, "p_chosen": 0.5, "decisiveness": 0.25, "accuracy": 0.5},
    ),
    "high_agreement_tie": (1, {"p_model_chosen": 0.5, "p_chosen": 0.5, "decisiveness": 0.0, "accuracy": 0.0}),
    "diverging": (2, {"p_model_chosen": 0.85, "p_chosen": 0.85, "decisiveness": 0.35, "accuracy": 1.0}),
    "diverging_substantial": (
        1,
        {"p_model_chosen": 0.9, "p_chosen": 0.9, "decisiveness": 0.4, "accuracy": 1.0},
    ),
    "all": (6, {"p_model_chosen": 0.75, "p_chosen": 3.4 / 6, "decisiveness": 1.5 / 6, "accuracy": 0.5}),
}

MSE_PAIRS = pl.DataFrame(
    {
        "pair_id": ["q1", "q2", "q3", "q4"],
        "agreement": ["high_agreement_pref", "high_agreement_tie", "diverging", "other"],
        "substantial": [False, False, True, False],
        "chosen": ["a", "a", "b", "b"],
    }
)
MSE_SCORES = pl.DataFrame(
    {"pair_id": ["q1", "q2", "q3", "q4"], "reward_a": [3.0, 2.0, 1.0, 2.0], "reward_b": [1.0, 2.5, 4.0, 1.0]}
)
# Per pair: r_chosen - r_rejected = 2, -.5, 3, -1 ; |r_A - r_B| = 2, .5, 3, 1
MSE_EXPECTED = {
    "high_agreement_pref": (1, {"margin": 2.0, "abs_margin": 2.0, "accuracy": 1.0}),
    "high_agreement_tie": (1, {"margin": -0.5, "abs_margin": 0.5, "accuracy": 0.0}),
    "diverging": (1, {"margin": 3.0, "abs_margin": 3.0, "accuracy": 1.0}),
    "diverging_substantial": (1, {"margin": 3.0, "abs_margin": 3.0, "accuracy": 1.0}),
    "all": (4, {"margin": 0.875, "abs_margin": 1.625, "accuracy": 0.5}),
}


def _run(dataset, method, labels, seed, pairs, scores):
    return ScoredRun(
        dataset, method, labels, seed, join_test_scores(pairs, scores, f"{method}-{labels}.parquet")
    )


@pytest.fixture(scope="module")
def table():
    runs = [
        _run("multipref", "bt", "agg", 0, BT_PAIRS, BT_SCORES),
        _run("helpsteer2", "mse", "agg", 0, MSE_PAIRS, MSE_SCORES),
    ]
    return table2_long(runs, n_samples=200, ci=0.95, seed=11)


@pytest.mark.parametrize(("dataset", "expected"), [("multipref", BT_EXPECTED), ("helpsteer2", MSE_EXPECTED)])
def test_exact_values_per_subset(table, dataset, expected):
    rows = table.filter(pl.col("dataset") == dataset)
    for subset, (n, metrics) in expected.items():
        for metric, value in metrics.items():
            row = rows.filter((pl.col("subset") == subset) & (pl.col("metric") == metric)).to_dicts()
            assert len(row) == 1, (subset, metric)
            assert row[0]["n"] == n
            assert row[0]["value"] == pytest.approx(value, abs=1e-12), (subset, metric)
            assert row[0]["ci_low"] - 1e-12 <= row[0]["value"] <= row[0]["ci_high"] + 1e-12


def test_long_form_columns_and_completeness(table):
    assert tuple(table.columns) == TABLE2_COLUMNS
    assert set(table["subset"]) == set(SUBSETS)
    assert table.height == len(SUBSETS) * (4 + 3)  # BT: 4 metrics, MSE: 3
    assert set(table["seed"]) == {"0"}


def test_single_pair_subset_has_zero_width_ci(table):
    row = table.filter(
        (pl.col("dataset") == "multipref")
        & (pl.col("subset") == "high_agreement_tie")
        & (pl.col("metric") == "p_chosen")
    ).row(0, named=True)
    assert (row["ci_low"], row["ci_high"]) == (0.5, 0.5)


def test_several_seeds_add_a_pooled_row():
    shifted = BT_SCORES.with_columns(pl.col("reward_b") + 1.0)
    runs = [
        _run("multipref", "bt", "all", 1, BT_PAIRS, shifted),
        _run("multipref", "bt", "all", 0, BT_PAIRS, BT_SCORES),
    ]
    table = table2_long(runs, n_samples=200, ci=0.95, seed=11)
    p_all = table.filter((pl.col("subset") == "all") & (pl.col("metric") == "p_chosen"))
    by_seed = dict(zip(p_all["seed"], p_all["value"], strict=True))
    assert set(by_seed) == {"0", "1", "all"}
    assert by_seed["all"] == pytest.approx((by_seed["0"] + by_seed["1"]) / 2)
    assert by_seed["0"] == pytest.approx(3.4 / 6)
    assert table2_long(runs, n_samples=200, ci=0.95, seed=11).equals(table)


def test_empty_subset_is_nan_with_n_zero():
    pairs = BT_PAIRS.filter(pl.col("agreement") != "high_agreement_tie")
    scores = BT_SCORES.filter(pl.col("pair_id") != "p3")
    table = table2_long([_run("multipref", "bt", "agg", 0, pairs, scores)], n_samples=50, ci=0.95, seed=0)
    ties = table.filter(pl.col("subset") == "high_agreement_tie")
    assert ties["n"].to_list() == [0, 0, 0, 0]
    assert all(math.isnan(v) for v in ties["value"])


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (BT_SCORES.filter(pl.col("pair_id") != "p4"), "pair_id 'p4' has no score"),
        (pl.concat([BT_SCORES, BT_SCORES.head(1)]), "pair_id 'p6' is scored more than once"),
        (
            pl.concat([BT_SCORES, pl.DataFrame({"pair_id": ["zz"], "reward_a": [0.0], "reward_b": [0.0]})]),
            "'zz' is not among the pairs it should score",
        ),
        (
            BT_SCORES.with_columns(
                pl.when(pl.col("pair_id") == "p2")
                .then(float("nan"))
                .otherwise(pl.col("reward_a"))
                .alias("reward_a")
            ),
            "pair_id 'p2' has invalid reward_a = nan",
        ),
        (BT_SCORES.drop("reward_b"), "missing column(s) ['reward_b']"),
    ],
)
def test_bad_scores_name_file_pair_and_value(scores, message):
    with pytest.raises(ValueError, match=r"bad\.parquet") as error:
        join_test_scores(BT_PAIRS, scores, "bad.parquet")
    assert message in str(error.value)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(-8, 8), st.floats(-8, 8), st.sampled_from(["a", "b"])), min_size=1, max_size=30
    )
)
def test_bt_metrics_match_a_plain_reference(rows):
    reward_a, reward_b, chosen = (np.array(column) for column in zip(*rows, strict=True))
    metrics = per_pair_metrics("bt", reward_a, reward_b, chosen)
    for i, (ra, rb, side) in enumerate(rows):
        p_a = 1 / (1 + math.exp(-(ra - rb)))
        p_chosen = p_a if side == "a" else 1 - p_a
        assert metrics["p_chosen"][i] == pytest.approx(p_chosen, abs=1e-12)
        assert metrics["decisiveness"][i] == pytest.approx(abs(p_a - 0.5), abs=1e-12)
        # P(model's chosen > model's rejected) = max(P(A > B), P(B > A)) = 0.5 + decisiveness
        assert metrics["p_model_chosen"][i] == pytest.approx(max(p_a, 1 - p_a), abs=1e-12)
        assert metrics["p_model_chosen"][i] == pytest.approx(0.5 + metrics["decisiveness"][i], abs=1e-12)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="mean_var"):
        per_pair_metrics("mean_var", np.zeros(1), np.zeros(1), np.array(["a"]))


def test_paper_layout_renderings(table):
    markdown = render_markdown(table, ci=0.95)
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = lines[0]
    assert header == "| Subset | MP # Ex. | MP BT-Agg | HS2 # Ex. | HS2 MSE-Agg |"
    sections = markdown.split("### ")
    headline, paper, annotator_side = sections[1], sections[2], sections[3]
    assert headline.startswith("Table 2: how decisively each reward model picks its own side")
    # Table 2 is the model's own side: p_model_chosen (BT) and abs_margin (MSE)
    assert "| High-agreement prefs | 2 | 0.750 [" in headline
    assert "| All examples | 6 | 0.750 [" in headline
    assert "| 4 | 1.625 [" in headline
    # the paper's numbers beside it, for the same columns (MP BT-Agg; HS2 MSE-Agg)
    assert "| High-agreement ties | \N{EN DASH} | 0.663 | \N{EN DASH} | 0.412 |" in paper
    # the annotators' side moved to its own, clearly titled table
    assert annotator_side.startswith("Agreement with the annotators' side")
    assert "| All examples | 6 | 0.567 [" in annotator_side
    assert "| 4 | 0.875 [" in annotator_side
    assert sections[4].startswith("Agreement with the annotators' side")
    assert "Accuracy (BT and MSE)" in sections[4]
    latex = render_latex(table, ci=0.95)
    assert r"Subset & MP \# Ex. & MP BT-Agg & HS2 \# Ex. & HS2 MSE-Agg \\" in latex
    assert latex.count(r"\\") == 1 + 2 * len(SUBSETS)  # each subset row, then the paper's value
    assert r"(paper) & -- & 0.663 & -- & 0.412 \\" in latex
