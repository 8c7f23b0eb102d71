"""Agreement categories of annotated pairs, exactly as SPEC.md defines them.

Input is the long per-annotation table written by the normalize stage (one row per annotation, signed
strength s in -2..2, positive favours response A). A pair's category is the first that matches:

1. ``diverging``: some annotator prefers A, some prefers B, and some |s| = 2; ``substantial`` if some s = +2
   and some s = -2;
2. ``high_agreement_tie``: ties are the strict plurality;
3. ``high_agreement_pref``: one side is the strict plurality and nobody chose the other side;
4. ``other``: everything else (slight-only disagreements, plurality ties between classes).

``classify_pairs`` is the vectorized polars implementation used by the workflow; ``classify_votes`` states the
rules for one pair's votes (the synthetic sample plants its expected categories with it). The row-by-row
equivalent of ``classify_pairs`` is a test oracle: ``tests/agreement_reference.py``.
"""

from collections.abc import Sequence
from typing import Literal

import polars as pl

CATEGORIES = ("high_agreement_pref", "high_agreement_tie", "diverging", "other")
STRENGTHS = (-2, -1, 0, 1, 2)
"""Strength of each ``label_dist`` bin: B-clearly, B-slightly, tie, A-slightly, A-clearly."""

Side = Literal["a", "b"]


def classify_pairs(annotations: pl.DataFrame, chosen_tie_break: Side = "a") -> pl.DataFrame:
    """One row per pair (order of first appearance): vote counts, category, chosen side, label shares.

    ``chosen`` is the side with the larger sum of s, then the side with more votes, then ``chosen_tie_break``.
    """
    strength = annotations["strength"]
    if strength.null_count() or not strength.is_between(-2, 2).all():
        bad = annotations.filter(~pl.col("strength").is_between(-2, 2) | pl.col("strength").is_null()).row(0)
        raise ValueError(f"annotation strength must be an integer in -2..2; first offending row: {bad}")
    # Sorting inside groups is the costliest step; skip it when rows already come as normalize writes them.
    strengths = (
        pl.col("strength") if annotators_in_order(annotations) else pl.col("strength").sort_by("annotator")
    )
    # Per-label indicator columns first: plain sums are polars' fast aggregation path.
    counted = annotations.lazy().with_columns(
        (pl.col("strength") == k).cast(pl.Int64).alias(f"_count{k}") for k in STRENGTHS
    )
    per_pair = counted.group_by("pair_id", maintain_order=True).agg(
        pl.col("prompt", "response_a", "response_b").first(),
        strengths.cast(pl.Int64).alias("strengths"),
        pl.col(f"_count{k}" for k in STRENGTHS).sum(),
        pl.col("helpfulness_a", "helpfulness_b").cast(pl.Float64).mean().name.prefix("mean_"),
    )
    per_pair = per_pair.with_columns(
        n_annotators=pl.sum_horizontal(f"_count{k}" for k in STRENGTHS),
        n_a=pl.col("_count1") + pl.col("_count2"),
        n_b=pl.col("_count-1") + pl.col("_count-2"),
        n_tie=pl.col("_count0"),
        _sum=2 * (pl.col("_count2") - pl.col("_count-2")) + pl.col("_count1") - pl.col("_count-1"),
        _has_a_clearly=pl.col("_count2") > 0,
        _has_b_clearly=pl.col("_count-2") > 0,
    )
    n_a, n_b, n_tie = pl.col("n_a"), pl.col("n_b"), pl.col("n_tie")
    diverging = (n_a >= 1) & (n_b >= 1) & (pl.col("_has_a_clearly") | pl.col("_has_b_clearly"))
    one_sided = ((n_a > n_b) & (n_a > n_tie) & (n_b == 0)) | ((n_b > n_a) & (n_b > n_tie) & (n_a == 0))
    agreement = (
        pl.when(diverging)
        .then(pl.lit("diverging"))
        .when((n_tie > n_a) & (n_tie > n_b))
        .then(pl.lit("high_agreement_tie"))
        .when(one_sided)
        .then(pl.lit("high_agreement_pref"))
        .otherwise(pl.lit("other"))
    )
    chosen = (
        pl.when(pl.col("_sum") > 0)
        .then(pl.lit("a"))
        .when(pl.col("_sum") < 0)
        .then(pl.lit("b"))
        .when(n_a > n_b)
        .then(pl.lit("a"))
        .when(n_b > n_a)
        .then(pl.lit("b"))
        .otherwise(pl.lit(chosen_tie_break))
    )
    shares = [pl.col(f"_count{k}") / pl.col("n_annotators") for k in STRENGTHS]
    return per_pair.select(
        "pair_id",
        "prompt",
        "response_a",
        "response_b",
        "n_annotators",
        "n_a",
        "n_b",
        "n_tie",
        "strengths",
        agreement.alias("agreement"),
        (pl.col("_has_a_clearly") & pl.col("_has_b_clearly")).alias("substantial"),
        chosen.alias("chosen"),
        pl.concat_arr(shares).arr.to_list().alias("label_dist"),  # ~25x faster than concat_list here
        "mean_helpfulness_a",
        "mean_helpfulness_b",
    ).collect()


