"""Load MultiPref / HelpSteer2 files in their published layouts into one long per-annotation table.

Output columns (ARCHITECTURE.md): ``pair_id, prompt, response_a, response_b, annotator, strength,
helpfulness_a, helpfulness_b``. Problems come in two kinds:

- schema-level (missing column, unknown ``overall_pref`` label, score outside 0-4, truncated gzip, empty or
  unreadable file): ``InputDataError`` naming the file, the row key and the value; nothing is written;
- row-level (duplicates, a HelpSteer2 row without a consecutive same-prompt partner, unequal score lists,
  missing values, and with ``divergence.min_annotators`` pairs with too few annotators): the rows are excluded
  and listed in the rejects table with a reason, so rows_in == rows_kept + rows_rejected.

A null annotation list and an empty one mean the same: no annotations (MultiPref's
``expert_worker_annotations``, HelpSteer2's ``helpfulness``).

Row keys: MultiPref rows are keyed by ``comparison_id``; HelpSteer2 rows (and MultiPref rows without an id) by
``row N``, the 1-based line number of the JSONL file or 1-based row number of the parquet file.
"""

import gzip
import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path

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
HELPSTEER2_COLUMNS = ("prompt", "response", "helpfulness")
HELPSTEER2_SCALE = (0, 4)

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
    """Pairs with fewer annotators than usual (:mod:`divpref.data.annotator_counts`), merged into the report."""

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


# --- MultiPref -------------------------------------------------------------------------------------


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
    return Normalized(_frame(rows, ANNOTATIONS_SCHEMA), _frame(rejects, REJECTS_SCHEMA), len(records))


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


# --- HelpSteer2 ------------------------------------------------------------------------------------


def helpsteer2_pair_id(prompt: str, response_a: str, response_b: str) -> str:
    """Stable 16-hex-digit id of a HelpSteer2 pair: SHA-1 of prompt and both responses."""
    digest = hashlib.sha1("\x1f".join((prompt, response_a, response_b)).encode("utf-8"))
    return digest.hexdigest()[:16]


def helpsteer2_strength(diff: int, slight_min_diff: int = 1, clear_min_diff: int = 2) -> int:
    """Signed strength of a helpfulness difference d = h(A) - h(B): 0, +-1 (slight) or +-2 (clear)."""
    magnitude = abs(diff)
    sign = 1 if diff > 0 else -1
    if magnitude >= clear_min_diff:
        return 2 * sign
    if magnitude >= slight_min_diff:
        return sign
    return 0


def helpsteer2_strength_expr(diff: pl.Expr, slight_min_diff: int = 1, clear_min_diff: int = 2) -> pl.Expr:
    """Vectorized ``helpsteer2_strength``."""
    magnitude = diff.abs()
    level = (
        pl.when(magnitude >= clear_min_diff).then(2).when(magnitude >= slight_min_diff).then(1).otherwise(0)
    )
    return (diff.sign() * level).cast(pl.Int8)


def normalize_helpsteer2(path: str | Path, slight_min_diff: int = 1, clear_min_diff: int = 2) -> Normalized:
    """Long table of a HelpSteer2 ``disagreements`` file: consecutive same-prompt rows form pair (A, B).

    Rows are paired in file order: a row and the next one form a pair when their prompts are equal, so a prompt
    that appears in several consecutive pairs (a short prompt such as "Hi") gives several pairs. Nothing is
    guessed: a row without a same-prompt partner (a lone prompt, the odd row out of a run) is rejected as
    ``unpaired_row``, a row without a prompt as ``missing_prompt``, and a pair equal to an earlier pair (same
    prompt and both responses, hence the same pair_id) as ``duplicate_pair``, both its rows. The i-th
    helpfulness score of both responses is taken as annotator i's (SPEC's documented assumption).
    """
    if not 1 <= slight_min_diff <= clear_min_diff:
        raise ValueError(
            f"need 1 <= slight_min_diff <= clear_min_diff, got {slight_min_diff}, {clear_min_diff}"
        )
    path = Path(path)
    records = read_records(path)
    rejects: list[tuple[str, str, str]] = []
    candidates: list[tuple[int, dict]] = []
    for row, record in records:
        require_columns(path, row, record, HELPSTEER2_COLUMNS, f"row {row}")
        _check_scores(path, row, record["helpfulness"])
        if record["prompt"] is None:
            rejects.append((f"row {row}", "missing_prompt", ""))
        else:
            candidates.append((row, record))

    pairs, pair_row_keys = [], {}
    index = 0
    while index < len(candidates):
        row, first = candidates[index]
        partner = candidates[index + 1] if index + 1 < len(candidates) else None
        if partner is None or partner[1]["prompt"] != first["prompt"]:
            rejects.append((f"row {row}", "unpaired_row", _snippet(first["prompt"])))
            index += 1
            continue
        index += 2
        row_keys = (f"row {row}", f"row {partner[0]}")
        second = partner[1]
        reason = _helpsteer2_pair_reject_reason(first, second)
        pair_id = (
            None if reason else helpsteer2_pair_id(first["prompt"], first["response"], second["response"])
        )
        if reason is None and pair_id in pair_row_keys:
            reason = ("duplicate_pair", f"{pair_id} ({pair_row_keys[pair_id][0]})")
        if reason is not None:
            rejects += [(key, *reason) for key in row_keys]
            continue
        pair_row_keys[pair_id] = row_keys
        pairs.append(
            (
                pair_id,
                first["prompt"],
                first["response"],
                second["response"],
                first["helpfulness"] or [],
                second["helpfulness"] or [],
            )
        )

    pair_frame = pl.DataFrame(
        pairs,
        schema={
            "pair_id": pl.String,
            "prompt": pl.String,
            "response_a": pl.String,
            "response_b": pl.String,
            "helpfulness_a": pl.List(pl.Int64),
            "helpfulness_b": pl.List(pl.Int64),
        },
        orient="row",
    )
    annotations = (
        pair_frame.with_columns(
            annotator=pl.int_ranges(0, pl.col("helpfulness_a").list.len(), dtype=pl.Int64)
        )
        .explode("annotator", "helpfulness_a", "helpfulness_b")
        .with_columns(
            strength=helpsteer2_strength_expr(
                pl.col("helpfulness_a") - pl.col("helpfulness_b"), slight_min_diff, clear_min_diff
            )
        )
        .select(list(ANNOTATIONS_SCHEMA))
        .cast(ANNOTATIONS_SCHEMA)
    )
    return Normalized(annotations, _frame(rejects, REJECTS_SCHEMA), len(records), pair_row_keys)


