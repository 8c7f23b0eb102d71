"""Do reward models know when annotators disagree? Preference accuracy and divergence AUROC per condition.

* Preference accuracy, on high-agreement preference pairs: the model's side is the sign of
  reward_a - reward_b (BT/MSE: the rewards; Mean-Var: mu_A - mu_B, the side of the predicted margin's mean;
  Classification: P(A better) - P(B better), the score file's reward columns), compared with the annotators'
  ``chosen`` side; an exact tie counts one half.
* Divergence AUROC (sklearn ``roc_auc_score``): how well a per-pair score ranks ``diverging`` pairs above
  high-agreement pairs (``high_agreement_pref`` and ``high_agreement_tie``); ``other`` pairs are left out.
  Higher scores mean "more likely diverging" for every method:

  - BT, MSE, off-the-shelf reward models (``pretrained``) and any registered single-value method:
    -|r_A - r_B| (an undecided model);
  - Mean-Var: lambda (sigma_A + sigma_B) - |mu_A - mu_B|, the negation of the full paper's agreement score
    |mu_A - mu_B| - lambda (sigma_A + sigma_B), with lambda >= 0 tuned for dev AUROC;
  - Pairwise classification (``classification``, this project's pair-level model): one of two candidates on
    the 5-way ``label_probs``, chosen like Mean-Var's lambda by dev AUROC (ties: ``opposite_mass``):
    ``opposite_mass``, the mass on the side opposite the predicted one, min(P(A better), P(B better)), or
    ``entropy``, -sum_k p_k ln p_k. Entropy also rises on pairs the model thinks are ties, which
    high-agreement ties are; which one ranks diverging pairs better is an empirical question, so the dev
    pairs decide.
  - Classification (KL) (``likert_classification``, the full paper's per-response Likert classifier): one of
    :data:`divpref.models.likert_targets.DIVERGENCE_SCORES`, chosen the same way (ties: ``extreme_mass``, the paper's).

Confidence intervals: percentile bootstrap over test pairs, stratified by agreement category (so both AUROC
classes keep their sizes), seeded per row key. With several seeds a pooled row (seed ``all``) averages the
per-seed metrics and its bootstrap also resamples seeds, as in :mod:`divpref.common.bootstrap`.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from divpref.common import paper_numbers, render, scorefiles
from divpref.common.bootstrap import bootstrap_statistic, stable_seed
from divpref.common.constants import (
    BT,
    CLASSIFICATION,
    DEV_SCORED_METHODS,
    LIKERT_CLASSIFICATION,
    MEAN_VAR,
    MSE,
    POOLED_SEED,
    PRETRAINED,
)
from divpref.common.paper_numbers import PAPER_DATASETS
from divpref.common.render import HYPHEN, Section
from divpref.models import likert_targets as likert

log = logging.getLogger(__name__)

DIVERGING = "diverging"
HIGH_AGREEMENT = ("high_agreement_pref", "high_agreement_tie")
METRICS = ("accuracy", "auroc")
METHOD_ORDER = (PRETRAINED, BT, MSE, MEAN_VAR, LIKERT_CLASSIFICATION, CLASSIFICATION)
METHOD_NAMES = {
    PRETRAINED: "Pretrained",
    BT: "BT",
    MSE: "MSE",
    MEAN_VAR: "Mean-Var",
    LIKERT_CLASSIFICATION: "Classification",
    CLASSIFICATION: "Pairwise classification",
}
SINGLE_VALUE = "single_value"
"""How a registered single-value method (``RewardMethod.single_value``) is scored: as BT/MSE are."""
DISTRIBUTIONAL_METHODS = (MEAN_VAR, LIKERT_CLASSIFICATION, CLASSIFICATION)
MARKDOWN_TITLE = "Divergence detection: preference accuracy / divergence AUROC"
CLASSIFICATION_SCORES = {
    "opposite_mass": "min(P(A better), P(B better))",
    "entropy": "-sum_k p_k ln p_k of the 5 label probabilities",
}
"""Classification's candidate divergence scores (name: formula), in tie-break order."""
SCORE_DESCRIPTIONS = {
    SINGLE_VALUE: "-|r_A - r_B|",
    PRETRAINED: "-|r_A - r_B|",
    BT: "-|r_A - r_B|",
    MSE: "-|r_A - r_B|",
    MEAN_VAR: "lambda (sigma_A + sigma_B) - |mu_A - mu_B|",
    CLASSIFICATION: " or ".join(f"{name} {formula}" for name, formula in CLASSIFICATION_SCORES.items())
    + ", whichever has the better dev AUROC",
    LIKERT_CLASSIFICATION: " or ".join(
        f"{name} {formula}" for name, formula in likert.DIVERGENCE_SCORES.items()
    )
    + ", whichever has the better dev AUROC",
}
CANDIDATE_SCORES = {
    CLASSIFICATION: CLASSIFICATION_SCORES,
    LIKERT_CLASSIFICATION: likert.DIVERGENCE_SCORES,
}
"""Methods whose divergence score is one of several candidates chosen on dev AUROC (ties: the first)."""
TEST_COLUMNS = ("pair_id", "agreement", "chosen")
SCORE_INPUTS = {
    SINGLE_VALUE: ("reward_a", "reward_b"),
    PRETRAINED: ("reward_a", "reward_b"),
    BT: ("reward_a", "reward_b"),
    MSE: ("reward_a", "reward_b"),
    MEAN_VAR: ("reward_a", "reward_b", "sigma_a", "sigma_b"),
    CLASSIFICATION: ("reward_a", "reward_b", "label_probs"),
    LIKERT_CLASSIFICATION: ("reward_a", "reward_b", "likert_probs_a", "likert_probs_b"),
}
"""Score-file columns each method's accuracy and divergence score read (flagging carries the same ones)."""
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
# Per-pair scores


