"""What the format readers (MultiPref, HelpSteer2, long format) share: reading raw records, the error for a
schema-level problem, and the normalized long table they return (see :mod:`divpref.data.normalize`).
"""

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

ANNOTATIONS_SCHEMA = {
    "pair_id": pl.String,
    "prompt": pl.String,
    "response_a": pl.String,
    "response_b": pl.String,
    "annotator": pl.Int64,
    "strength": pl.Int8,
    "helpfulness_a": pl.Int64,
    "helpfulness_b": pl.Int64,
}
REJECTS_SCHEMA = {"row_key": pl.String, "reason": pl.String, "value": pl.String}


class InputDataError(ValueError):
    """A schema-level problem in an input file; the message names the file, the row key and the value."""


@dataclass(frozen=True)
class Normalized:
    """The result of normalizing one file: the long table, the rejected rows and the row count read."""

    annotations: pl.DataFrame
    rejects: pl.DataFrame
    rows_in: int
    pair_row_keys: dict[str, tuple[str, ...]] | None = None
    """The input row keys of each kept pair (None: a pair's row key is its pair_id)."""
    annotator_report: dict | None = None
    """Pairs with fewer annotators than usual (:mod:`divpref.data.annotator_counts`); merged into the
    report."""

    def quality_report(self) -> dict:
        """rows_in / kept / rejected, pairs, annotations and rejected rows per reason; checks they add up."""
        rows_rejected = self.rejects.height
        rows_kept = self.rows_in - rows_rejected
        reasons = self.rejects["reason"].value_counts(sort=True) if rows_rejected else None
        report = {
            "rows_in": self.rows_in,
            "rows_kept": rows_kept,
            "rows_rejected": rows_rejected,
            "pairs": self.annotations["pair_id"].n_unique(),
            "annotations": self.annotations.height,
            "reasons": {} if reasons is None else dict(reasons.iter_rows()),
        }
        if rows_kept < 0 or sum(report["reasons"].values()) != rows_rejected:
            raise AssertionError(f"data-quality counts do not reconcile: {report}")
        return {**report, **(self.annotator_report or {})}


# --- reading ---------------------------------------------------------------------------------------


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` from a .jsonl or .jsonl.gz file; errors name the file and line."""
    opener = gzip.open if path.name.endswith(".gz") else open
    line_number = 0
    try:
        with opener(path, "rt", encoding="utf-8") as stream:
            for line_number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputDataError(
                        f"{path}: row {line_number}: invalid JSON ({exc.msg}): {line[:80]!r}"
                    ) from exc
                if not isinstance(record, dict):
                    raise InputDataError(
                        f"{path}: row {line_number}: expected a JSON object, got {line[:80]!r}"
                    )
                yield line_number, record
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputDataError(
            f"{path}: truncated or corrupt gzip stream after row {line_number}: {exc}"
        ) from exc


def read_records(path: str | Path) -> list[tuple[int, dict]]:
    """All records of a .jsonl, .jsonl.gz or .parquet file as ``(row_number, record)``; empty is an error."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputDataError(f"{path}: file is empty (0 bytes)")
    if path.name.endswith(".parquet"):
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # polars raises several exception types for corrupt files
            raise InputDataError(f"{path}: cannot read parquet: {exc}") from exc
        records = list(enumerate(frame.to_dicts(), start=1))
    elif path.name.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".json")):
        records = list(iter_json_lines(path))
    else:
        raise InputDataError(f"{path}: unsupported file type (expected .jsonl, .jsonl.gz or .parquet)")
    if not records:
        raise InputDataError(f"{path}: file has no records")
    return records


def require_columns(path: Path, row: int, record: dict, columns: tuple[str, ...], key: str) -> None:
    """Raise ``InputDataError`` if ``record`` lacks one of ``columns``."""
    missing = [column for column in columns if column not in record]
    if missing:
        raise InputDataError(
            f"{path}: row {row} ({key}): missing column {missing[0]!r}; present: {sorted(record)}"
        )


def rows_frame(rows: list[tuple], schema: dict) -> pl.DataFrame:
    """A frame of ``rows`` (tuples in ``schema``'s column order)."""
    return pl.DataFrame(rows, schema=schema, orient="row")


def snippet(text: object, width: int = 60) -> str:
    """``text`` cut to ``width`` characters (ending in "...") for a rejects-table value."""
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."
