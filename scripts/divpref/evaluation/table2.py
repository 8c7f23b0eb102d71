"""Table 2: how decisively reward models pick a side, per annotator-agreement subset.

SPEC "Table 2 metric": the paper's headline is side-free, "P(C > R) where C and R are the reward model's chosen
and rejected responses": for BT ``p_model_chosen``, the mean of max(sigmoid(r_A - r_B), sigmoid(r_B - r_A)) =
mean sigmoid(|r_A - r_B|); for MSE ``abs_margin``, the mean |r_A - r_B|. A second table gives agreement with
the ANNOTATORS' side ("chosen" in pairs.parquet): BT ``p_chosen`` = mean sigmoid(r_chosen - r_rejected), MSE
``margin`` = mean r_chosen - r_rejected, and ``accuracy`` (share of pairs with r_chosen > r_rejected).
BT also keeps ``decisiveness``, mean |P(A > B) - 0.5| = p_model_chosen - 0.5.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import polars as pl
from scipy.special import expit

from divpref.common import paper_numbers, scorefiles
from divpref.common.bootstrap import bootstrap_mean, bootstrap_mean_over_seeds, stable_seed
from divpref.common.constants import BT, MSE, POOLED_SEED, PRETRAINED, SUBSETS

SUBSET_LABELS = {
    "high_agreement_pref": "High-agreement prefs",
    "high_agreement_tie": "High-agreement ties",
    "diverging": "Diverging (all)",
    "diverging_substantial": "Diverging (substantial)",
    "all": "All examples",
}
METRICS = {
    BT: ("p_model_chosen", "p_chosen", "decisiveness", "accuracy"),
    MSE: ("abs_margin", "margin", "accuracy"),
    # Off-the-shelf reward models (Skywork, Nemotron) are Bradley-Terry trained: reward gaps are log-odds.
    PRETRAINED: ("p_model_chosen", "p_chosen", "decisiveness", "accuracy"),
}
PROBABILITY_METHODS = (BT, PRETRAINED)
"""Methods whose reward gap r_A - r_B is read as the log-odds of P(A > B)."""
HEADLINE_METRIC = {BT: "p_model_chosen", MSE: "abs_margin", PRETRAINED: "p_model_chosen"}
"""Table 2's metric (the paper's): side-free, the reward model's own chosen side."""
SIDE_FREE_METRIC = HEADLINE_METRIC
ANNOTATOR_SIDE_METRIC = {BT: "p_chosen", MSE: "margin", PRETRAINED: "p_chosen"}
ACCURACY_METRIC = {BT: "accuracy", MSE: "accuracy", PRETRAINED: "accuracy"}
HEADLINE_TITLE = "Table 2: how decisively each reward model picks its own side"
ANNOTATOR_SIDE_TITLE = "Agreement with the annotators' side (not the paper's Table 2)"
DATASET_ABBREVIATIONS = {"multipref": "MP", "helpsteer2": "HS2"}
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
TEST_COLUMNS = ("pair_id", "agreement", "substantial", "chosen")
SCORE_COLUMNS = ("reward_a", "reward_b")


@dataclass(frozen=True)
class ScoredRun:
    """One trained model's scores on a dataset's test pairs, joined with the pairs' agreement columns."""

    dataset: str
    method: str
    labels: str
    seed: int
    pairs: pl.DataFrame  # TEST_COLUMNS + reward_a, reward_b, in test-set order


def load_scored_runs(
    runs: Sequence[dict], test_paths: dict[str, str]
) -> tuple[list[ScoredRun], dict[str, pl.DataFrame]]:
    """Each run's scores joined to its test set (``runs``: dicts of dataset, method, labels, seed, scores)."""
    tests = {dataset: pl.read_parquet(path) for dataset, path in test_paths.items()}
    scored = [
        ScoredRun(
            dataset=run["dataset"],
            method=run["method"],
            labels=run["labels"],
            seed=int(run["seed"]),
            pairs=scorefiles.join_scores(
                tests[run["dataset"]],
                pl.read_parquet(run["scores"]),
                list(SCORE_COLUMNS),
                list(TEST_COLUMNS),
                run["scores"],
            ),
        )
        for run in runs
    ]
    return scored, tests


def per_pair_metrics(method: str, reward_a: np.ndarray, reward_b: np.ndarray, chosen: np.ndarray) -> dict:
    """Each metric of ``method`` per pair (its mean over pairs is the table's value)."""
    reward_a = np.asarray(reward_a, dtype=float)
    reward_b = np.asarray(reward_b, dtype=float)
    chosen_is_a = np.asarray(chosen) == "a"
    margin = np.where(chosen_is_a, reward_a - reward_b, reward_b - reward_a)
    accuracy = (margin > 0).astype(float)
    if method in PROBABILITY_METHODS:
        return {
            "p_model_chosen": expit(np.abs(reward_a - reward_b)),
            "p_chosen": expit(margin),
            "decisiveness": np.abs(expit(reward_a - reward_b) - 0.5),
            "accuracy": accuracy,
        }
    if method == MSE:
        return {"margin": margin, "abs_margin": np.abs(reward_a - reward_b), "accuracy": accuracy}
    raise ValueError(f"Table 2 covers methods {sorted(METRICS)}, not {method!r}")


