"""ROC curves of divergence detection: one figure per dataset, one curve per condition (and seed)."""

from pathlib import Path

import polars as pl
from sklearn.metrics import roc_auc_score, roc_curve

from divpref.common.figures import pyplot, save_figure
from divpref.common.paper_numbers import PAPER_DATASETS
from divpref.detection.scores import DISTRIBUTIONAL_METHODS, DIVERGING, METHOD_ORDER, detection_mask
from divpref.detection.table import row_label


def roc_points(pair_scores: pl.DataFrame) -> pl.DataFrame:
    """ROC points per (condition, seed) of one dataset's ``pair_scores``: fpr, tpr and the run's AUROC."""
    frames = []
    for (condition, seed), group in pair_scores.group_by("condition", "seed", maintain_order=True):
        agreement = group["agreement"].to_numpy()
        keep = detection_mask(agreement)
        is_diverging = agreement[keep] == DIVERGING
        scores = group["divergence_score"].to_numpy()[keep]
        fpr, tpr, _ = roc_curve(is_diverging, scores)
        frames.append(
            pl.DataFrame(
                {
                    "condition": condition,
                    "method": group["method"][0],
                    "labels": group["labels"][0],
                    "label": group["label"][0]
                    if "label" in group.columns
                    else row_label(group["method"][0], group["labels"][0]),
                    "seed": seed,
                    "fpr": fpr,
                    "tpr": tpr,
                    "auroc": float(roc_auc_score(is_diverging, scores)),
                }
            )
        )
    return pl.concat(frames)


def plot_roc_curves(pair_scores: pl.DataFrame, dataset: str, png: str | Path, pdf: str | Path) -> None:
    """Every condition's ROC curve for ``dataset`` (seeds share a colour; the legend gives the mean AUROC)."""
    plt, sns = pyplot()
    data = pair_scores.filter(pl.col("dataset") == dataset)
    if data.is_empty():
        raise ValueError(f"no detection scores for dataset {dataset!r}")
    points = roc_points(data)
    rank = {method: index for index, method in enumerate(METHOD_ORDER)}
    conditions = sorted(
        points.select("condition", "method", "labels", "label").unique().iter_rows(),
        key=lambda row: (rank.get(row[1], len(rank)), row[2], row[0]),
    )
    palette = sns.color_palette("colorblind", len(conditions))
    figure, ax = plt.subplots(figsize=(5.2, 4.6))
    for colour, (condition, method, _, name) in zip(palette, conditions, strict=True):
        runs = points.filter(pl.col("condition") == condition)
        seeds = runs["seed"].unique(maintain_order=True).to_list()
        mean_auroc = float(runs.group_by("seed").agg(pl.col("auroc").first())["auroc"].mean())
        for index, seed in enumerate(seeds):
            run = runs.filter(pl.col("seed") == seed)
            label = f"{name}: AUROC {mean_auroc:.3f}" if index == 0 else None
            distributional = method in DISTRIBUTIONAL_METHODS  # drawn bolder than the scalar baselines
            ax.step(
                run["fpr"],
                run["tpr"],
                where="post",
                color=colour,
                linewidth=2.2 if distributional else 1.3,
                linestyle="-" if distributional else (0, (4, 1.5)),
                alpha=0.9,
                label=label,
            )
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="chance")
    agreement = data.filter(pl.col("condition") == data["condition"][0], pl.col("seed") == data["seed"][0])[
        "agreement"
    ]
    n_diverging = int((agreement == DIVERGING).sum())
    n_high_agreement = int(detection_mask(agreement.to_numpy()).sum()) - n_diverging
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("False positive rate (high-agreement pairs flagged)")
    ax.set_ylabel("True positive rate (diverging pairs flagged)")
    ax.set_title(
        f"{PAPER_DATASETS.get(dataset, dataset)}: telling diverging from high-agreement pairs\n"
        f"(test set: {n_diverging} diverging, {n_high_agreement} high-agreement)"
    )
    ax.legend(loc="lower right", fontsize=7, frameon=True)
    figure.tight_layout()
    save_figure(figure, png, pdf)
    plt.close(figure)
