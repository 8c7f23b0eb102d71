"""Flagging contested pairs in any evaluation set with a trained reward model (the full paper's mitigation).

A pair file (``.jsonl``, ``.parquet`` or ``.csv``; columns ``prompt``, ``response_a``, ``response_b`` and
optionally ``pair_id``) is scored by a condition's selected model through the test-scoring path
(``scripts/score.py``). Each pair's divergence score is the one divergence detection uses for that method
(:func:`divpref.detection.scores.divergence_scores`, with Mean-Var's lambda and the classifiers' scores chosen
on the dev pairs exactly as there). A pair is flagged when its score reaches a threshold chosen on the same
dev pairs: the **Youden point** of the dev ROC (diverging dev pairs against all other dev pairs), i.e. the
threshold maximising TPR - FPR; ties go to the larger threshold (fewer flags). A score that never beats
chance flags nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score, roc_curve

from divpref.common import scorefiles
from divpref.data.records import iter_json_lines
from divpref.detection import scores as detection_scores
from divpref.detection import tuning

PAIR_COLUMNS = ("pair_id", "prompt", "response_a", "response_b")
TEXT_COLUMNS = ("prompt", "response_a", "response_b")
FORMATS = (".jsonl", ".parquet", ".csv")
UNFLAGGED = "unflagged"
"""Subset value of the rows on the flag dataset's test pairs that the flag model leaves in (stable)."""
UNFLAGGED_LABEL = "Unflagged (mitigation)"
THRESHOLD_RULE = (
    "youden: max TPR - FPR on the dev ROC (diverging vs all other dev pairs); ties: larger threshold"
)


# ---------------------------------------------------------------------------------------------------------
# Reading a pair file


