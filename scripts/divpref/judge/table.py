"""The LLM-as-judge table: how often each judge picks a winner rather than a tie, per agreement subset.

``results/tables/judge.csv`` has one row per (dataset, judge, subset) with the columns of
:data:`JUDGE_COLUMNS`:

* ``winner_rate``: share of pairs whose final verdict (both orders agreeing) is A or B, with a percentile
  bootstrap CI over pairs as in Table 2 (:func:`divpref.common.bootstrap.bootstrap_mean`, seeded per row key);
* ``tie_rate``: share of pairs where the judge chose the tie option in both orders;
* ``order_consistency``: share of pairs whose two verdicts agree, so
  ``winner_rate + tie_rate + (1 - order_consistency) = 1``.

Subsets are Table 2's (:data:`divpref.common.constants.SUBSETS`) plus, where a flag model is configured,
``unflagged``: the flag dataset's test pairs that the flag model does not flag (the full paper's mitigation,
measured).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from divpref.common import render
from divpref.common.bootstrap import bootstrap_mean, stable_seed
from divpref.common.constants import SUBSETS
from divpref.common.figures import pyplot, save_figure
from divpref.common.paper_numbers import JUDGE_WINNER_RATE, PAPER_DATASETS
from divpref.common.render import HYPHEN, Section
from divpref.evaluation.metrics import SUBSET_LABELS, subset_masks
from divpref.flagging.flags import UNFLAGGED, UNFLAGGED_LABEL

JUDGE_COLUMNS = (
    "dataset",
    "judge",
    "subset",
    "n",
    "winner_rate",
    "ci_low",
    "ci_high",
    "tie_rate",
    "order_consistency",
)
JUDGE_SCHEMA = {
    "dataset": pl.String,
    "judge": pl.String,
    "subset": pl.String,
    "n": pl.Int64,
    "winner_rate": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "tie_rate": pl.Float64,
    "order_consistency": pl.Float64,
}
ALL_SUBSET_LABELS = {**SUBSET_LABELS, UNFLAGGED: UNFLAGGED_LABEL}
VERDICT_COLUMNS = ("pair_id", "verdict", "verdict_ab", "verdict_ba", "order_consistent")


def join_verdicts(test: pl.DataFrame, verdicts: pl.DataFrame, source: str) -> pl.DataFrame:
    """Test pairs (pair_id, agreement, substantial) with their verdicts; every test pair needs exactly one."""
    if verdicts.filter(pl.col("pair_id").is_duplicated()).height:
        raise ValueError(f"{source}: a pair_id is judged more than once")
    joined = test.select("pair_id", "agreement", "substantial").join(
        verdicts.select(VERDICT_COLUMNS), on="pair_id", how="left", maintain_order="left"
    )
    missing = joined.filter(pl.col("verdict").is_null())
    if missing.height:
        raise ValueError(f"{source}: test pair_id {missing['pair_id'][0]!r} has no verdict")
    if verdicts.height != test.height:
        raise ValueError(f"{source}: {verdicts.height} verdicts for {test.height} test pairs")
    return joined


def judge_rows(
    dataset: str,
    judge: str,
    pairs: pl.DataFrame,
    *,
    unflagged: np.ndarray | None,
    n_samples: int,
    ci: float,
    seed: int,
) -> list[dict]:
    """Rows of one (dataset, judge): each subset, plus ``unflagged`` when ``unflagged`` (a mask) is given."""
    masks = subset_masks(pairs["agreement"].to_numpy(), pairs["substantial"].to_numpy())
    if unflagged is not None:
        masks[UNFLAGGED] = np.asarray(unflagged, dtype=bool)
    verdict = pairs["verdict"].to_numpy()
    winner = np.isin(verdict, ["a", "b"]).astype(float)
    explicit_tie = ((pairs["verdict_ab"] == "tie") & (pairs["verdict_ba"] == "tie")).to_numpy().astype(float)
    consistent = pairs["order_consistent"].to_numpy().astype(float)
    rows = []
    for subset, mask in masks.items():
        estimate = bootstrap_mean(
            winner[mask], n_samples=n_samples, ci=ci, seed=stable_seed(seed, "judge", dataset, judge, subset)
        )
        empty = not mask.any()
        rows.append(
            {
                "dataset": dataset,
                "judge": judge,
                "subset": subset,
                "n": int(mask.sum()),
                "winner_rate": estimate.value,
                "ci_low": estimate.ci_low,
                "ci_high": estimate.ci_high,
                "tie_rate": float("nan") if empty else float(explicit_tie[mask].mean()),
                "order_consistency": float("nan") if empty else float(consistent[mask].mean()),
            }
        )
    return rows


def judge_table(rows: Sequence[dict]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=JUDGE_SCHEMA, orient="row")


def _percent(value: float | None) -> str:
    return render.format_number(value, decimals=1, missing=HYPHEN, percent=True)


def render_markdown(table: pl.DataFrame, *, ci: float) -> str:
    """Winner rate per subset (rows) for each dataset and judge beside the paper's; then ties, consistency."""
    datasets = table["dataset"].unique(maintain_order=True).to_list()
    keys = table.select("dataset", "judge").unique(maintain_order=True).rows()
    cells = {(row["dataset"], row["judge"], row["subset"]): row for row in table.iter_rows(named=True)}
    subsets = [*SUBSETS, *([UNFLAGGED] if (table["subset"] == UNFLAGGED).any() else [])]
    # A column per (dataset, judge), then (dataset, None): the paper's figure, for the paper's datasets.
    columns = [
        column
        for dataset in datasets
        for column in [
            *((d, judge) for d, judge in keys if d == dataset),
            *([(dataset, None)] if dataset in JUDGE_WINNER_RATE else []),
        ]
    ]

    def column_label(column: tuple[str, str | None]) -> str:
        dataset, judge = column
        return f"{PAPER_DATASETS.get(dataset, dataset)}: {'paper' if judge is None else judge}"

    def cell(subset: str, column: tuple[str, str | None]) -> str:
        dataset, judge = column
        if judge is None:
            return _percent(JUDGE_WINNER_RATE[dataset].get(subset))
        row = cells.get((dataset, judge, subset))
        if row is None:
            return HYPHEN
        interval = render.format_interval(
            row["winner_rate"], row["ci_low"], row["ci_high"], decimals=1, missing=HYPHEN, percent=True
        )
        return f"{interval} ({row['n']})"

    winner_rates = render.layout_grid(
        "Subset", subsets, columns, row_label=ALL_SUBSET_LABELS.get, column_label=column_label, cell=cell
    )
    consistency = [
        [
            PAPER_DATASETS.get(dataset, dataset),
            judge,
            _percent(cells[(dataset, judge, "all")]["tie_rate"]),
            _percent(cells[(dataset, judge, "all")]["order_consistency"]),
        ]
        for dataset, judge in keys
    ]
    sections = [
        Section(
            "LLM-as-judge: winner rate (share of pairs where the judge picks A or B rather than a tie)",
            f"Each cell: winner rate [{ci:.0%} bootstrap CI] (n pairs). "
            "A verdict that changes with the order of the responses counts as a tie.",
            *winner_rates,
        ),
        Section(
            None,
            "Tie rate (tie chosen in both orders) / order consistency, all test pairs:",
            ["Dataset", "Judge", "tie rate", "order consistency"],
            consistency,
        ),
    ]
    return render.render_markdown(sections)


