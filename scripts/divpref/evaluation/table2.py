"""Table 2: how decisively reward models pick a side, per annotator-agreement subset.

The metrics and subsets are in :mod:`divpref.evaluation.metrics`; this module bootstraps them into the long
table and lays that out as the paper does (markdown, LaTeX, HTML through :mod:`divpref.common.render`).
"""

from collections.abc import Iterable, Mapping

import numpy as np
import polars as pl

from divpref.common import paper_numbers, render
from divpref.common.bootstrap import bootstrap_mean, bootstrap_mean_over_seeds, stable_seed
from divpref.common.constants import POOLED_SEED, SUBSETS
from divpref.common.render import EN_DASH, Section
from divpref.evaluation.metrics import (
    ACCURACY_METRIC,
    ANNOTATOR_SIDE_METRIC,
    DATASET_ABBREVIATIONS,
    HEADLINE_METRIC,
    METRICS,
    SUBSET_LABELS,
    ScoredRun,
    condition_label,
    per_pair_metrics,
    subset_masks,
)
from divpref.flagging.flags import UNFLAGGED, UNFLAGGED_LABEL

HEADLINE_TITLE = "Table 2: how decisively each reward model picks its own side"
ANNOTATOR_SIDE_TITLE = "Agreement with the annotators' side (not the paper's Table 2)"
PAPER_TITLE = "The paper's Table 2 beside it (Llama-3-8B-Instruct, real MultiPref/HelpSteer2 test sets)"
TABLE2_COLUMNS = (
    "dataset",
    "method",
    "labels",
    "seed",
    "subset",
    "n",
    "metric",
    "value",
    "ci_low",
    "ci_high",
)


ROW_LABELS = {**SUBSET_LABELS, UNFLAGGED: UNFLAGGED_LABEL}


def table_subsets(table: pl.DataFrame) -> list[str]:
    """The layout's rows: Table 2's subsets, then ``unflagged`` where the table has it."""
    return [*SUBSETS, *([UNFLAGGED] if (table["subset"] == UNFLAGGED).any() else [])]


def _row(run_key: tuple, seed: str, subset: str, n: int, metric: str, estimate) -> dict:
    dataset, method, labels = run_key
    return {
        "dataset": dataset,
        "method": method,
        "labels": labels,
        "seed": seed,
        "subset": subset,
        "n": n,
        "metric": metric,
        "value": estimate.value,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
    }


