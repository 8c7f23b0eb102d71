"""Training sets per method (bt, mse, mean_var, classification, likert_classification) and label scheme
(agg, all).

Every table starts with ``pair_id, prompt, response_a, response_b``; the label columns follow ARCHITECTURE.md:

- ``bt``: ``chosen`` ("a"/"b"). agg: one row per pair whose majority vote is A or B; all: one row per non-tie
  annotation.
- ``mse``: ``score_a, score_b``. agg: the pair's mean helpfulness; all: one row per annotator's two scores.
- ``mean_var`` / ``classification``: ``label_dist`` (5 shares, B-clearly .. A-clearly). all: the annotators'
  empirical distribution; agg: all mass on the majority label (see ``majority_strength``).
- ``likert_classification``: ``likert_dist_a``, ``likert_dist_b`` (5 shares over the Likert classes 1..5 =
  helpfulness 0..4 + 1), one row per pair; all: each response's annotator distribution; agg: all mass on its
  rounded mean score (see :mod:`divpref.models.likert_targets`).

The majority vote is the strict plurality over {A, B, Tie}. A pair without one (e.g. 2 A and 2 B) is dropped
from agg sets, or treated as a tie when ``no_majority="tie"`` (config ``divergence.agg_no_majority``).
The dev part of ``bt`` and ``mse`` is always the agg version, so dev metrics compare across label schemes;
the distributional methods' dev sets use the same labels as their training sets.
"""

from typing import Literal

import polars as pl

from divpref.common.constants import BT, BUILTIN_METHODS, LABEL_SCHEMES, LIKERT_CLASSIFICATION, MSE
from divpref.data.agreement import STRENGTHS

LAYOUTS = BUILTIN_METHODS
"""Training-set layouts, one per built-in method; a registered method names the one it reads
(``RewardMethod.trainset_layout``)."""
LABELS = LABEL_SCHEMES
TEXT_COLUMNS = ("pair_id", "prompt", "response_a", "response_b")
NoMajority = Literal["drop", "tie"]


def majority_side(n_a: pl.Expr, n_b: pl.Expr, n_tie: pl.Expr, no_majority: NoMajority = "drop") -> pl.Expr:
    """ "a", "b" or "tie": the strict plurality of the votes; null (or "tie") when no class has one."""
    fallback = pl.lit(None, dtype=pl.String) if no_majority == "drop" else pl.lit("tie")
    return (
        pl.when((n_a > n_b) & (n_a > n_tie))
        .then(pl.lit("a"))
        .when((n_b > n_a) & (n_b > n_tie))
        .then(pl.lit("b"))
        .when((n_tie > n_a) & (n_tie > n_b))
        .then(pl.lit("tie"))
        .otherwise(fallback)
    )


def majority_strength(pairs: pl.DataFrame, no_majority: NoMajority = "drop") -> pl.Series:
    """The agg label of each pair as a strength in -2..2 (null if dropped).

    The side is the majority vote; its strength is the more frequent of "clearly" and "slightly" among the
    annotations on that side, "slightly" when they are equally frequent.
    """
    side = majority_side(pl.col("n_a"), pl.col("n_b"), pl.col("n_tie"), no_majority)
    strengths = pl.col("strengths")
    count = {k: strengths.list.eval((pl.element() == k).sum()).list.first() for k in (-2, -1, 1, 2)}
    strength = (
        pl.when(side == "a")
        .then(pl.when(count[2] > count[1]).then(2).otherwise(1))
        .when(side == "b")
        .then(pl.when(count[-2] > count[-1]).then(-2).otherwise(-1))
        .when(side == "tie")
        .then(0)
    )
    return pairs.select(strength.cast(pl.Int64).alias("majority_strength")).to_series()


