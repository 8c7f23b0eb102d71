"""Figures: score distributions per agreement subset, divergence rates, decisiveness vs. annotator agreement.

The frames are built by pure functions (tested); the drawing functions take those frames and two paths and
write a PNG and a PDF (no timestamps, so reruns give the same files).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

from divpref.common.constants import BT, SUBSETS
from divpref.common.figures import pyplot, save_figure
from divpref.evaluation.metrics import (
    ANNOTATOR_SIDE_METRIC,
    HEADLINE_METRIC,
    PROBABILITY_METHODS,
    SIDE_FREE_METRIC,
    SUBSET_LABELS,
    ScoredRun,
    condition_label,
    per_pair_metrics,
    subset_masks,
)

METRIC_AXIS_LABELS = {
    "p_model_chosen": "P(model's chosen > rejected)",
    "p_chosen": "P(chosen > rejected)",
    "margin": "r_chosen \N{MINUS SIGN} r_rejected",
    "decisiveness": "|P(A > B) \N{MINUS SIGN} 0.5|",
    "abs_margin": "|r_A \N{MINUS SIGN} r_B|",
}
PLOT_SUBSETS = tuple(subset for subset in SUBSETS if subset != "all")
DIVERGENCE_CATEGORIES = ("high_agreement_pref", "high_agreement_tie", "diverging", "substantial", "other")
CATEGORY_LABELS = {**SUBSET_LABELS, "substantial": "Diverging (substantial)", "other": "Other"}


def majority_share(n_a: np.ndarray, n_b: np.ndarray, n_annotators: np.ndarray) -> np.ndarray:
    """Share of a pair's annotators on its majority side (A or B); ties count against it."""
    n_a, n_b, n_annotators = (np.asarray(x, dtype=float) for x in (n_a, n_b, n_annotators))
    return np.maximum(n_a, n_b) / n_annotators


AGREEMENT_BIN_LABELS = ("< 50%", "50\N{EN DASH}74%", "75\N{EN DASH}99%", "100%")
"""Bins of the majority-side share: minority or tie-heavy, bare majority, clear majority, unanimous."""


def agreement_bins(shares: np.ndarray) -> list[str]:
    """The :data:`AGREEMENT_BIN_LABELS` bin of each majority-side share (0..1)."""
    edges = np.array([0.5, 0.75, 1.0 - 1e-9])
    return [
        AGREEMENT_BIN_LABELS[i] for i in np.searchsorted(edges, np.asarray(shares, dtype=float), side="right")
    ]


def condition_order(scores: pl.DataFrame) -> list[str]:
    """Condition labels as in Table 2: datasets in order of appearance, then BT before MSE, Agg before All."""
    datasets = scores["dataset"].unique(maintain_order=True).to_list()
    methods = list(HEADLINE_METRIC)
    keys = scores.select("dataset", "method", "labels", "condition").unique().iter_rows()
    ranked = sorted(keys, key=lambda row: (datasets.index(row[0]), methods.index(row[1]), row[2]))
    return [row[3] for row in ranked]


