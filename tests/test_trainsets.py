"""Training sets per method and label scheme, counted by hand on a four-pair example."""

import polars as pl
import pytest
from test_divergence import annotations_frame

from divpref.data.agreement import classify_pairs
from divpref.data.trainsets import build_parts, build_trainset, majority_strength

# p1: A majority (2 A, 1 B, 1 tie); p2: tie majority; p3: no majority (2 A, 2 B);
# p4: B majority, mostly clearly.
VOTES = {"p1": [2, 1, 0, -1], "p2": [0, 0, 1], "p3": [1, 1, -1, -1], "p4": [-2, -2, -1, 0]}
SCORES = {
    "p1": [(4, 1), (3, 2), (2, 2), (1, 2)],
    "p2": [(2, 2), (3, 3), (3, 2)],
    "p3": [(3, 2), (3, 2), (1, 2), (0, 2)],
    "p4": [(0, 4), (1, 3), (2, 3), (2, 2)],
}


@pytest.fixture
def annotations():
    return annotations_frame(VOTES, helpfulness=SCORES)


@pytest.fixture
def pairs(annotations):
    return classify_pairs(annotations)


def test_bt_agg_keeps_a_or_b_majorities(pairs, annotations):
    table = build_trainset("bt", "agg", pairs, annotations)
    assert table.columns == ["pair_id", "prompt", "response_a", "response_b", "chosen"]
    assert table.select("pair_id", "chosen").rows() == [("p1", "a"), ("p4", "b")]
    # counting p3 as a tie still keeps it out of BT
    assert build_trainset("bt", "agg", pairs, annotations, no_majority="tie").height == 2


def test_bt_all_one_row_per_non_tie_vote(pairs, annotations):
    table = build_trainset("bt", "all", pairs, annotations)
    assert table.height == 3 + 1 + 4 + 3
    assert table.group_by("pair_id", maintain_order=True).agg(pl.col("chosen")).rows() == [
        ("p1", ["a", "a", "b"]),
        ("p2", ["a"]),
        ("p3", ["a", "a", "b", "b"]),
        ("p4", ["b", "b", "b"]),
    ]
    assert table["prompt"].to_list()[:3] == ["prompt p1"] * 3


def test_mse_agg_mean_scores(pairs, annotations):
    table = build_trainset("mse", "agg", pairs, annotations)
    assert table.columns == ["pair_id", "prompt", "response_a", "response_b", "score_a", "score_b"]
    assert table.select("pair_id", "score_a", "score_b").rows() == [
        ("p1", 2.5, 1.75),
        ("p2", 8 / 3, 7 / 3),
        ("p3", 1.75, 2.0),
        ("p4", 1.25, 3.0),
    ]


def test_mse_all_one_row_per_annotator(pairs, annotations):
    table = build_trainset("mse", "all", pairs, annotations)
    assert table.height == 15
    assert table.filter(pl.col("pair_id") == "p2").select("score_a", "score_b").rows() == [
        (2.0, 2.0),
        (3.0, 3.0),
        (3.0, 2.0),
    ]


def test_mse_without_scores_is_an_error():
    annotations = annotations_frame(VOTES)  # MultiPref: no helpfulness
    with pytest.raises(ValueError, match=r"mse.*helpfulness"):
        build_trainset("mse", "agg", classify_pairs(annotations), annotations)


def test_majority_strength_by_hand(pairs):
    # p1: side A with one "clearly" and one "slightly" -> slightly; p4: two "clearly" vs one "slightly"
    assert majority_strength(pairs).to_list() == [1, 0, None, -2]
    assert majority_strength(pairs, no_majority="tie").to_list() == [1, 0, 0, -2]


@pytest.mark.parametrize("method", ["mean_var", "classification"])
def test_label_dist_all_and_agg(pairs, annotations, method):
    table = build_trainset(method, "all", pairs, annotations)
    assert table.columns == ["pair_id", "prompt", "response_a", "response_b", "label_dist"]
    assert table["label_dist"].to_list()[0] == [0.0, 0.25, 0.25, 0.25, 0.25]
    agg = build_trainset(method, "agg", pairs, annotations)
    assert agg.select("pair_id", "label_dist").rows() == [
        ("p1", [0.0, 0.0, 0.0, 1.0, 0.0]),
        ("p2", [0.0, 0.0, 1.0, 0.0, 0.0]),
        ("p4", [1.0, 0.0, 0.0, 0.0, 0.0]),
    ]


def test_dev_is_agg_for_bt_and_mse(pairs, annotations):
    parts = build_parts("bt", "all", {"train": pairs, "dev": pairs}, annotations)
    assert parts["train"].height == 11 and parts["dev"].height == 2
    parts = build_parts("mse", "all", {"train": pairs, "dev": pairs}, annotations)
    assert parts["train"].height == 15 and parts["dev"].height == 4
    parts = build_parts("mean_var", "all", {"train": pairs, "dev": pairs}, annotations)
    assert parts["dev"].equals(parts["train"])


def test_only_the_split_pairs_are_used(pairs, annotations):
    subset = pairs.filter(pl.col("pair_id").is_in(["p3", "p4"]))
    table = build_trainset("bt", "all", subset, annotations)
    assert set(table["pair_id"]) == {"p3", "p4"} and table.height == 7


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method"):
        build_trainset("dpo", "agg", pl.DataFrame(), pl.DataFrame())