def plot_winner_rates(table: pl.DataFrame, png: str | Path, pdf: str | Path) -> None:
    """Winner rate by agreement subset (seaborn bars, one colour per judge, bootstrap CIs), one panel per
    dataset; the paper's figures as black marks."""
    plt, sns = pyplot()
    datasets = table["dataset"].unique(maintain_order=True).to_list()
    judges = table["judge"].unique(maintain_order=True).to_list()
    subsets = [s for s in [*SUBSETS, UNFLAGGED] if (table["subset"] == s).any()]
    labels = [ALL_SUBSET_LABELS[s] for s in subsets]
    figure, axes = plt.subplots(
        1, len(datasets), figsize=(4.2 * len(datasets), 3.6), squeeze=False, sharey=True
    )
    for ax, dataset in zip(axes[0], datasets, strict=True):
        rows = table.filter(pl.col("dataset") == dataset, pl.col("n") > 0)
        frame = rows.with_columns(
            pl.col("subset").replace_strict(ALL_SUBSET_LABELS).alias("label")
        ).to_pandas()
        sns.barplot(
            data=frame, x="label", y="winner_rate", hue="judge", order=labels, hue_order=judges,
            errorbar=None, palette="colorblind", ax=ax,
        )  # fmt: skip
        for judge, container in zip(judges, ax.containers, strict=False):
            cells = {r["label"]: r for r in frame[frame["judge"] == judge].to_dict("records")}
            for bar in container:
                x = bar.get_x() + bar.get_width() / 2  # dodged within +-0.4 of its category's index
                row = cells.get(labels[round(x)])
                if row is not None:
                    low, high = row["winner_rate"] - row["ci_low"], row["ci_high"] - row["winner_rate"]
                    ax.errorbar(x, row["winner_rate"], yerr=[[low], [high]], color="0.2", capsize=2, lw=0.8)
        paper = JUDGE_WINNER_RATE.get(dataset, {})
        marks = [(index, paper[s]) for index, s in enumerate(subsets) if s in paper]
        if marks:
            ax.scatter(*zip(*marks, strict=True), marker="_", s=300, color="black", zorder=3, label="paper")
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
        ax.set(title=PAPER_DATASETS.get(dataset, dataset), xlabel="", ylim=(0, 1.05))
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("winner rate (A or B, not tie)")
    figure.tight_layout()
    save_figure(figure, png, pdf)
    plt.close(figure)
