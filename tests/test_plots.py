"""Plot data frames (hand-checked values) and the figures themselves (valid, titled, reproducible files)."""

import math

import numpy as np
import polars as pl
import pytest

from divpref.common.render import frame_to_html
from divpref.common.scorefiles import join_scores
from divpref.evaluation.divergence_table import gather_divergence
from divpref.evaluation.metrics import SCORE_COLUMNS, TEST_COLUMNS, ScoredRun
from divpref.evaluation.plots import (
    agreement_bins,
    by_subset,
    condition_order,
    divergence_rates,
    majority_share,
    pair_scores,
    plot_decisiveness,
    plot_divergence_rates,
    plot_score_distributions,
)


def join_test_scores(test: pl.DataFrame, scores: pl.DataFrame, source: str) -> pl.DataFrame:
    return join_scores(test, scores, list(SCORE_COLUMNS), list(TEST_COLUMNS), source)


TEST = pl.DataFrame(
    {
        "pair_id": ["p1", "p2", "p3", "p4"],
        "agreement": ["high_agreement_pref", "high_agreement_tie", "diverging", "diverging"],
        "substantial": [False, False, True, False],
        "chosen": ["a", "b", "a", "b"],
        "n_a": [4, 0, 2, 1],
        "n_b": [0, 1, 2, 2],
        "n_annotators": [4, 4, 4, 3],
    }
)


def _scores(reward_a, reward_b):
    return pl.DataFrame({"pair_id": ["p1", "p2", "p3", "p4"], "reward_a": reward_a, "reward_b": reward_b})


def _runs():
    log3 = math.log(3)
    return [
        ScoredRun(
            "multipref",
            "bt",
            "agg",
            0,
            join_test_scores(TEST, _scores([log3, 0.0, 0.0, 0.0], [0.0] * 4), "s0"),
        ),
        ScoredRun(
            "multipref",
            "bt",
            "agg",
            1,
            join_test_scores(TEST, _scores([-log3, 0.0, 0.0, 0.0], [0.0] * 4), "s1"),
        ),
        ScoredRun(
            "multipref",
            "mse",
            "all",
            0,
            join_test_scores(TEST, _scores([1.0, 2.0, 3.0, 4.0], [0.0] * 4), "m"),
        ),
    ]


def test_majority_share():
    assert majority_share(TEST["n_a"], TEST["n_b"], TEST["n_annotators"]).tolist() == [1.0, 0.25, 0.5, 2 / 3]


def test_pair_scores_average_seeds_per_condition():
    scores = pair_scores(_runs(), {"multipref": TEST})
    bt = scores.filter(pl.col("condition") == "MP BT-Agg").sort("pair_id")
    # p1: P(chosen) = 3/4 with seed 0 and 1/4 with seed 1 -> 1/2; P(model's chosen) = 3/4 both times.
    assert bt["annotator_side"].to_list() == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert bt["side_free"].to_list() == pytest.approx([0.75, 0.5, 0.5, 0.5])
    mse = scores.filter(pl.col("condition") == "MP MSE-All").sort("pair_id")
    assert mse["annotator_side"].to_list() == [1.0, -2.0, 3.0, -4.0]  # chosen b flips the sign
    assert mse["side_free"].to_list() == [1.0, 2.0, 3.0, 4.0]
    assert scores["majority_share"].to_list()[:4] == pytest.approx([1.0, 0.25, 0.5, 2 / 3])


def test_by_subset_repeats_substantial_pairs():
    subsets = by_subset(pair_scores(_runs()[2:], {"multipref": TEST}))
    counts = dict(subsets.group_by("subset").len().iter_rows())
    assert counts == {
        "High-agreement prefs": 1,
        "High-agreement ties": 1,
        "Diverging (all)": 2,
        "Diverging (substantial)": 1,
    }


def _divergence():
    rows = {
        "multipref": [
            ("high_agreement_pref", 5, 25.0),
            ("high_agreement_tie", 5, 25.0),
            ("diverging", 8, 40.0),
            ("other", 2, 10.0),
            ("substantial", 3, 15.0),
            ("pairs", 20, 100.0),
            ("annotations", 80, None),
        ],
        "helpsteer2": [
            ("high_agreement_pref", 6, 60.0),
            ("high_agreement_tie", 1, 10.0),
            ("diverging", 2, 20.0),
            ("other", 1, 10.0),
            ("substantial", 1, 10.0),
            ("pairs", 10, 100.0),
            ("annotations", 30, None),
        ],
    }
    summaries = {
        dataset: pl.DataFrame(
            values, schema={"category": pl.String, "count": pl.Int64, "percent": pl.Float64}, orient="row"
        )
        for dataset, values in rows.items()
    }
    return gather_divergence(summaries)