def table2_long(
    runs: Iterable[ScoredRun],
    *,
    n_samples: int,
    ci: float,
    seed: int,
    extra_subsets: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> pl.DataFrame:
    """The long Table 2: one row per (dataset, method, labels, seed, subset, metric).

    ``extra_subsets`` adds subsets after Table 2's for a dataset: ``{dataset: {subset: mask over its test
    pairs, in test order}}`` (the ``unflagged`` test pairs of the flag dataset).

    Each model seed gets its own rows with a bootstrap CI over pairs. A condition with several seeds also gets
    ``seed == "all"`` rows: the mean over seeds with a CI that resamples seeds and pairs (see
    :func:`divpref.common.bootstrap.bootstrap_mean_over_seeds`). A condition's runs must share the test pairs.
    """
    grouped: dict[tuple, list[ScoredRun]] = {}
    for run in runs:
        grouped.setdefault((run.dataset, run.method, run.labels), []).append(run)
    rows = []
    for run_key, group in grouped.items():
        group = sorted(group, key=lambda run: run.seed)
        seeds = [run.seed for run in group]
        if len(set(seeds)) != len(seeds):
            raise ValueError(
                f"{run_key}: two runs share a seed: {seeds} (two conditions with the same method and labels?)"
            )
        reference = group[0].pairs
        for run in group[1:]:
            if run.pairs["pair_id"].to_list() != reference["pair_id"].to_list():
                raise ValueError(
                    f"{run_key}: seed {run.seed} was scored on different test pairs than seed {seeds[0]}"
                )
        masks = subset_masks(reference["agreement"].to_numpy(), reference["substantial"].to_numpy())
        for subset, mask in ((extra_subsets or {}).get(run_key[0]) or {}).items():
            if len(mask) != reference.height:
                raise ValueError(
                    f"{run_key}: subset {subset!r} has {len(mask)} flags for {reference.height} pairs"
                )
            masks[subset] = np.asarray(mask, dtype=bool)
        metrics_by_seed = [
            per_pair_metrics(run_key[1], run.pairs["reward_a"], run.pairs["reward_b"], run.pairs["chosen"])
            for run in group
        ]
        for subset, mask in masks.items():
            for metric in METRICS[run_key[1]]:
                keys = (*run_key, subset, metric)
                for run, metrics in zip(group, metrics_by_seed, strict=True):
                    estimate = bootstrap_mean(
                        metrics[metric][mask],
                        n_samples=n_samples,
                        ci=ci,
                        seed=stable_seed(seed, *keys, str(run.seed)),
                    )
                    rows.append(_row(run_key, str(run.seed), subset, int(mask.sum()), metric, estimate))
                if len(group) > 1:
                    matrix = np.stack([metrics[metric][mask] for metrics in metrics_by_seed])
                    estimate = bootstrap_mean_over_seeds(
                        matrix, n_samples=n_samples, ci=ci, seed=stable_seed(seed, *keys, POOLED_SEED)
                    )
                    rows.append(_row(run_key, POOLED_SEED, subset, int(mask.sum()), metric, estimate))
    schema = {
        "dataset": pl.String,
        "method": pl.String,
        "labels": pl.String,
        "seed": pl.String,
        "subset": pl.String,
        "n": pl.Int64,
        "metric": pl.String,
        "value": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def summary_rows(table: pl.DataFrame, metric_by_method: dict[str, str]) -> pl.DataFrame:
    """One value per (dataset, method, labels, subset): the pooled seed when present, else the only seed."""
    wanted = pl.DataFrame(
        {"method": list(metric_by_method), "metric": list(metric_by_method.values())},
        schema={"method": pl.String, "metric": pl.String},
    )
    chosen = table.join(wanted, on=["method", "metric"], how="semi", maintain_order="left")
    return render.pooled_or_only_seed(chosen, ["dataset", "method", "labels", "subset"])


def _cell(value: float, low: float, high: float) -> str:
    return EN_DASH if value is None or np.isnan(value) else render.format_interval(value, low, high)


def _layout_columns(table: pl.DataFrame, metric_by_method: dict[str, str]) -> list[tuple]:
    """(dataset, method, labels) per column after ``Subset``; (dataset, None, None): the ``# Ex.`` column."""
    summary = summary_rows(table, metric_by_method)
    conditions = summary.select("dataset", "method", "labels").unique(maintain_order=True).rows()
    datasets = list(dict.fromkeys(dataset for dataset, _, _ in conditions))
    method_rank = {method: rank for rank, method in enumerate(METRICS)}
    columns: list[tuple] = []
    for dataset in datasets:
        columns.append((dataset, None, None))
        own = sorted((m, lab) for d, m, lab in conditions if d == dataset)
        columns += [(dataset, m, lab) for m, lab in sorted(own, key=lambda p: (method_rank[p[0]], p[1]))]
    return columns


def _column_label(column: tuple) -> str:
    dataset, method, labels = column
    if method is None:
        return f"{DATASET_ABBREVIATIONS.get(dataset, dataset)} # Ex."
    return condition_label(dataset, method, labels)


def paper_layout(table: pl.DataFrame, metric_by_method: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the paper's layout: a row per subset; per dataset ``n``, then the conditions."""
    summary = summary_rows(table, metric_by_method)
    lookup = {
        (row["dataset"], row["method"], row["labels"], row["subset"]): row
        for row in summary.iter_rows(named=True)
    }

    def cell(subset: str, column: tuple) -> str:
        dataset, method, labels = column
        if method is None:
            counts = [row["n"] for key, row in lookup.items() if key[0] == dataset and key[3] == subset]
            return str(counts[0]) if counts else EN_DASH
        row = lookup.get((dataset, method, labels, subset))
        return EN_DASH if row is None else _cell(row["value"], row["ci_low"], row["ci_high"])

    columns = _layout_columns(table, metric_by_method)
    return render.layout_grid(
        "Subset",
        table_subsets(table),
        columns,
        row_label=ROW_LABELS.get,
        column_label=_column_label,
        cell=cell,
    )


def _metric_note(metric_by_method: dict[str, str]) -> str:
    names = {
        "p_model_chosen": "mean P(model's chosen > model's rejected) = mean sigmoid(|r_A - r_B|)",
        "p_chosen": "mean P(chosen > rejected), chosen = the annotators' side",
        "margin": "mean r_chosen - r_rejected, chosen = the annotators' side",
        "decisiveness": "mean |P(A > B) - 0.5|",
        "abs_margin": "mean |r_A - r_B|",
    }
    if set(metric_by_method.values()) == {"accuracy"}:
        return (
            "Accuracy (BT and MSE): share of pairs with r_chosen > r_rejected, chosen = the annotators' side"
        )
    return "; ".join(f"{method.upper()}: {names[metric]}" for method, metric in metric_by_method.items())


def paper_reference_layout(table: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The headline layout of ``table`` with the paper's numbers in its cells (a dash where it has none)."""

    def cell(subset: str, column: tuple) -> str:
        dataset, method, labels = column
        if method is None or subset not in SUBSETS:
            return EN_DASH
        return render.format_number(paper_numbers.table2_value(dataset, method, labels, subset))

    columns = _layout_columns(table, HEADLINE_METRIC)
    return render.layout_grid(
        "Subset",
        table_subsets(table),
        columns,
        row_label=ROW_LABELS.get,
        column_label=_column_label,
        cell=cell,
    )


def table_sections(table: pl.DataFrame, *, ci: float) -> list[Section]:
    """Every rendered table: Table 2, the paper's, then the annotator side and accuracy."""
    interval = f"[{ci:.0%} bootstrap CI]."
    sections = [
        Section(
            HEADLINE_TITLE,
            f"{_metric_note(HEADLINE_METRIC)}; {interval}",
            *paper_layout(table, HEADLINE_METRIC),
        ),
        Section(
            PAPER_TITLE, f"Same metric: {_metric_note(HEADLINE_METRIC)}.", *paper_reference_layout(table)
        ),
    ]
    for metric_by_method in (ANNOTATOR_SIDE_METRIC, ACCURACY_METRIC):
        note = f"{_metric_note(metric_by_method)}; {interval}"
        sections.append(Section(ANNOTATOR_SIDE_TITLE, note, *paper_layout(table, metric_by_method)))
    return sections


def render_markdown(table: pl.DataFrame, *, ci: float) -> str:
    """Table 2 (the model's own side), the paper's numbers, and agreement with the annotators' side."""
    return render.render_markdown(table_sections(table, ci=ci))


def render_latex(table: pl.DataFrame, *, ci: float) -> str:
    """Table 2 (the model's own side) as a booktabs LaTeX table; the paper's value under each cell."""
    header, body = paper_layout(table, HEADLINE_METRIC)
    _, reference = paper_reference_layout(table)
    body = [
        row for cells, paper in zip(body, reference, strict=True) for row in (cells, ["(paper)", *paper[1:]])
    ]
    caption = (
        f"{_metric_note(HEADLINE_METRIC)} ({ci:.0%} bootstrap CI in brackets); "
        "(paper): the paper's value (Llama-3-8B-Instruct, real data)."
    )
    return render.render_latex(header, body, caption=caption, label="tab:table2")


def render_html(table: pl.DataFrame, *, ci: float) -> str:
    """The tables of :func:`render_markdown` as a self-contained HTML page (for the Snakemake report)."""
    return render.render_html(table_sections(table, ci=ci))
