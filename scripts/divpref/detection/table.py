"""The divergence-detection table: per condition and seed, preference accuracy and divergence AUROC with CIs.

What each method's divergence score is, and how the CIs are drawn, is described in
:mod:`divpref.detection.scores`; the dev-pair choices are :mod:`divpref.detection.tuning`'s.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from divpref.common import paper_numbers, render
from divpref.common.bootstrap import bootstrap_statistic, stable_seed
from divpref.common.constants import DEV_SCORED_METHODS, MEAN_VAR, MSE, POOLED_SEED, PRETRAINED
from divpref.common.paper_numbers import PAPER_DATASETS
from divpref.common.render import HYPHEN, Section
from divpref.detection.scores import (
    CANDIDATE_SCORES,
    DISTRIBUTIONAL_METHODS,
    DIVERGING,
    HIGH_AGREEMENT,
    METHOD_NAMES,
    METHOD_ORDER,
    SCORE_DESCRIPTIONS,
    SCORE_INPUTS,
    SINGLE_VALUE,
    detection_mask,
    divergence_scores,
    join_dev_scores,
    join_method_scores,
    preference_correct,
    score_labels,
)
from divpref.detection.tuning import DEV_CHOICE, choose_on_dev

log = logging.getLogger(__name__)

METRICS = ("accuracy", "auroc")
MARKDOWN_TITLE = "Divergence detection: preference accuracy / divergence AUROC"
TABLE_SCHEMA = {
    "dataset": pl.String,
    "condition": pl.String,
    "method": pl.String,
    "labels": pl.String,
    "seed": pl.String,
    "metric": pl.String,
    "n": pl.Int64,
    "n_diverging": pl.Int64,
    "n_high_agreement": pl.Int64,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "lambda": pl.Float64,
    "score": pl.String,
    "score_name": pl.String,
    "label": pl.String,
}


# ---------------------------------------------------------------------------------------------------------
# Runs: the test scores joined, the dev choices made


@dataclass(frozen=True)
class DetectionRun:
    """One trained model's test scores joined with the pairs, and what its dev scores chose.

    That is Mean-Var's ``lam`` or Classification's ``score_name`` (a :data:`CLASSIFICATION_SCORES` key).
    """

    dataset: str
    condition: str
    method: str
    labels: str
    seed: int
    pairs: pl.DataFrame  # TEST_COLUMNS + the method's score columns, in test-set order
    lam: float | None = None
    score_name: str | None = None
    label: str = ""
    """The table's row name (:func:`row_label`)."""
    scored_as: str = ""  # the SCORE_INPUTS key its divergence score uses (default: method)

    @property
    def score_method(self) -> str:
        return self.scored_as or self.method


def prepare_run(
    spec: Mapping[str, Any],
    test: pl.DataFrame,
    scores: pl.DataFrame,
    *,
    pairs: pl.DataFrame | None = None,
    dev_scores: pl.DataFrame | None = None,
    lambda_grid: Sequence[float] = (),
    classification_score: str = DEV_CHOICE,
) -> DetectionRun:
    """A :class:`DetectionRun` from a run record (``detection_runs``, rules/helpers/detection.smk) and frames.

    Mean-Var and Classification runs also need the dataset's ``pairs`` (for the dev pairs' agreement) and
    their ``dev_scores``: Mean-Var's lambda is tuned there, Classification's score chosen there. Errors name
    the offending score file. ``classification_score`` is config ``detection.classification_score``
    (:func:`divpref.detection.tuning.choose_on_dev`).
    """
    method = spec["method"]
    if spec.get("single_value") and method not in SCORE_INPUTS:
        method = SINGLE_VALUE  # scored like BT; the table keeps the registered name (below)
    source = spec["scores"]
    joined = join_method_scores(test, scores, method, source)
    lam = score_name = None
    if method in DEV_SCORED_METHODS:
        choice = "tune lambda" if method == MEAN_VAR else "choose the divergence score"
        if pairs is None or dev_scores is None:
            raise ValueError(
                f"{spec['scores']}: {METHOD_NAMES[method]} needs dev scores and pairs to {choice}"
            )
        dev = join_dev_scores(pairs, dev_scores, method, spec["dev_scores"])
        run_name = f"{spec['dataset']}/{spec['condition']} seed {spec['seed']}"
        try:
            lam, score_name, dev_aurocs = choose_on_dev(
                method, dev["agreement"].to_numpy(), dev, lambda_grid, classification_score
            )
        except ValueError as error:
            raise ValueError(f"{spec['dev_scores']}: cannot {choice}: {error}") from error
        if lam is not None:
            log.info("%s: lambda %.3g (dev AUROC %.3f)", run_name, lam, dev_aurocs["lambda"])
        else:
            log.info("%s: score %s (dev AUROC %s)", run_name, score_name, _format_aurocs(dev_aurocs))
    label = row_label(spec["method"], spec["labels"], spec.get("rho"), spec.get("objective"))
    return DetectionRun(
        spec["dataset"],
        spec["condition"],
        spec["method"],
        spec["labels"],
        int(spec["seed"]),
        joined,
        lam,
        score_name,
        label,
        scored_as=method,
    )


