"""The generic long format: one row per annotation, for any multi-annotator preference dataset.

Columns (stable names): ``pair_id``, ``prompt``, ``response_a``, ``response_b``, ``annotator``, ``strength``
(an integer in -2..2, positive favouring A: 2 = A clearly better, 1 = A slightly, 0 = tie, -1 / -2 = B), and
optionally ``score_a``, ``score_b`` (the annotator's integer Likert score of each response; they enable the
score-based methods). Files: ``.jsonl``, ``.jsonl.gz``, ``.parquet`` or ``.csv`` (header line, UTF-8).

Problems, as for the published layouts (:mod:`divpref.data.normalize`):

- errors (``InputDataError`` naming the file, the row, the pair_id and the value; nothing is written): a
  missing column, a strength that is not an integer in -2..2, a score that is not an integer, a pair_id whose
  rows disagree on ``prompt``, ``response_a`` or ``response_b``;
- excluded rows (listed in the rejects table with a reason; ``rows_in == rows_kept + rows_rejected``): an
  empty pair_id, annotator, strength, text or (when scores are used) score, and a repeated (pair_id,
  annotator).

Output: the annotations table of :data:`divpref.data.records.ANNOTATIONS_SCHEMA`, pairs in order of first
appearance, ``annotator`` renumbered 0, 1, ... per pair in file order, the scores in ``helpfulness_a`` and
``helpfulness_b`` (null without scores). Row keys are ``row N``: the 1-based line of a JSON-lines file, the
1-based row of a parquet file, the 1-based data row of a CSV file (the header is row 0).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import polars as pl

from divpref.data.formats import LONG_REQUIRED_COLUMNS, LONG_SCORE_COLUMNS, LONG_SUFFIXES
from divpref.data.records import (
    ANNOTATIONS_SCHEMA,
    REJECTS_SCHEMA,
    InputDataError,
    Normalized,
    read_records,
    rows_frame,
    snippet,
)

TEXT_COLUMNS = ("prompt", "response_a", "response_b")
STRENGTH_RANGE = (-2, 2)


def read_long_records(path: str | Path) -> list[tuple[int, dict]]:
    """``(row_number, record)`` of every row of a long-format file; empty CSV cells become None."""
    path = Path(path)
    if not path.name.endswith(LONG_SUFFIXES):
        raise InputDataError(f"{path}: unsupported file type (expected one of {', '.join(LONG_SUFFIXES)})")
    if not path.name.endswith(".csv"):
        return read_records(path)
    if not path.exists():
        raise InputDataError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        records = [
            (row, {key: (value if value != "" else None) for key, value in record.items()})
            for row, record in enumerate(reader, start=1)
        ]
        header = reader.fieldnames or []
    if not header:
        raise InputDataError(f"{path}: file is empty (no header line)")
    if not records:
        raise InputDataError(f"{path}: file has no records")
    return records


def _integer(value: Any) -> int | None:
    """``value`` as an int if it is one (int, integral float, or integer string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                return _integer(float(value))
            except ValueError:
                return None
    return None


def _empty(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and value.strip() == "")
        or (isinstance(value, float) and math.isnan(value))
    )