def annotators_in_order(annotations: pl.DataFrame) -> bool:
    """True if each pair's rows are contiguous and its annotator indices strictly increase."""
    same_pair = (pl.col("pair_id") == pl.col("pair_id").shift(1)).fill_null(False)
    check = (
        annotations.lazy()
        .select(
            runs=(~same_pair).sum(),
            pairs=pl.col("pair_id").n_unique(),
            increasing=(~same_pair | (pl.col("annotator") > pl.col("annotator").shift(1))).all(),
        )
        .collect()
    )
    return bool(check["increasing"].item()) and check["runs"].item() == check["pairs"].item()


# --- one pair ------------------------------------------------------------------------------------


def classify_votes(strengths: Sequence[int]) -> tuple[str, bool]:
    """Category and ``substantial`` flag of one pair's signed strengths, by the SPEC rules read literally."""
    n_a = sum(1 for s in strengths if s > 0)
    n_b = sum(1 for s in strengths if s < 0)
    n_tie = sum(1 for s in strengths if s == 0)
    substantial = 2 in strengths and -2 in strengths
    if n_a >= 1 and n_b >= 1 and any(abs(s) == 2 for s in strengths):
        return "diverging", substantial
    if n_tie > n_a and n_tie > n_b:
        return "high_agreement_tie", substantial
    if (n_a > max(n_b, n_tie) and n_b == 0) or (n_b > max(n_a, n_tie) and n_a == 0):
        return "high_agreement_pref", substantial
    return "other", substantial


# --- summary ------------------------------------------------------------------------------------------


def summarize(pairs: pl.DataFrame, n_annotations: int) -> pl.DataFrame:
    """``category, count, percent`` for the four categories, ``substantial``, ``pairs`` and ``annotations``.

    Percentages are of all pairs; the ``annotations`` row has no percentage.
    """
    n_pairs = pairs.height
    counts = pairs["agreement"].value_counts()
    by_category = dict(zip(counts["agreement"].to_list(), counts["count"].to_list(), strict=True))
    unknown = set(by_category) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown agreement categories {sorted(unknown)} in pairs table")
    rows = [(category, by_category.get(category, 0)) for category in CATEGORIES]
    rows += [("substantial", int(pairs["substantial"].sum())), ("pairs", n_pairs)]
    summary = pl.DataFrame(
        {
            "category": [name for name, _ in rows],
            "count": [count for _, count in rows],
            "percent": [100.0 * count / n_pairs if n_pairs else None for _, count in rows],
        },
        schema={"category": pl.String, "count": pl.Int64, "percent": pl.Float64},
    )
    annotations_row = pl.DataFrame(
        {"category": ["annotations"], "count": [n_annotations], "percent": [None]},
        schema=summary.schema,
    )
    return pl.concat([summary, annotations_row])