def _read_rows(path: Path) -> dict[str, list]:
    """Column name -> values of a pair file, as read (no type conversion)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path).to_dict(as_series=False)
    if suffix == ".csv":
        return pl.read_csv(path, infer_schema=False).to_dict(as_series=False)
    if suffix == ".jsonl":
        records = [record for _, record in iter_json_lines(path)]
        columns = sorted({key for record in records for key in record})
        return {column: [record.get(column) for record in records] for column in columns}
    raise ValueError(f"{path}: unsupported pair-file format {suffix!r}; use one of {FORMATS}")


def read_pair_file(path: str | Path) -> pl.DataFrame:
    """``pair_id, prompt, response_a, response_b`` (all strings) of a pair file, in file order.

    ``pair_id`` comes from the file (as a string) or is the 0-based row number. Other columns are ignored.
    ValueError naming the file, the row (pair_id or row number) and the value for a missing column, a missing
    or non-string text, a missing pair_id or a repeated one.
    """
    path = Path(path)
    values = _read_rows(path)
    missing = [column for column in TEXT_COLUMNS if column not in values]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; has {sorted(values)}")
    n_rows = len(values["prompt"])
    if n_rows == 0:
        raise ValueError(f"{path}: no pairs")
    has_ids = "pair_id" in values
    pair_ids = []
    for row in range(n_rows):
        raw_id = values["pair_id"][row] if has_ids else row
        if raw_id is None or isinstance(raw_id, (float, list, dict, bool)) or str(raw_id).strip() == "":
            raise ValueError(
                f"{path}: row {row} has an invalid pair_id {raw_id!r} (want a string or integer)"
            )
        pair_ids.append(str(raw_id))
        for column in TEXT_COLUMNS:
            value = values[column][row]
            if not isinstance(value, str):
                raise ValueError(
                    f"{path}: row {row} (pair_id {pair_ids[-1]!r}) has {column} = {value!r}, not a string"
                )
    seen: dict[str, int] = {}
    for row, pair_id in enumerate(pair_ids):
        if pair_id in seen:
            raise ValueError(f"{path}: pair_id {pair_id!r} appears in rows {seen[pair_id]} and {row}")
        seen[pair_id] = row
    return pl.DataFrame(
        {"pair_id": pair_ids, **{column: values[column] for column in TEXT_COLUMNS}},
        schema={column: pl.String for column in PAIR_COLUMNS},
    )


# ---------------------------------------------------------------------------------------------------------
# The threshold (pure)


def youden_threshold(is_diverging: Sequence[bool], score: Sequence[float]) -> tuple[float, float, float]:
    """(threshold, TPR, FPR) at the Youden point of ``score``'s ROC for ``is_diverging``; flag ``score >= t``.

    Ties in TPR - FPR go to the larger threshold. ``inf`` (flag nothing) when no threshold beats chance.
    ValueError when either class is empty.
    """
    is_diverging = np.asarray(is_diverging, dtype=bool)
    if is_diverging.all() or not is_diverging.any():
        raise ValueError(
            "the flag threshold needs diverging and other dev pairs; "
            f"got {int(is_diverging.sum())} diverging of "
            f"{is_diverging.size}"
        )
    fpr, tpr, thresholds = roc_curve(is_diverging, np.asarray(score, dtype=float), drop_intermediate=False)
    youden = tpr - fpr
    # Thresholds decrease, so the first maximum is the largest threshold (equal up to rounding counts as
    # equal).
    best = int(np.flatnonzero(youden >= youden.max() - 1e-12)[0])
    return float(thresholds[best]), float(tpr[best]), float(fpr[best])


def precision_recall(is_diverging: Sequence[bool], flagged: Sequence[bool]) -> tuple[float, float]:
    """(precision, recall) of ``flagged`` for ``is_diverging``; precision is NaN when nothing is flagged."""
    is_diverging = np.asarray(is_diverging, dtype=bool)
    flagged = np.asarray(flagged, dtype=bool)
    hits = int((is_diverging & flagged).sum())
    precision = hits / int(flagged.sum()) if flagged.any() else float("nan")
    recall = hits / int(is_diverging.sum()) if is_diverging.any() else float("nan")
    return precision, recall


def flag(score: Sequence[float], threshold: float) -> np.ndarray:
    """``score >= threshold`` per pair."""
    return np.asarray(score, dtype=float) >= threshold


# ---------------------------------------------------------------------------------------------------------
# The flag model's threshold from its dev scores


def choose_threshold(
    model: Mapping[str, Any],
    dev_pairs: pl.DataFrame,
    dev_scores: pl.DataFrame,
    lambda_grid: Sequence[float],
    classification_score: str = tuning.DEV_CHOICE,
) -> dict[str, Any]:
    """The flag model's record: its divergence-score choice (as detection's), threshold and dev figures.

    ``model`` holds ``dataset, condition, seed, method, dev_scores`` (the dev-score file's path, for errors);
    ``dev_pairs`` are the dataset's pairs (pair_id, agreement, chosen), restricted here to the scored dev
    pairs.
    """
    method = model["method"]
    source = model["dev_scores"]
    dev = detection_scores.join_dev_scores(dev_pairs, dev_scores, method, source)
    agreement = dev["agreement"].to_numpy()
    try:
        lam, score_name, _ = tuning.choose_on_dev(method, agreement, dev, lambda_grid, classification_score)
        score = detection_scores.divergence_scores(method, dev, lam, score_name)
        is_diverging = agreement == detection_scores.DIVERGING
        threshold, tpr, fpr = youden_threshold(is_diverging, score)
    except ValueError as error:
        raise ValueError(f"{source}: cannot choose the flag threshold: {error}") from error
    precision, recall = precision_recall(is_diverging, flag(score, threshold))
    return {
        **{key: model[key] for key in ("dataset", "condition", "seed", "method")},
        "score": detection_scores.score_labels(method, [score_name])[1],
        "lambda": lam,
        "score_name": score_name,
        "threshold": None if math.isinf(threshold) else threshold,
        "threshold_rule": THRESHOLD_RULE,
        "dev_precision": _finite(precision),
        "dev_recall": _finite(recall),
        "dev_tpr": tpr,
        "dev_fpr": fpr,
        "dev_auroc": float(roc_auc_score(is_diverging, score)),
        "dev_n": int(dev.height),
        "dev_n_diverging": int(is_diverging.sum()),
        "dev_n_flagged": int(flag(score, threshold).sum()),
    }


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def threshold_value(record: Mapping[str, Any]) -> float:
    """The record's threshold as a float (``inf``, flag nothing, where it is null)."""
    return math.inf if record["threshold"] is None else float(record["threshold"])


def flag_scores(record: Mapping[str, Any], scores: pl.DataFrame, source: str) -> pl.DataFrame:
    """``pair_id, divergence_score, flagged`` and the model's score columns of every scored pair, in order.

    The score columns are the ones detection reads for the method (:data:`detection_scores.SCORE_INPUTS`).
    """
    method = record["method"]
    columns = detection_scores.score_columns(method, source)
    ids = scores.select("pair_id")
    joined = scorefiles.join_scores(ids, scores, columns, ["pair_id"], source)
    score = detection_scores.divergence_scores(method, joined, record["lambda"], record["score_name"])
    return joined.select(
        "pair_id",
        pl.Series("divergence_score", score, dtype=pl.Float64),
        pl.Series("flagged", flag(score, threshold_value(record)), dtype=pl.Boolean),
        *columns,
    )


def unflagged_test_mask(record: Mapping[str, Any], scores: pl.DataFrame, source: str, test: pl.DataFrame):
    """``~flagged`` per test pair (test order) from the flag model's test scores: the ``unflagged`` subset.

    These are the flags a flag set holding exactly the test pairs gets (same model, score and threshold).
    """
    flags = flag_scores(record, scores, source)
    by_id = dict(zip(flags["pair_id"].to_list(), flags["flagged"].to_list(), strict=True))
    missing = [pair_id for pair_id in test["pair_id"].to_list() if pair_id not in by_id]
    if missing:
        raise ValueError(f"{source}: test pair_id {missing[0]!r} has no score")
    return ~np.array([by_id[pair_id] for pair_id in test["pair_id"].to_list()], dtype=bool)


# ---------------------------------------------------------------------------------------------------------
# The cleaned set: the unflagged rows of a pair file, in its own format


def clean_extension(path: str | Path) -> str:
    """The extension of a set's cleaned file (``jsonl``, ``parquet`` or ``csv``): the set's own."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unsupported pair-file format {suffix!r}; use one of {FORMATS}")
    return suffix[1:]


def check_clean_count(summary: Mapping[str, Any], n_written: int, source: str) -> None:
    """ValueError unless the cleaned file's ``n_written`` rows plus the set's flagged rows are its rows."""
    if n_written != summary["n_clean"] or n_written + summary["n_flagged"] != summary["n_pairs"]:
        raise ValueError(
            f"{source}: the cleaned file has {n_written} rows, but the set has {summary['n_pairs']} pairs of "
            f"which {summary['n_flagged']} are flagged (n_clean {summary['n_clean']})"
        )


def write_clean_set(path: str | Path, flagged: Sequence[bool], target: str | Path) -> int:
    """Write the rows of pair file ``path`` whose ``flagged`` (one per row, file order) is false to
    ``target``, in ``path``'s format, with all of its columns in their order; returns the rows written.

    jsonl: the kept lines byte for byte (blank lines dropped); parquet: the kept rows with the file's schema;
    csv: the kept rows as read (every value a string, an empty field stays empty).
    """
    path, target = Path(path), Path(target)
    flagged = np.asarray(flagged, dtype=bool)
    suffix = "." + clean_extension(path)
    if suffix == ".jsonl":
        with path.open(encoding="utf-8", newline="") as stream:
            lines = [line if line.endswith(("\n", "\r")) else line + "\n" for line in stream if line.strip()]
        _check_rows(path, len(lines), flagged)
        kept = [line for line, flag_row in zip(lines, flagged, strict=True) if not flag_row]
        target.write_text("".join(kept), encoding="utf-8")
        return len(kept)
    frame = pl.read_parquet(path) if suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
    _check_rows(path, frame.height, flagged)
    kept = frame.filter(pl.Series(~flagged))
    if suffix == ".parquet":
        kept.write_parquet(target)
    else:
        kept.write_csv(target)
    return kept.height


def _check_rows(path: Path, n_rows: int, flagged: np.ndarray) -> None:
    if n_rows != flagged.size:
        raise ValueError(
            f"{path}: {n_rows} rows but {flagged.size} flags (the file changed since it was flagged?)"
        )


def labelled_evaluation(flags: pl.DataFrame, set_pairs: pl.DataFrame, test: pl.DataFrame) -> dict[str, Any]:
    """Precision and recall of the flags on the set's pairs that are test pairs of the flag dataset.

    A set pair counts when its pair_id and all three texts equal a test pair's (so a researcher's own file,
    with other ids, matches nothing and gets nulls). The test pairs' ``agreement`` gives the true diverging
    label.
    """
    matched = set_pairs.join(test.select(*PAIR_COLUMNS, "agreement"), on=list(PAIR_COLUMNS), how="inner")
    matched = matched.join(flags.select("pair_id", "flagged"), on="pair_id", how="left")
    is_diverging = (matched["agreement"] == detection_scores.DIVERGING).to_numpy()
    precision, recall = precision_recall(is_diverging, matched["flagged"].to_numpy())
    return {
        "test_pairs_matched": int(matched.height),
        "test_pairs_of_dataset": int(test.height),
        "n_diverging": int(is_diverging.sum()),
        "n_flagged": int(matched["flagged"].sum()) if matched.height else 0,
        "precision": _finite(precision) if matched.height else None,
        "recall": _finite(recall) if matched.height else None,
    }
