"""Row-by-row agreement classification: the test oracle of ``divpref.data.agreement.classify_pairs``.

Plain Python, read straight off SPEC.md, for the tests and bench/bench_divergence.py (which puts tests/ on
its path).
"""

from collections.abc import Sequence

import polars as pl

from divpref.data.agreement import STRENGTHS, Side, classify_votes


def chosen_side(strengths: Sequence[int], tie_break: Side = "a") -> Side:
    """Table-2 "chosen" side: larger sum of s, then more votes, then ``tie_break``."""
    total = sum(strengths)
    if total != 0:
        return "a" if total > 0 else "b"
    n_a = sum(1 for s in strengths if s > 0)
    n_b = sum(1 for s in strengths if s < 0)
    if n_a != n_b:
        return "a" if n_a > n_b else "b"
    return tie_break


def label_distribution(strengths: Sequence[int]) -> list[float]:
    """Share of annotations in each bin B-clearly, B-slightly, tie, A-slightly, A-clearly."""
    return [sum(1 for s in strengths if s == k) / len(strengths) for k in STRENGTHS]


def classify_pairs_reference(annotations: pl.DataFrame, chosen_tie_break: Side = "a") -> pl.DataFrame:
    """Row-by-row equivalent of ``classify_pairs`` (columns pair_id .. label_dist), for tests and bench."""
    votes: dict[str, list[tuple[int, int]]] = {}
    for pair_id, annotator, strength in annotations.select("pair_id", "annotator", "strength").iter_rows():
        votes.setdefault(pair_id, []).append((annotator, strength))
    rows = []
    for pair_id, pair_votes in votes.items():
        strengths = [s for _, s in sorted(pair_votes)]
        agreement, substantial = classify_votes(strengths)
        rows.append(
            {
                "pair_id": pair_id,
                "n_annotators": len(strengths),
                "n_a": sum(1 for s in strengths if s > 0),
                "n_b": sum(1 for s in strengths if s < 0),
                "n_tie": sum(1 for s in strengths if s == 0),
                "strengths": strengths,
                "agreement": agreement,
                "substantial": substantial,
                "chosen": chosen_side(strengths, chosen_tie_break),
                "label_dist": label_distribution(strengths),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "pair_id": pl.String,
            "n_annotators": pl.Int64,
            "n_a": pl.Int64,
            "n_b": pl.Int64,
            "n_tie": pl.Int64,
            "strengths": pl.List(pl.Int64),
            "agreement": pl.String,
            "substantial": pl.Boolean,
            "chosen": pl.String,
            "label_dist": pl.List(pl.Float64),
        },
    )