def _format_aurocs(aurocs: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {auroc:.3f}" for name, auroc in aurocs.items())


# ---------------------------------------------------------------------------------------------------------
# The table


def pair_scores(run: DetectionRun) -> pl.DataFrame:
    """Per test pair: its agreement, the model's divergence score, and whether its preference is correct."""
    return pl.DataFrame(
        {
            "dataset": run.dataset,
            "condition": run.condition,
            "method": run.method,
            "labels": run.labels,
            "seed": run.seed,
            "pair_id": run.pairs["pair_id"],
            "agreement": run.pairs["agreement"],
            "divergence_score": divergence_scores(run.score_method, run.pairs, run.lam, run.score_name),
            "preference_correct": preference_correct(
                run.pairs["reward_a"].to_numpy(),
                run.pairs["reward_b"].to_numpy(),
                run.pairs["chosen"].to_numpy(),
            ),
            "lambda": run.lam,
            "score_name": run.score_name,
            "label": run.label or row_label(run.method, run.labels),
        },
        schema_overrides={"lambda": pl.Float64, "score_name": pl.String, "seed": pl.Int64},
    )


def _metric_function(
    metric: str, per_seed: list[pl.DataFrame]
) -> tuple[Callable[[int, np.ndarray], float], np.ndarray]:
    """``metric(seed_index, indices)`` over the pairs that metric uses, and those pairs' strata."""
    agreement = per_seed[0]["agreement"].to_numpy()
    if metric == "accuracy":
        keep = agreement == "high_agreement_pref"
        correct = [frame["preference_correct"].to_numpy()[keep] for frame in per_seed]
        return (lambda s, idx: float(correct[s][idx].mean()) if idx.size else float("nan")), agreement[keep]
    keep = detection_mask(agreement)
    is_diverging = agreement[keep] == DIVERGING
    scores = [frame["divergence_score"].to_numpy()[keep] for frame in per_seed]
    return (lambda s, idx: float(roc_auc_score(is_diverging[idx], scores[s][idx]))), agreement[keep]


def detection_table(runs: Iterable[DetectionRun], *, n_samples: int, ci: float, seed: int) -> pl.DataFrame:
    """Long table: per (dataset, condition, seed or pooled ``all``) the accuracy and AUROC with bootstrap CIs.

    All seeds of a condition must have been scored on the same test pairs. Each seed uses its own dev-tuned
    lambda (Mean-Var) or dev-chosen score (Classification); the pooled row's ``lambda`` is their mean and its
    ``score_name`` lists the seeds' distinct choices, for information only. ``score`` is the formula used.
    """
    grouped: dict[tuple[str, str], list[DetectionRun]] = {}
    for run in runs:
        grouped.setdefault((run.dataset, run.condition), []).append(run)
    rows = []
    for (dataset, condition), group in grouped.items():
        group = sorted(group, key=lambda run: run.seed)
        reference = group[0].pairs["pair_id"].to_list()
        for run in group[1:]:
            if run.pairs["pair_id"].to_list() != reference:
                raise ValueError(
                    f"{dataset}/{condition}: seed {run.seed} was scored on other test pairs "
                    f"than seed {group[0].seed}"
                )
        frames = [pair_scores(run) for run in group]
        agreement = frames[0]["agreement"].to_numpy()
        counts = {
            "n_diverging": int((agreement == DIVERGING).sum()),
            "n_high_agreement": int(np.isin(agreement, HIGH_AGREEMENT).sum()),
        }
        seed_choices = [(str(run.seed), [index]) for index, run in enumerate(group)]
        if len(group) > 1:
            seed_choices.append((POOLED_SEED, list(range(len(group)))))
        for seed_label, indices in seed_choices:
            chosen_frames = [frames[index] for index in indices]
            lambdas = [group[index].lam for index in indices]
            score_name, score = score_labels(group[0].method, [group[index].score_name for index in indices])
            for metric in METRICS:
                function, strata = _metric_function(metric, chosen_frames)
                estimate = bootstrap_statistic(
                    function,
                    len(chosen_frames),
                    strata,
                    n_samples=n_samples,
                    ci=ci,
                    seed=stable_seed(seed, dataset, condition, seed_label, metric),
                )
                rows.append(
                    {
                        "dataset": dataset,
                        "condition": condition,
                        "method": group[0].method,
                        "labels": group[0].labels,
                        "seed": seed_label,
                        "metric": metric,
                        "n": len(strata),
                        **counts,
                        "value": estimate.value,
                        "ci_low": estimate.ci_low,
                        "ci_high": estimate.ci_high,
                        "lambda": float(np.mean(lambdas)) if None not in lambdas else None,
                        "score": score,
                        "score_name": score_name,
                        "label": group[0].label or row_label(group[0].method, group[0].labels),
                    }
                )
    return pl.DataFrame(rows, schema=TABLE_SCHEMA, orient="row")


def row_label(method: str, labels: str, rho: float | str | None = None, objective: str | None = None) -> str:
    """The paper's row name: ``BT (Agg)``, ``Mean-Var (KL)``, ``Mean-Var (NLL, Independent)``,
    ``Mean-Var (KL, rho = tie frequency)``, ``Classification (KL)`` (likert_classification),
    ``Pairwise classification (KL)``; a distributional model on agg labels says so."""
    name = METHOD_NAMES.get(method, method)
    if method == PRETRAINED:
        return f"{name}: {labels}"  # a pretrained condition's labels cell is its name
    if method not in DISTRIBUTIONAL_METHODS:
        return f"{name} ({labels.capitalize()})"
    parts = ["NLL" if objective == "nll" else "KL"]
    if method == MEAN_VAR and rho not in (None, 0):
        parts.append("rho = tie frequency" if rho == "tie_frequency" else f"rho = {rho:g}")
    elif objective == "nll":
        parts.append("Independent")
    if labels != "all":
        parts.append(labels.capitalize())
    return f"{name} ({', '.join(parts)})"


def _summary(table: pl.DataFrame) -> pl.DataFrame:
    """One row per (dataset, condition, metric): the pooled seed when there is one, else the only seed.

    Pooled rows come first (the order, and so the dataset columns, this table has always had).
    """
    summary = render.pooled_or_only_seed(table, ["dataset", "condition"])
    return summary.sort(pl.col("seed") != POOLED_SEED, maintain_order=True)


def _number(value: float | None) -> str:
    """Three decimals without the leading zero, as in the paper (``.663``); ``-`` when missing."""
    return render.format_number(value, missing=HYPHEN, leading_zero=False)


def paper_layout(table: pl.DataFrame, with_ci: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows: a row per condition (method order, then labels); per dataset ``acc / AUROC``.

    The paper has numbers for its two datasets only; a dataset of one's own gets no "paper" column.
    """
    summary = _summary(table)
    datasets = summary["dataset"].unique(maintain_order=True).to_list()
    conditions = (
        summary.select("condition", "method", "labels", "label").unique(maintain_order=True).to_dicts()
    )
    rank = {method: index for index, method in enumerate(METHOD_ORDER)}
    conditions.sort(key=lambda row: (rank.get(row["method"], len(rank)), row["labels"], row["condition"]))
    cells = {(row["dataset"], row["condition"], row["metric"]): row for row in summary.iter_rows(named=True)}

    def model_cell(dataset: str, condition: str) -> str:
        parts = []
        for metric in METRICS:
            row = cells.get((dataset, condition, metric))
            if row is None:
                return HYPHEN
            if with_ci:
                parts.append(
                    render.format_interval(
                        row["value"], row["ci_low"], row["ci_high"], missing=HYPHEN, leading_zero=False
                    )
                )
            else:
                parts.append(_number(row["value"]))
        return " / ".join(parts)

    def cell(condition: dict, column: tuple[str, bool]) -> str:
        dataset, is_paper = column
        if not is_paper:
            return model_cell(dataset, condition["condition"])
        pretrained = condition["condition"] if condition["method"] == PRETRAINED else None
        values = paper_numbers.detection_values(condition["label"], dataset, pretrained)
        return HYPHEN if values is None else " / ".join(_number(value) for value in values)

    def column_label(column: tuple[str, bool]) -> str:
        dataset, is_paper = column
        name = PAPER_DATASETS.get(dataset, dataset)
        return f"paper {name}" if is_paper else name

    columns = [
        (dataset, is_paper)
        for dataset in datasets
        for is_paper in ((False, True) if dataset in PAPER_DATASETS else (False,))
    ]
    return render.layout_grid(
        "Model",
        conditions,
        columns,
        row_label=lambda condition: condition["label"],
        column_label=column_label,
        cell=cell,
    )


def render_markdown(table: pl.DataFrame, *, ci: float) -> str:
    """The paper-layout table (``acc / AUROC``), the same with CIs, and how each method's score is made."""
    sections = [
        Section(MARKDOWN_TITLE, None, *paper_layout(table, with_ci=False)),
        Section(None, f"With {ci:.0%} bootstrap confidence intervals:", *paper_layout(table, with_ci=True)),
    ]
    footnote = (
        "paper: the full paper's Llama-3-8B-Instruct models on the real data (its off-the-shelf "
        "Skywork-Reward-Gemma-2-27B and Nemotron-70B-Reward beside the conditions skywork-27b and "
        "nemotron-70b). "
        "Accuracy: high-agreement preference pairs, the model's side vs. the annotators'. "
        "AUROC: diverging vs. high-agreement (prefs + ties) pairs. Divergence scores: "
        + "; ".join(
            f"{METHOD_NAMES[method]}: {text}"
            for method, text in SCORE_DESCRIPTIONS.items()
            if method not in (MSE, PRETRAINED, SINGLE_VALUE)
        )
        + " (MSE, pretrained and other single-value models as BT). "
        "Mean-Var's lambda is tuned on the dev set. "
        "Pairwise classification is this project's pair-level extension, not a model of the paper."
        + _classification_choices(table)
    )
    return "\n".join([*render.markdown_lines(sections), footnote, ""])


def _classification_choices(table: pl.DataFrame) -> str:
    """`` Scores used: Pairwise classification (KL) on MultiPref: entropy; ...`` or ``""``.

    Chosen on dev, or fixed by ``detection.classification_score`` (Classification (KL)).
    """
    rows = (
        _summary(table)
        .filter(pl.col("method").is_in(list(CANDIDATE_SCORES)), pl.col("metric") == "auroc")
        .select("dataset", "label", "score_name")
        .unique(maintain_order=True)
    )
    if rows.is_empty():
        return ""
    choices = [
        f"{row['label']} on {PAPER_DATASETS.get(row['dataset'], row['dataset'])}: {row['score_name']}"
        for row in rows.iter_rows(named=True)
    ]
    return " Scores used (chosen on dev, or fixed by config): " + "; ".join(choices) + "."