def _check_scores(path: Path, row: int, scores: object) -> None:
    """Raise unless ``scores`` is null or a list of null / ints on the 0-4 scale."""
    if scores is None:
        return
    if not isinstance(scores, list):
        raise InputDataError(f"{path}: row {row}: helpfulness is not a list: {scores!r}")
    low, high = HELPSTEER2_SCALE
    for score in scores:
        if score is None:
            continue
        if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
            raise InputDataError(
                f"{path}: row {row}: helpfulness score {score!r} is not an integer in {low}..{high}"
            )


def _helpsteer2_pair_reject_reason(first: dict, second: dict) -> tuple[str, str] | None:
    """Why a HelpSteer2 pair (both of its rows) is excluded, as ``(reason, value)``; None if it is kept."""
    if first["response"] is None or second["response"] is None:
        return "missing_response", ""
    scores_a, scores_b = first["helpfulness"] or [], second["helpfulness"] or []  # null list == empty list
    if None in scores_a or None in scores_b:
        return "missing_helpfulness", f"{scores_a} vs {scores_b}"
    if len(scores_a) != len(scores_b):
        return "unequal_annotator_counts", f"{len(scores_a)} vs {len(scores_b)}"
    if not scores_a:
        return "no_annotations", ""
    return None


# --- helpers ---------------------------------------------------------------------------------------


def _frame(rows: list[tuple], schema: dict) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row")


def _snippet(text: object, width: int = 60) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def normalize_file(
    dataset: str,
    path: str | Path,
    helpsteer2_strength_options: dict | None = None,
    min_annotators: int | None = None,
    fmt: str | None = None,
    use_scores: bool | None = None,
) -> Normalized:
    """Normalize ``path`` with the reader of its format ``fmt`` (default: the layout ``dataset`` names).

    Formats: ``multipref``, ``helpsteer2``, ``long`` (:mod:`divpref.data.longformat`; ``use_scores`` goes there).
    Pairs with fewer annotators than the file's usual count are reported; with ``min_annotators`` those below
    it are excluded (see :func:`divpref.data.annotator_counts.apply_min_annotators`).
    """
    from divpref.data.annotator_counts import apply_min_annotators

    if fmt == "long":
        from divpref.data.longformat import (
            normalize_long,  # imports this module: a lazy import avoids a cycle
        )

        return apply_min_annotators(normalize_long(path, use_scores), min_annotators)
    dataset = fmt or dataset
    if dataset == "multipref":
        normalized = normalize_multipref(path)
    elif dataset == "helpsteer2":
        normalized = normalize_helpsteer2(path, **(helpsteer2_strength_options or {}))
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected 'multipref' or 'helpsteer2'")
    return apply_min_annotators(normalized, min_annotators)


def write_normalized(
    normalized: Normalized,
    annotations_path: str | Path,
    rejects_path: str | Path,
    quality_path: str | Path,
    source: str,
) -> dict:
    """Write the long table, rejects and data-quality report; all three appear together or not at all."""
    report = {"source": source, **normalized.quality_report()}
    with (
        atomic_path(annotations_path) as annotations_tmp,
        atomic_path(rejects_path) as rejects_tmp,
        atomic_path(quality_path) as quality_tmp,
    ):
        normalized.annotations.write_parquet(annotations_tmp)
        normalized.rejects.write_csv(rejects_tmp)
        quality_tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report


def normalize_to_files(
    dataset: str,
    raw: str | Path,
    annotations_path: str | Path,
    rejects_path: str | Path,
    quality_path: str | Path,
    helpsteer2_strength_options: dict | None = None,
    min_annotators: int | None = None,
    fmt: str | None = None,
    use_scores: bool | None = None,
) -> dict:
    """Normalize ``raw`` and write the three outputs; on any error nothing is written. Returns the report."""
    normalized = normalize_file(dataset, raw, helpsteer2_strength_options, min_annotators, fmt, use_scores)
    return write_normalized(normalized, annotations_path, rejects_path, quality_path, source=str(raw))
