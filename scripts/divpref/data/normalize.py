"""Normalize a raw file, in a published layout (MultiPref, HelpSteer2) or the long format, into one long
per-annotation table, a rejects table and a data-quality report.

Output columns (ARCHITECTURE.md): ``pair_id, prompt, response_a, response_b, annotator, strength,
helpfulness_a, helpfulness_b``. Problems of the published layouts (the long format: see its module) come in
two kinds:

- schema-level (missing column, unknown ``overall_pref`` label, score outside 0-4, truncated gzip, empty or
  unreadable file): ``InputDataError`` naming the file, the row key and the value; nothing is written;
- row-level (duplicates, a HelpSteer2 row without a consecutive same-prompt partner, unequal score lists,
  missing values, and with ``divergence.min_annotators`` pairs with too few annotators): the rows are excluded
  and listed in the rejects table with a reason, so rows_in == rows_kept + rows_rejected.

A null annotation list and an empty one mean the same: no annotations (MultiPref's
``expert_worker_annotations``, HelpSteer2's ``helpfulness``).

Row keys: MultiPref rows are keyed by ``comparison_id``; HelpSteer2 rows (and MultiPref rows without an id) by
``row N``, the 1-based line number of the JSONL file or 1-based row number of the parquet file.

Readers: :mod:`divpref.data.multipref`, :mod:`divpref.data.helpsteer2` and :mod:`divpref.data.longformat`,
on what they share in :mod:`divpref.data.records`.
"""

import json
from pathlib import Path

from divpref.common.atomic_io import atomic_path
from divpref.data.annotator_counts import apply_min_annotators
from divpref.data.helpsteer2 import normalize_helpsteer2
from divpref.data.longformat import normalize_long
from divpref.data.multipref import normalize_multipref
from divpref.data.records import Normalized


def normalize_file(
    dataset: str,
    path: str | Path,
    helpsteer2_strength_options: dict | None = None,
    min_annotators: int | None = None,
    fmt: str | None = None,
    use_scores: bool | None = None,
) -> Normalized:
    """Normalize ``path`` with the reader of its format ``fmt`` (default: the layout ``dataset`` names).

    Formats: ``multipref``, ``helpsteer2``, ``long`` (:mod:`divpref.data.longformat`; ``use_scores`` goes
    there).
    Pairs with fewer annotators than the file's usual count are reported; with ``min_annotators`` those below
    it are excluded (see :func:`divpref.data.annotator_counts.apply_min_annotators`).
    """
    if fmt == "long":
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