def normalize_long(path: str | Path, use_scores: bool | None = None) -> Normalized:
    """The long table of a long-format file.

    ``use_scores``: None reads ``score_a``/``score_b`` when the file has both; True requires them (the
    workflow planned score-based methods on this dataset); False ignores them.
    """
    path = Path(path)
    records = read_long_records(path)
    first_row, first = records[0]
    missing = [column for column in LONG_REQUIRED_COLUMNS if column not in first]
    if missing:
        raise InputDataError(
            f"{path}: row {first_row} (pair_id={first.get('pair_id')!r}): missing column {missing[0]!r}; "
            f"required: {list(LONG_REQUIRED_COLUMNS)}; present: {sorted(first)}"
        )
    has_scores = all(column in first for column in LONG_SCORE_COLUMNS)
    if use_scores and not has_scores:
        raise InputDataError(
            f"{path}: the workflow expects Likert scores (datasets.<name>.scores), but the file has no "
            f"{' / '.join(c for c in LONG_SCORE_COLUMNS if c not in first)} column"
        )
    scored = has_scores if use_scores is None else bool(use_scores)
    columns = LONG_REQUIRED_COLUMNS + (LONG_SCORE_COLUMNS if scored else ())

    rows: list[tuple] = []
    rejects: list[tuple[str, str, str]] = []
    texts: dict[str, tuple[str, str, str]] = {}
    annotators: dict[str, dict[str, int]] = {}
    row_keys: dict[str, list[str]] = {}  # each kept pair's rows (a pair excluded later rejects all of them)
    for row, record in records:
        pair_key = record.get("pair_id")
        where = f"{path}: row {row} (pair_id={pair_key!r})"
        for column in columns:
            if column not in record:
                raise InputDataError(f"{where}: missing column {column!r}; present: {sorted(record)}")
        strength = record["strength"]
        if not _empty(strength):
            value = _integer(strength)
            if value is None or not STRENGTH_RANGE[0] <= value <= STRENGTH_RANGE[1]:
                raise InputDataError(f"{where}: strength {strength!r} is not an integer in -2..2")
            strength = value
        scores = []
        for column in LONG_SCORE_COLUMNS if scored else ():
            score = record[column]
            if not _empty(score) and _integer(score) is None:
                raise InputDataError(f"{where}: {column} {score!r} is not an integer Likert score")
            scores.append(None if _empty(score) else _integer(score))

        reason = _reject_reason(record, strength, scores)
        if reason is None:
            pair_id = str(pair_key)
            annotator = str(record["annotator"])
            pair_texts = tuple(record[column] for column in TEXT_COLUMNS)
            known = texts.setdefault(pair_id, pair_texts)
            for column, seen, value in zip(TEXT_COLUMNS, known, pair_texts, strict=True):
                if seen != value:
                    raise InputDataError(
                        f"{where}: {column} differs from an earlier row of the same pair_id: "
                        f"{snippet(value)!r} vs {snippet(seen)!r}"
                    )
            seen_annotators = annotators.setdefault(pair_id, {})
            if annotator in seen_annotators:
                reason = ("duplicate_annotation", f"pair_id {pair_id} annotator {annotator}")
            else:
                seen_annotators[annotator] = len(seen_annotators)
                row_keys.setdefault(pair_id, []).append(f"row {row}")
                rows.append(
                    (pair_id, *pair_texts, seen_annotators[annotator], strength, *(scores or (None, None)))
                )
        if reason is not None:
            rejects.append((f"row {row}", *reason))

    annotations = rows_frame(rows, ANNOTATIONS_SCHEMA)
    order = {pair_id: index for index, pair_id in enumerate(texts)}
    annotations = (
        annotations.with_columns(_order=pl.col("pair_id").replace_strict(order, return_dtype=pl.Int64))
        .sort("_order", "annotator", maintain_order=True)
        .drop("_order")
    )
    return Normalized(
        annotations,
        rows_frame(rejects, REJECTS_SCHEMA),
        len(records),
        {pair_id: tuple(keys) for pair_id, keys in row_keys.items()},
    )


def _reject_reason(record: dict, strength: Any, scores: list) -> tuple[str, str] | None:
    """Why a well-formed row is excluded, as ``(reason, value)``; None if it is kept (duplicates aside)."""
    if _empty(record["pair_id"]):
        return "missing_pair_id", ""
    if _empty(record["annotator"]):
        return "missing_annotator", f"pair_id {record['pair_id']}"
    for column in TEXT_COLUMNS:
        if record[column] is None:
            return "missing_text", f"pair_id {record['pair_id']} {column}"
    if _empty(strength):
        return "missing_strength", f"pair_id {record['pair_id']}"
    for column, score in zip(LONG_SCORE_COLUMNS, scores, strict=False):
        if score is None:
            return "missing_score", f"pair_id {record['pair_id']} {column}"
    return None