def subset_masks(agreement: Sequence[str], substantial: Sequence[bool]) -> dict[str, np.ndarray]:
    """Boolean mask of each Table 2 subset over the pairs."""
    agreement = np.asarray(agreement)
    substantial = np.asarray(substantial, dtype=bool)
    return {
        "high_agreement_pref": agreement == "high_agreement_pref",
        "high_agreement_tie": agreement == "high_agreement_tie",
        "diverging": agreement == "diverging",
        "diverging_substantial": (agreement == "diverging") & substantial,
        "all": np.ones(agreement.shape, dtype=bool),
    }


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


def table2_long(runs: Iterable[ScoredRun], *, n_samples: int, ci: float, seed: int) -> pl.DataFrame:
    """The long Table 2: one row per (dataset, method, labels, seed, subset, metric).

    Each model seed gets its own rows with a bootstrap CI over pairs. A condition with several seeds also gets
    ``seed == "all"`` rows: the mean over seeds with a CI that resamples seeds and pairs
    (see :func:`divpref.common.bootstrap.bootstrap_mean_over_seeds`). A condition's runs must share the test pairs.
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
        metrics_by_seed = [
            per_pair_metrics(run_key[1], run.pairs["reward_a"], run.pairs["reward_b"], run.pairs["chosen"])
            for run in group
        ]
        for subset in SUBSETS:
            mask = masks[subset]
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


def condition_label(dataset: str, method: str, labels: str) -> str:
    """Column header in the paper's style, e.g. ``MP BT-Agg``; a pretrained model by its condition name."""
    if method == PRETRAINED:
        return f"{DATASET_ABBREVIATIONS.get(dataset, dataset)} {labels}"
    return f"{DATASET_ABBREVIATIONS.get(dataset, dataset)} {method.upper()}-{labels.capitalize()}"


def summary_rows(table: pl.DataFrame, metric_by_method: dict[str, str]) -> pl.DataFrame:
    """One value per (dataset, method, labels, subset): the pooled seed when present, else the only seed."""
    wanted = pl.DataFrame(
        {"method": list(metric_by_method), "metric": list(metric_by_method.values())},
        schema={"method": pl.String, "metric": pl.String},
    )
    chosen = table.join(wanted, on=["method", "metric"], how="semi", maintain_order="left")
    keys = ["dataset", "method", "labels", "subset"]
    seeds_per_condition = chosen.group_by(keys).agg(pl.col("seed").n_unique().alias("n_seeds"))
    chosen = chosen.join(seeds_per_condition, on=keys, maintain_order="left")
    return chosen.filter((pl.col("seed") == POOLED_SEED) | (pl.col("n_seeds") == 1)).drop("n_seeds")