def margin_divergence_score(reward_a: np.ndarray, reward_b: np.ndarray) -> np.ndarray:
    """BT/MSE divergence score -|r_A - r_B|: the closer the two rewards, the more likely diverging."""
    return -np.abs(np.asarray(reward_a, dtype=float) - np.asarray(reward_b, dtype=float))


def mean_var_divergence_score(
    mu_a: np.ndarray, mu_b: np.ndarray, sigma_a: np.ndarray, sigma_b: np.ndarray, lam: float
) -> np.ndarray:
    """lambda (sigma_A + sigma_B) - |mu_A - mu_B| (the paper's agreement score, negated)."""
    spread = np.asarray(sigma_a, dtype=float) + np.asarray(sigma_b, dtype=float)
    return lam * spread - np.abs(np.asarray(mu_a, dtype=float) - np.asarray(mu_b, dtype=float))


def opposite_side_mass(label_probs: np.ndarray) -> np.ndarray:
    """min(P(A better), P(B better)) of ``[n, 5]`` probabilities ordered B clearly .. A clearly."""
    label_probs = np.asarray(label_probs, dtype=float)
    return np.minimum(label_probs[:, 3] + label_probs[:, 4], label_probs[:, 0] + label_probs[:, 1])


def label_entropy(label_probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats, -sum_k p_k ln p_k (0 ln 0 = 0), of each row of ``[n, 5]`` probabilities."""
    label_probs = np.asarray(label_probs, dtype=float)
    logs = np.log(np.where(label_probs > 0, label_probs, 1.0))
    return -np.sum(label_probs * logs, axis=1)


def classification_divergence_score(label_probs: np.ndarray, score_name: str) -> np.ndarray:
    """The :data:`CLASSIFICATION_SCORES` candidate ``score_name`` of ``[n, 5]`` label probabilities."""
    if score_name == "opposite_mass":
        return opposite_side_mass(label_probs)
    if score_name == "entropy":
        return label_entropy(label_probs)
    raise ValueError(
        f"no classification divergence score {score_name!r}; known: {list(CLASSIFICATION_SCORES)}"
    )


def divergence_scores(
    method: str, scores: pl.DataFrame, lam: float | None = None, score_name: str | None = None
) -> np.ndarray:
    """The per-pair divergence score of ``method`` from score-file columns.

    ``lam`` is for mean_var only; ``score_name``, a :data:`CLASSIFICATION_SCORES` key, for classification.
    """
    if SCORE_INPUTS.get(method) == SCORE_INPUTS[SINGLE_VALUE]:
        return margin_divergence_score(scores["reward_a"].to_numpy(), scores["reward_b"].to_numpy())
    if method == MEAN_VAR:
        if lam is None:
            raise ValueError("the mean_var divergence score needs lambda")
        return mean_var_divergence_score(
            scores["reward_a"].to_numpy(),
            scores["reward_b"].to_numpy(),
            scores["sigma_a"].to_numpy(),
            scores["sigma_b"].to_numpy(),
            lam,
        )
    if method == CLASSIFICATION:
        if score_name is None:
            raise ValueError(
                f"the classification divergence score needs a name, one of {list(CLASSIFICATION_SCORES)}"
            )
        label_probs = np.asarray(scores["label_probs"].to_list(), dtype=float).reshape(-1, 5)
        return classification_divergence_score(label_probs, score_name)
    if method == LIKERT_CLASSIFICATION:
        if score_name is None:
            raise ValueError(
                f"the likert divergence score needs a name, one of {list(likert.DIVERGENCE_SCORES)}"
            )
        q_a, q_b = (
            np.asarray(scores[column].to_list(), dtype=float).reshape(-1, 5)
            for column in ("likert_probs_a", "likert_probs_b")
        )
        return likert.likert_divergence_score(q_a, q_b, score_name)
    raise ValueError(f"no divergence score for method {method!r}; known: {list(METHOD_ORDER)}")


def preference_correct(reward_a: np.ndarray, reward_b: np.ndarray, chosen: Sequence[str]) -> np.ndarray:
    """Per pair: 1 if the model's side (sign of reward_a - reward_b) is ``chosen``, 0.5 on an exact tie, else 0."""
    margin = np.asarray(reward_a, dtype=float) - np.asarray(reward_b, dtype=float)
    towards_chosen = np.where(np.asarray(chosen) == "a", margin, -margin)
    return (towards_chosen > 0) + 0.5 * (towards_chosen == 0)


# ---------------------------------------------------------------------------------------------------------
# AUROC and the choices made on dev: Mean-Var's lambda, Classification's score


def detection_mask(agreement: Sequence[str]) -> np.ndarray:
    """Pairs that take part in divergence detection: diverging or high-agreement."""
    agreement = np.asarray(agreement)
    return (agreement == DIVERGING) | np.isin(agreement, HIGH_AGREEMENT)


def divergence_auroc(agreement: Sequence[str], score: np.ndarray) -> float:
    """sklearn AUROC of ``score`` for diverging (positive) vs high-agreement (negative) pairs.

    Raises ValueError if either class is empty.
    """
    agreement = np.asarray(agreement)
    mask = detection_mask(agreement)
    is_diverging = agreement[mask] == DIVERGING
    if is_diverging.all() or not is_diverging.any():
        raise ValueError(
            f"divergence AUROC needs diverging and high-agreement pairs; got {int(is_diverging.sum())} diverging "
            f"and {int((~is_diverging).sum())} high-agreement"
        )
    return float(roc_auc_score(is_diverging, np.asarray(score, dtype=float)[mask]))


def tune_lambda(
    dev_agreement: Sequence[str], dev_scores: pl.DataFrame, grid: Sequence[float]
) -> tuple[float, float]:
    """(lambda, dev AUROC): the ``grid`` value whose Mean-Var divergence score has the best dev AUROC.

    Ties go to the smallest lambda.
    """
    if not grid or min(grid) < 0:
        raise ValueError(f"lambda grid must be non-empty and non-negative, got {list(grid)}")
    best_lambda, best_auroc = float("nan"), -np.inf
    for lam in sorted(grid):
        auroc = divergence_auroc(dev_agreement, divergence_scores(MEAN_VAR, dev_scores, lam))
        if auroc > best_auroc:
            best_lambda, best_auroc = float(lam), auroc
    return best_lambda, best_auroc


def choose_classification_score(
    dev_agreement: Sequence[str], dev_scores: pl.DataFrame, method: str = CLASSIFICATION
) -> tuple[str, dict[str, float]]:
    """(name, dev AUROC per candidate): the :data:`CANDIDATE_SCORES` candidate with the best dev AUROC.

    Ties go to the earlier candidate (``opposite_mass`` for classification, ``extreme_mass`` for
    likert_classification).
    """
    dev_aurocs = {
        name: divergence_auroc(dev_agreement, divergence_scores(method, dev_scores, None, name))
        for name in CANDIDATE_SCORES[method]
    }
    best_name = next(name for name, auroc in dev_aurocs.items() if auroc == max(dev_aurocs.values()))
    return best_name, dev_aurocs


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


def score_columns(method: str, scores_source: str) -> list[str]:
    """The score-file columns :data:`SCORE_INPUTS` lists for ``method``; ValueError naming ``scores_source``."""
    if method not in SCORE_INPUTS:
        raise ValueError(
            f"{scores_source}: no detection scores for method {method!r}; known: {list(SCORE_INPUTS)}"
        )
    return list(SCORE_INPUTS[method])


def prepare_run(
    spec: Mapping[str, Any],
    test: pl.DataFrame,
    scores: pl.DataFrame,
    *,
    pairs: pl.DataFrame | None = None,
    dev_scores: pl.DataFrame | None = None,
    lambda_grid: Sequence[float] = (),
) -> DetectionRun:
    """A :class:`DetectionRun` from one run record (see ``detection_runs`` in rules/common.smk) and its frames.

    Mean-Var and Classification runs also need the dataset's ``pairs`` (for the dev pairs' agreement) and
    their ``dev_scores``: Mean-Var's lambda is tuned there, Classification's score chosen there. Errors name
    the offending score file.
    """
    method = spec["method"]
    if spec.get("single_value") and method not in SCORE_INPUTS:
        method = SINGLE_VALUE  # scored like BT; the table keeps the registered name (below)
    source = spec["scores"]
    joined = scorefiles.join_scores(test, scores, score_columns(method, source), list(TEST_COLUMNS), source)
    lam = score_name = None
    if method in DEV_SCORED_METHODS:
        choice = "tune lambda" if method == MEAN_VAR else "choose the divergence score"
        if pairs is None or dev_scores is None:
            raise ValueError(
                f"{spec['scores']}: {METHOD_NAMES[method]} needs dev scores and pairs to {choice}"
            )
        scored_pairs = pairs.join(dev_scores.select("pair_id"), on="pair_id", how="semi")
        dev_source = spec["dev_scores"]
        dev = scorefiles.join_scores(
            scored_pairs, dev_scores, score_columns(method, dev_source), list(TEST_COLUMNS), dev_source
        )
        run_name = f"{spec['dataset']}/{spec['condition']} seed {spec['seed']}"
        try:
            if method == MEAN_VAR:
                lam, dev_auroc = tune_lambda(dev["agreement"].to_numpy(), dev, lambda_grid)
                log.info("%s: lambda %.3g (dev AUROC %.3f)", run_name, lam, dev_auroc)
            else:
                score_name, dev_aurocs = choose_classification_score(dev["agreement"].to_numpy(), dev, method)
                log.info("%s: score %s (dev AUROC %s)", run_name, score_name, _format_aurocs(dev_aurocs))
        except ValueError as error:
            raise ValueError(f"{spec['dev_scores']}: cannot {choice}: {error}") from error
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
                    f"{dataset}/{condition}: seed {run.seed} was scored on other test pairs than seed {group[0].seed}"
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


def score_labels(method: str, score_names: Sequence[str | None]) -> tuple[str | None, str]:
    """(``score_name``, ``score``) table cells for runs of ``method`` with these per-seed score names.

    Classification methods: the distinct names in :data:`CANDIDATE_SCORES` order, comma-joined, and their
    formulas; other methods: no name and the method's fixed formula.
    """
    if method not in CANDIDATE_SCORES:
        return None, SCORE_DESCRIPTIONS.get(method, SCORE_DESCRIPTIONS[SINGLE_VALUE])
    candidates = CANDIDATE_SCORES[method]
    names = [name for name in candidates if name in score_names]
    return ",".join(names), "; ".join(candidates[name] for name in names)


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
    """Header and rows: one row per condition (method order, then labels), one ``acc / AUROC`` column per dataset.

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
        values = paper_numbers.detection_values(condition["label"], dataset)
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
    """The paper-layout table (``acc / AUROC``), the same with CIs, and how each method's score is computed."""
    sections = [
        Section(MARKDOWN_TITLE, None, *paper_layout(table, with_ci=False)),
        Section(None, f"With {ci:.0%} bootstrap confidence intervals:", *paper_layout(table, with_ci=True)),
    ]
    footnote = (
        "paper: the full paper's Llama-3-8B-Instruct models on the real data. "
        "Accuracy: high-agreement preference pairs, the model's side vs. the annotators'. "
        "AUROC: diverging vs. high-agreement (prefs + ties) pairs. Divergence scores: "
        + "; ".join(
            f"{METHOD_NAMES[method]}: {text}"
            for method, text in SCORE_DESCRIPTIONS.items()
            if method not in (MSE, PRETRAINED, SINGLE_VALUE)
        )
        + " (MSE, pretrained and other single-value models as BT). Mean-Var's lambda is tuned on the dev set. "
        "Pairwise classification is this project's pair-level extension, not a model of the paper."
        + _classification_choices(table)
    )
    return "\n".join([*render.markdown_lines(sections), footnote, ""])


def _classification_choices(table: pl.DataFrame) -> str:
    """`` Scores chosen on dev: Pairwise classification (KL) on MultiPref: entropy; ...`` or ``""``."""
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
    return " Scores chosen on dev: " + "; ".join(choices) + "."