def build_trainset(
    method: str,
    labels: str,
    pairs: pl.DataFrame,
    annotations: pl.DataFrame,
    no_majority: NoMajority = "drop",
) -> pl.DataFrame:
    """The training table for ``method``/``labels`` from one split's pairs and those pairs' annotations."""
    if method not in LAYOUTS or labels not in LABELS:
        raise ValueError(f"unknown method/labels {method!r}/{labels!r}; expected {LAYOUTS} x {LABELS}")
    annotations = annotations.join(pairs.select("pair_id"), on="pair_id", how="semi", maintain_order="left")
    if method == BT:
        return _bt(labels, pairs, annotations, no_majority)
    if method == MSE:
        return _mse(labels, pairs, annotations)
    if method == LIKERT_CLASSIFICATION:
        from divpref.models.likert_targets import build_likert_trainset

        return build_likert_trainset(labels, pairs, annotations)
    return _label_dist(labels, pairs, no_majority)


def build_parts(
    method: str,
    labels: str,
    pairs_by_split: dict[str, pl.DataFrame],
    annotations: pl.DataFrame,
    no_majority: NoMajority = "drop",
) -> dict[str, pl.DataFrame]:
    """``{"train": ..., "dev": ...}`` for one method/labels; dev is agg for bt and mse (see module doc)."""
    dev_labels = "agg" if method in (BT, MSE) else labels
    return {
        "train": build_trainset(method, labels, pairs_by_split["train"], annotations, no_majority),
        "dev": build_trainset(method, dev_labels, pairs_by_split["dev"], annotations, no_majority),
    }


def _bt(labels: str, pairs: pl.DataFrame, annotations: pl.DataFrame, no_majority: NoMajority) -> pl.DataFrame:
    if labels == "agg":
        side = majority_side(pl.col("n_a"), pl.col("n_b"), pl.col("n_tie"), no_majority)
        return (
            pairs.with_columns(chosen=side)
            .filter(pl.col("chosen").is_in(["a", "b"]))
            .select(*TEXT_COLUMNS, "chosen")
        )
    votes = annotations.filter(pl.col("strength") != 0).sort("pair_id", "annotator", maintain_order=True)
    chosen = pl.when(pl.col("strength") > 0).then(pl.lit("a")).otherwise(pl.lit("b"))
    return _with_texts(votes.select("pair_id", chosen.alias("chosen")), pairs)


def _mse(labels: str, pairs: pl.DataFrame, annotations: pl.DataFrame) -> pl.DataFrame:
    has_scores = (
        annotations["helpfulness_a"].is_not_null().all() and annotations["helpfulness_b"].is_not_null().all()
    )
    if annotations.is_empty() or not has_scores:
        raise ValueError("method 'mse' needs helpfulness scores for every annotation; this dataset has none")
    if labels == "agg":
        return pairs.select(
            *TEXT_COLUMNS,
            pl.col("mean_helpfulness_a").alias("score_a"),
            pl.col("mean_helpfulness_b").alias("score_b"),
        )
    scores = annotations.sort("pair_id", "annotator", maintain_order=True).select(
        "pair_id",
        pl.col("helpfulness_a").cast(pl.Float64).alias("score_a"),
        pl.col("helpfulness_b").cast(pl.Float64).alias("score_b"),
    )
    return _with_texts(scores, pairs)


def _label_dist(labels: str, pairs: pl.DataFrame, no_majority: NoMajority) -> pl.DataFrame:
    if labels == "all":
        return pairs.select(*TEXT_COLUMNS, "label_dist")
    strength = majority_strength(pairs, no_majority)
    one_hot = pl.concat_list([(pl.col("_majority") == k).cast(pl.Float64) for k in STRENGTHS])
    return (
        pairs.with_columns(_majority=strength)
        .filter(pl.col("_majority").is_not_null())
        .select(*TEXT_COLUMNS, one_hot.alias("label_dist"))
    )


def _with_texts(rows: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Prepend the pair texts to per-annotation rows, keeping the pairs' order."""
    texts = pairs.select(TEXT_COLUMNS).with_row_index("_order")
    joined = rows.join(texts, on="pair_id", how="inner").sort("_order", maintain_order=True)
    return joined.select(*TEXT_COLUMNS, pl.exclude(*TEXT_COLUMNS, "_order"))