def test_gather_divergence_and_rates():
    divergence = _divergence()
    assert divergence.columns == ["dataset", "category", "count", "percent"]
    assert divergence.height == 14 and divergence["dataset"].to_list()[:1] == ["multipref"]
    rates = divergence_rates(divergence)
    assert rates.height == 10  # totals dropped
    assert rates["category"].to_list()[:2] == ["high_agreement_pref", "high_agreement_pref"]
    assert (
        rates.filter((pl.col("dataset") == "multipref") & (pl.col("category") == "diverging"))[
            "percent"
        ].item()
        == 40
    )
    with pytest.raises(ValueError, match="'helpsteer2': columns"):
        gather_divergence({"helpsteer2": pl.DataFrame({"category": ["x"], "n": [1]})})
    html = frame_to_html(divergence, title="Agreement categories")
    assert html.count("<tr>") == 15 and "<td>40.0</td>" in html and "<td>\N{EN DASH}</td>" in html


def _random_scores(seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = 60
    test = pl.DataFrame(
        {
            "pair_id": [f"p{i}" for i in range(n)],
            "agreement": rng.choice(["high_agreement_pref", "high_agreement_tie", "diverging", "other"], n),
            "substantial": rng.random(n) < 0.3,
            "chosen": rng.choice(["a", "b"], n),
            "n_a": rng.integers(0, 3, n),
            "n_b": rng.integers(0, 2, n),
            "n_annotators": np.full(n, 4),
        }
    )
    runs = [
        ScoredRun(
            dataset,
            method,
            labels,
            0,
            join_test_scores(
                test,
                pl.DataFrame(
                    {
                        "pair_id": test["pair_id"],
                        "reward_a": rng.normal(size=n),
                        "reward_b": rng.normal(size=n),
                    }
                ),
                "r",
            ),
        )
        for dataset, method, labels in (
            ("multipref", "bt", "agg"),
            ("helpsteer2", "bt", "all"),
            ("helpsteer2", "mse", "agg"),
        )
    ]
    return pair_scores(runs, {"multipref": test, "helpsteer2": test})


@pytest.mark.parametrize("kind", ["scores", "decisiveness", "divergence"])
def test_figures_are_valid_titled_and_reproducible(tmp_path, kind):
    def draw(folder):
        folder.mkdir()
        png, pdf = folder / "figure.png", folder / "figure.pdf"
        if kind == "scores":
            plot_score_distributions(_random_scores(0), png, pdf, seed=1)
        elif kind == "decisiveness":
            plot_decisiveness(_random_scores(0), png, pdf, seed=1)
        else:
            plot_divergence_rates(_divergence(), png, pdf)
        return png.read_bytes(), pdf.read_bytes()

    png, pdf = draw(tmp_path / "first")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 600 and height > 300
    assert draw(tmp_path / "second") == (png, pdf)


def test_agreement_bins_edges():
    shares = [0.0, 0.25, 0.49, 0.5, 2 / 3, 0.74, 0.75, 0.8, 0.99, 1.0]
    assert agreement_bins(shares) == ["< 50%"] * 3 + ["50\N{EN DASH}74%"] * 3 + ["75\N{EN DASH}99%"] * 3 + [
        "100%"
    ]


def test_condition_order_follows_table2_layout():
    scores = pl.DataFrame(
        {
            "dataset": ["helpsteer2", "multipref", "helpsteer2", "multipref", "helpsteer2"],
            "method": ["mse", "bt", "bt", "bt", "bt"],
            "labels": ["agg", "all", "all", "agg", "agg"],
            "condition": ["HS2 MSE-Agg", "MP BT-All", "HS2 BT-All", "MP BT-Agg", "HS2 BT-Agg"],
        }
    )
    assert condition_order(scores) == ["HS2 BT-Agg", "HS2 BT-All", "HS2 MSE-Agg", "MP BT-Agg", "MP BT-All"]