def pair_scores(runs: Iterable[ScoredRun], tests: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per (condition, pair): annotator-side and side-free metric averaged over the condition's seeds.

    Columns: dataset, method, labels, condition (``MP BT-Agg``), pair_id, agreement, substantial,
    majority_share, annotator_side (p_chosen / margin), side_free (Table 2's p_model_chosen / abs_margin).
    """
    grouped: dict[tuple[str, str, str], list[ScoredRun]] = {}
    for run in runs:
        grouped.setdefault((run.dataset, run.method, run.labels), []).append(run)
    frames = []
    for (dataset, method, labels), group in grouped.items():
        metrics = [
            per_pair_metrics(method, run.pairs["reward_a"], run.pairs["reward_b"], run.pairs["chosen"])
            for run in group
        ]
        pairs = group[0].pairs.select("pair_id", "agreement", "substantial")
        counts = pairs.join(
            tests[dataset].select("pair_id", "n_a", "n_b", "n_annotators"),
            on="pair_id",
            how="left",
            maintain_order="left",
        )
        frames.append(
            pairs.with_columns(
                pl.lit(dataset).alias("dataset"),
                pl.lit(method).alias("method"),
                pl.lit(labels).alias("labels"),
                pl.lit(condition_label(dataset, method, labels)).alias("condition"),
                pl.Series(
                    "majority_share",
                    majority_share(counts["n_a"], counts["n_b"], counts["n_annotators"]),
                ),
                pl.Series(
                    "annotator_side", np.mean([m[ANNOTATOR_SIDE_METRIC[method]] for m in metrics], axis=0)
                ),
                pl.Series("side_free", np.mean([m[SIDE_FREE_METRIC[method]] for m in metrics], axis=0)),
            )
        )
    columns = [
        "dataset",
        "method",
        "labels",
        "condition",
        "pair_id",
        "agreement",
        "substantial",
        "majority_share",
        "annotator_side",
        "side_free",
    ]
    return pl.concat([frame.select(columns) for frame in frames]) if frames else pl.DataFrame()


def by_subset(scores: pl.DataFrame) -> pl.DataFrame:
    """``scores`` repeated for each Table 2 subset (but ``all``) a pair is in, with a ``subset`` label."""
    masks = subset_masks(scores["agreement"].to_numpy(), scores["substantial"].to_numpy())
    parts = [
        scores.filter(pl.Series(masks[subset])).with_columns(pl.lit(SUBSET_LABELS[subset]).alias("subset"))
        for subset in PLOT_SUBSETS
    ]
    return pl.concat(parts)


def divergence_rates(divergence: pl.DataFrame) -> pl.DataFrame:
    """Percent of pairs per dataset and category (categories plus the substantial subset), labelled."""
    rates = divergence.filter(pl.col("category").is_in(DIVERGENCE_CATEGORIES))
    return rates.with_columns(
        pl.col("category").replace_strict(CATEGORY_LABELS).alias("category_label"),
        pl.col("category").replace_strict({c: i for i, c in enumerate(DIVERGENCE_CATEGORIES)}).alias("order"),
    ).sort("order", "dataset")


def plot_score_distributions(scores: pl.DataFrame, png: str | Path, pdf: str | Path, *, seed: int) -> None:
    """A panel per condition: agreement with the annotators' side per subset (box, points)."""
    plt, sns = pyplot()
    conditions = condition_order(scores)
    n_cols = min(3, max(1, len(conditions)))
    n_rows = max(1, math.ceil(len(conditions) / n_cols))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.6 * n_rows), squeeze=False)
    order = [SUBSET_LABELS[s] for s in PLOT_SUBSETS]
    rng = np.random.default_rng(seed)
    for ax, condition in zip(axes.flat, conditions, strict=False):
        data = by_subset(scores.filter(pl.col("condition") == condition)).to_pandas()
        method = data["method"].iloc[0] if len(data) else BT
        sns.boxplot(
            data=data, x="subset", y="annotator_side", order=order, ax=ax, color="#a6c8e0", fliersize=0
        )
        jitter = rng.uniform(-0.25, 0.25, size=len(data))
        positions = data["subset"].map({label: i for i, label in enumerate(order)}) + jitter
        ax.scatter(positions, data["annotator_side"], s=6, alpha=0.5, color="#1f4e79", linewidths=0)
        if method in PROBABILITY_METHODS:
            ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
            ax.set_ylim(0, 1)
        else:
            ax.axhline(0.0, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(condition)
        ax.set_xlabel("Annotator agreement subset")
        ax.set_ylabel(METRIC_AXIS_LABELS[ANNOTATOR_SIDE_METRIC[method]])
        ax.tick_params(axis="x", labelrotation=25)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    for ax in list(axes.flat)[len(conditions) :]:
        ax.set_visible(False)
    figure.suptitle(
        "Agreement with the annotators' side: P(chosen > rejected) (BT), "
        "r_chosen \N{MINUS SIGN} r_rejected (MSE), by subset"
    )
    figure.tight_layout()
    save_figure(figure, png, pdf)
    plt.close(figure)


def plot_divergence_rates(divergence: pl.DataFrame, png: str | Path, pdf: str | Path) -> None:
    """Bars: percent of pairs in each agreement category, per dataset."""
    plt, sns = pyplot()
    rates = divergence_rates(divergence).to_pandas()
    figure, ax = plt.subplots(figsize=(7.5, 4))
    hue_order = divergence["dataset"].unique(maintain_order=True).to_list()
    sns.barplot(data=rates, x="category_label", y="percent", hue="dataset", hue_order=hue_order, ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.0f%%", fontsize=8)
    ax.set_title("Agreement categories of annotated pairs, per dataset")
    ax.set_xlabel("Category (diverging (substantial) is a subset of diverging)")
    ax.set_ylabel("% of pairs")
    ax.legend(title="Dataset")
    figure.tight_layout()
    save_figure(figure, png, pdf)
    plt.close(figure)


def plot_decisiveness(scores: pl.DataFrame, png: str | Path, pdf: str | Path, *, seed: int) -> None:
    """Table 2's side-free metric against the share of annotators on the majority side; a panel per method."""
    plt, sns = pyplot()
    methods = [method for method in HEADLINE_METRIC if method in set(scores["method"])]
    figure, axes = plt.subplots(
        1, max(1, len(methods)), figsize=(5.5 * max(1, len(methods)), 4), squeeze=False
    )
    for ax, method in zip(axes.flat, methods, strict=False):
        data = scores.filter(pl.col("method") == method)
        hue_order = condition_order(data)
        data = data.with_columns(
            pl.Series("agreement_bin", agreement_bins(data["majority_share"].to_numpy()))
        ).to_pandas()
        sns.pointplot(
            data=data,
            x="agreement_bin",
            y="side_free",
            hue="condition",
            hue_order=hue_order,
            order=list(AGREEMENT_BIN_LABELS),
            dodge=0.3 if len(hue_order) > 1 else False,  # seaborn divides by (levels - 1)
            errorbar=("ci", 95),
            n_boot=500,
            seed=seed,
            ax=ax,
        )
        ax.set_title(f"{method.upper()} models: Table 2's decisiveness vs. annotator agreement")
        ax.set_xlabel("Share of annotators on the majority side (A or B)")
        ax.set_ylabel(f"Mean {METRIC_AXIS_LABELS[SIDE_FREE_METRIC[method]]}")
        ax.legend(title="Condition")
    figure.tight_layout()
    save_figure(figure, png, pdf)
    plt.close(figure)
