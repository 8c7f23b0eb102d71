"""The MultiPref reader: the Hugging Face layout, one row per comparison with its annotation lists.

Row keys and the kinds of problems: :mod:`divpref.data.normalize`.
"""

from pathlib import Path

from divpref.data.records import (
    ANNOTATIONS_SCHEMA,
    REJECTS_SCHEMA,
    InputDataError,
    Normalized,
    read_records,
    require_columns,
    rows_frame,
)

MULTIPREF_STRENGTH = {
    "A-is-clearly-better": 2,
    "A-is-slightly-better": 1,
    "Tie": 0,
    "B-is-slightly-better": -1,
    "B-is-clearly-better": -2,
}
MULTIPREF_COLUMNS = ("comparison_id", "text", "completion_a", "completion_b")
MULTIPREF_ANNOTATION_COLUMNS = ("normal_worker_annotations", "expert_worker_annotations")
"""Annotation lists in annotator order: the 2 crowdworkers (annotators 0, 1), then the 2 experts (2, 3)."""


def normalize_multipref(path: str | Path) -> Normalized:
    """Long table of a MultiPref file (HF layout): every annotator of each comparison, crowd first."""
    path = Path(path)
    records = read_records(path)
    rows, rejects, seen = [], [], set()
    for row, record in records:
        key = record.get("comparison_id")
        row_key = str(key) if key is not None else f"row {row}"
        require_columns(path, row, record, MULTIPREF_COLUMNS + MULTIPREF_ANNOTATION_COLUMNS, row_key)
        labels = []
        for column in MULTIPREF_ANNOTATION_COLUMNS:
            for annotation in record[column] or []:
                if not isinstance(annotation, dict) or "overall_pref" not in annotation:
                    raise InputDataError(
                        f"{path}: row {row} (comparison_id={row_key}): {column} entry without "
                        f"'overall_pref': "
                        f"{str(annotation)[:120]}"
                    )
                label = annotation["overall_pref"]
                if label is not None and label not in MULTIPREF_STRENGTH:
                    raise InputDataError(
                        f"{path}: row {row} (comparison_id={row_key}): unknown overall_pref {label!r} "
                        f"(expected one of {list(MULTIPREF_STRENGTH)})"
                    )
                labels.append(label)
        reason = _multipref_reject_reason(record, labels, seen)
        if reason is not None:
            rejects.append((row_key, *reason))
            continue
        seen.add(key)
        for annotator, label in enumerate(labels):
            rows.append(
                (
                    str(key),
                    record["text"],
                    record["completion_a"],
                    record["completion_b"],
                    annotator,
                    MULTIPREF_STRENGTH[label],
                    None,
                    None,
                )
            )
    return Normalized(rows_frame(rows, ANNOTATIONS_SCHEMA), rows_frame(rejects, REJECTS_SCHEMA), len(records))


def _multipref_reject_reason(record: dict, labels: list, seen: set) -> tuple[str, str] | None:
    """Why a well-formed MultiPref row is excluded, as ``(reason, value)``; None if it is kept."""
    key = record["comparison_id"]
    if key is None or key == "":
        return "missing_comparison_id", ""
    if key in seen:
        return "duplicate_comparison_id", str(key)
    for column in ("text", "completion_a", "completion_b"):
        if record[column] is None:
            return "missing_text", column
    if not labels:
        return "no_annotations", ""
    if any(label is None for label in labels):
        return "missing_overall_pref", f"annotator {labels.index(None)}"
    return None
