"""Agreement categories (SPEC.md): hand-worked cases, precedence edge cases, and vectorized == reference."""

import polars as pl
import pytest
from agreement_reference import chosen_side, classify_pairs_reference, label_distribution
from hypothesis import given, settings
from hypothesis import strategies as st

from divpref.data.agreement import CATEGORIES, classify_pairs, classify_votes, summarize
from divpref.data.records import ANNOTATIONS_SCHEMA


def annotations_frame(votes_by_pair: dict[str, list[int]], helpfulness: dict | None = None) -> pl.DataFrame:
    """Long annotation table (normalize's contract) from {pair_id: [strength per annotator]}."""
    rows = []
    for pair_id, votes in votes_by_pair.items():
        for annotator, strength in enumerate(votes):
            h_a, h_b = (helpfulness or {}).get(pair_id, [(None, None)] * len(votes))[annotator]
            rows.append((pair_id, f"prompt {pair_id}", "a", "b", annotator, strength, h_a, h_b))
    return pl.DataFrame(
        rows,
        schema=ANNOTATIONS_SCHEMA,
        orient="row",
    )


# (votes, category, substantial), worked out by hand from SPEC's rules, first match wins.
HAND_WORKED = [
    ([2, 2, 1, 1], "high_agreement_pref", False),  # all A
    ([-2, -1, -1], "high_agreement_pref", False),  # all B
    ([2, 2, 0], "high_agreement_pref", False),  # A plurality, nobody chose B
    ([-1, -1, -1, 0], "high_agreement_pref", False),
    ([0, 0, 0, 0], "high_agreement_tie", False),
    ([-1, 0, 0, 0], "high_agreement_tie", False),
    ([1, -1, 0, 0], "high_agreement_tie", False),  # slight-only disagreement, ties the plurality
    ([2, -1, 0, 0], "diverging", False),  # ties are the plurality, but a significant disagreement comes first
    ([0, 0, 0, 2, -1], "diverging", False),
    ([2, -1], "diverging", False),
    ([2, -2, 0, 0], "diverging", True),
    ([2, 2, -2, -2], "diverging", True),
    ([-2, 1, 1, 1], "diverging", False),
    ([1, 1, -1, 0], "other", False),  # slight-only disagreement
    ([1, -1], "other", False),
    ([1, 1, -1, -1], "other", False),
    ([1, 1, 0, 0], "other", False),  # plurality tie between A and Tie
    ([1, 0], "other", False),
    ([0, 0, 1, 1, -1], "other", False),  # A and Tie share the plurality, and B was chosen
    ([2, 0, 0, -1, -1], "diverging", False),
    ([-2, -2, 0, 0], "other", False),  # B and Tie share the plurality
]


@pytest.mark.parametrize(("votes", "category", "substantial"), HAND_WORKED)
def test_reference_matches_hand_worked_category(votes, category, substantial):
    assert classify_votes(votes) == (category, substantial)


def test_vectorized_matches_hand_worked_categories():
    frame = annotations_frame({f"p{i}": votes for i, (votes, _, _) in enumerate(HAND_WORKED)})
    pairs = classify_pairs(frame)
    assert pairs["pair_id"].to_list() == [f"p{i}" for i in range(len(HAND_WORKED))]
    assert pairs["agreement"].to_list() == [category for _, category, _ in HAND_WORKED]
    assert pairs["substantial"].to_list() == [substantial for _, _, substantial in HAND_WORKED]


def test_hand_worked_cases_cover_every_category():
    assert {category for _, category, _ in HAND_WORKED} == set(CATEGORIES)


def test_counts_strengths_and_label_dist_by_hand():
    pairs = classify_pairs(annotations_frame({"x": [2, -1, 0, 0]}))
    row = pairs.row(0, named=True)
    assert (row["n_annotators"], row["n_a"], row["n_b"], row["n_tie"]) == (4, 1, 1, 2)
    assert row["strengths"] == [2, -1, 0, 0]
    assert row["label_dist"] == [0.0, 0.25, 0.5, 0.0, 0.25]
    assert label_distribution([2, -1, 0, 0]) == [0.0, 0.25, 0.5, 0.0, 0.25]


def test_strengths_follow_annotator_index_not_row_order():
    frame = annotations_frame({"x": [2, -1, 0]}).reverse()
    assert classify_pairs(frame)["strengths"].to_list() == [[2, -1, 0]]


@pytest.mark.parametrize(
    ("votes", "tie_break", "expected"),
    [
        ([2, -1], "b", "a"),  # sum of s decides
        ([2, -1, -1], "a", "b"),  # sum 0, then more votes for B
        ([-2, 1, 1, 0], "b", "a"),  # sum 0, more votes for A
        ([1, -1], "a", "a"),  # everything equal: the configured tie break
        ([1, -1], "b", "b"),
        ([0, 0], "b", "b"),
    ],
)
def test_chosen_side(votes, tie_break, expected):
    assert chosen_side(votes, tie_break) == expected
    assert (
        classify_pairs(annotations_frame({"x": votes}), chosen_tie_break=tie_break)["chosen"].item()
        == expected
    )


def test_mean_helpfulness_only_with_scores():
    frame = annotations_frame({"x": [1, -2]}, helpfulness={"x": [(3, 2), (1, 4)]})
    row = classify_pairs(frame).row(0, named=True)
    assert (row["mean_helpfulness_a"], row["mean_helpfulness_b"]) == (2.0, 3.0)
    row = classify_pairs(annotations_frame({"x": [1, -2]})).row(0, named=True)
    assert row["mean_helpfulness_a"] is None and row["mean_helpfulness_b"] is None


def test_summary_counts_and_percentages():
    votes = {"a": [2, 2], "b": [0, 0], "c": [2, -2], "d": [2, -1], "e": [1, -1]}
    pairs = classify_pairs(annotations_frame(votes))
    summary = dict((row[0], row[1:]) for row in summarize(pairs, n_annotations=10).iter_rows())
    assert summary["high_agreement_pref"] == (1, 20.0)
    assert summary["high_agreement_tie"] == (1, 20.0)
    assert summary["diverging"] == (2, 40.0)
    assert summary["other"] == (1, 20.0)
    assert summary["substantial"] == (1, 20.0)
    assert summary["pairs"] == (5, 100.0)
    assert summary["annotations"] == (10, None)


VOTES = st.lists(st.integers(min_value=-2, max_value=2), min_size=1, max_size=7)


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(VOTES, min_size=1, max_size=25),
    tie_break=st.sampled_from(["a", "b"]),
    shuffle_seed=st.integers(0, 2**16),
)
def test_vectorized_equals_reference(pairs, tie_break, shuffle_seed):
    frame = annotations_frame({f"p{i}": votes for i, votes in enumerate(pairs)}).sample(
        fraction=1.0, shuffle=True, seed=shuffle_seed
    )
    vectorized = classify_pairs(frame, chosen_tie_break=tie_break)
    reference = classify_pairs_reference(frame, chosen_tie_break=tie_break)
    assert vectorized.select(reference.columns).equals(reference)
    assert vectorized["agreement"].is_in(CATEGORIES).all()
    # substantial pairs are always diverging
    assert vectorized.filter(pl.col("substantial"))["agreement"].eq("diverging").all()


def test_strength_outside_the_scale_is_an_error():
    frame = annotations_frame({"x": [1, 3]})
    with pytest.raises(ValueError, match=r"-2\.\.2.*'x'"):
        classify_pairs(frame)