def _fmt(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"


def _cell(value: float, low: float, high: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.3f} [{_fmt(low)}, {_fmt(high)}]"


def _layout_columns(table: pl.DataFrame, metric_by_method: dict[str, str]) -> list[tuple]:
    """(dataset, method, labels) per column after ``Subset``; (dataset, None, None) is the ``# Ex.`` column."""
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


def paper_layout(table: pl.DataFrame, metric_by_method: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the paper's layout: a row per subset; per dataset ``n``, then the conditions."""
    summary = summary_rows(table, metric_by_method)
    columns = _layout_columns(table, metric_by_method)
    header = ["Subset"] + [
        f"{DATASET_ABBREVIATIONS.get(d, d)} # Ex." if m is None else condition_label(d, m, lab)
        for d, m, lab in columns
    ]
    lookup = {
        (row["dataset"], row["method"], row["labels"], row["subset"]): row
        for row in summary.iter_rows(named=True)
    }
    body = []
    for subset in SUBSETS:
        cells = [SUBSET_LABELS[subset]]
        for dataset, method, labels in columns:
            if method is None:
                counts = [row["n"] for key, row in lookup.items() if key[0] == dataset and key[3] == subset]
                cells.append(str(counts[0]) if counts else "–")
            else:
                row = lookup.get((dataset, method, labels, subset))
                cells.append("–" if row is None else _cell(row["value"], row["ci_low"], row["ci_high"]))
        body.append(cells)
    return header, body


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
    """The headline layout of ``table`` with the paper's numbers in its cells (``–`` where it has none)."""
    header, body = paper_layout(table, HEADLINE_METRIC)
    columns = _layout_columns(table, HEADLINE_METRIC)
    reference = []
    for subset, cells in zip(SUBSETS, body, strict=True):
        row = [cells[0]]
        for dataset, method, labels in columns:
            if method is None:
                row.append("–")
                continue
            value = paper_numbers.table2_value(dataset, method, labels, subset)
            row.append("–" if value is None else f"{value:.3f}")
        reference.append(row)
    return header, reference


def table_sections(table: pl.DataFrame, *, ci: float) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(title, note, header, body) of every rendered table: Table 2, the paper's, then the annotator side."""
    sections = []
    header, body = paper_layout(table, HEADLINE_METRIC)
    note = f"{_metric_note(HEADLINE_METRIC)}; [{ci:.0%} bootstrap CI]."
    sections.append((HEADLINE_TITLE, note, header, body))
    header, body = paper_reference_layout(table)
    sections.append(
        (
            "The paper's Table 2 beside it (Llama-3-8B-Instruct, real MultiPref/HelpSteer2 test sets)",
            f"Same metric: {_metric_note(HEADLINE_METRIC)}.",
            header,
            body,
        )
    )
    for metric_by_method in (ANNOTATOR_SIDE_METRIC, ACCURACY_METRIC):
        header, body = paper_layout(table, metric_by_method)
        note = f"{_metric_note(metric_by_method)}; [{ci:.0%} bootstrap CI]."
        sections.append((ANNOTATOR_SIDE_TITLE, note, header, body))
    return sections


def render_markdown(table: pl.DataFrame, *, ci: float) -> str:
    """Table 2 (the model's own side), the paper's numbers, and agreement with the annotators' side."""
    parts = []
    for title, note, header, body in table_sections(table, ci=ci):
        parts.append(f"### {title}\n\n{note}\n")
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "---|" * len(header))
        parts.extend("| " + " | ".join(cells) + " |" for cells in body)
        parts.append("")
    return "\n".join(parts)


LATEX_REPLACEMENTS = {
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "&": r"\&",
    "–": "--",
    ">": "$>$",
    "<": "$<$",
    "|": "$|$",
}


def _latex_escape(text: str) -> str:
    return "".join(LATEX_REPLACEMENTS.get(char, char) for char in text)


def render_latex(table: pl.DataFrame, *, ci: float) -> str:
    """Table 2 (the model's own side) as a booktabs LaTeX table; the paper's value under each cell."""
    header, body = paper_layout(table, HEADLINE_METRIC)
    _, reference = paper_reference_layout(table)
    body = [
        row for cells, paper in zip(body, reference, strict=True) for row in (cells, ["(paper)", *paper[1:]])
    ]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(_latex_escape(cell) for cell in header) + r" \\",
        r"\midrule",
        *(" & ".join(_latex_escape(cell) for cell in cells) + r" \\" for cells in body),
        r"\bottomrule",
        r"\end{tabular}",
        r"\caption{"
        + _latex_escape(
            f"{_metric_note(HEADLINE_METRIC)} ({ci:.0%} bootstrap CI in brackets); "
            "(paper): the paper's value (Llama-3-8B-Instruct, real data)."
        )
        + "}",
        r"\label{tab:table2}",
        r"\end{table}",
        "",
    ]
    return "\n".join(lines)


HTML_STYLE = (
    "body{font-family:sans-serif;font-size:14px}table{border-collapse:collapse;margin-bottom:1em}"
    "th,td{border:1px solid #bbb;padding:4px 8px;text-align:right;white-space:nowrap}"
    "td:first-child,th:first-child{text-align:left}"
)


def html_page(body: str) -> str:
    """A self-contained HTML page (inline style, no external resources) around ``body``."""
    head = f"<head><meta charset='utf-8'><style>{HTML_STYLE}</style></head>"
    return f"<!DOCTYPE html><html>{head}<body>{body}</body></html>\n"


def html_table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
    """An HTML table of already formatted cells (escaped here)."""
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    rows = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>" for cells in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def render_html(table: pl.DataFrame, *, ci: float) -> str:
    """The tables of :func:`render_markdown` as a self-contained HTML page (for the Snakemake report)."""
    sections = [
        f"<h3>{escape(title)}</h3><p>{escape(note)}</p>{html_table(header, body)}"
        for title, note, header, body in table_sections(table, ci=ci)
    ]
    return html_page("".join(sections))


def gather_divergence(summaries: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """All datasets' divergence summaries in one frame with a leading ``dataset`` column."""
    expected = ["category", "count", "percent"]
    for dataset, summary in summaries.items():
        if summary.columns != expected:
            raise ValueError(f"divergence summary of {dataset!r}: columns {summary.columns}, want {expected}")
    return pl.concat(
        [
            summary.with_columns(pl.col("percent").cast(pl.Float64)).select(
                pl.lit(dataset).alias("dataset"), *expected
            )
            for dataset, summary in summaries.items()
        ]
    )


def frame_to_html(frame: pl.DataFrame, *, title: str, note: str = "") -> str:
    """A self-contained HTML page showing ``frame`` as a table (floats with 1 decimal, nulls as a dash)."""

    def cell(value: object) -> str:
        if value is None:
            return "–"
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    body = [[cell(value) for value in row] for row in frame.iter_rows()]
    return html_page(f"<h3>{escape(title)}</h3><p>{escape(note)}</p>{html_table(frame.columns, body)}")
