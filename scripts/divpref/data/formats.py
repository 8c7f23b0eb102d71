"""Dataset formats and what each dataset supports, known when the workflow loads (before any data exists).

A dataset's ``format`` is given in config (``datasets.<name>.format``) or implied by its key (``multipref``,
``helpsteer2``). Whether it carries per-annotator Likert scores, which the score-based methods need, follows
from the format: MultiPref has none, HelpSteer2 has them, and a ``long`` file has them when its columns
include ``score_a`` and ``score_b``. For a ``long`` file the workflow reads the file's header (parquet schema,
CSV header line, first JSON record) at parse time; a file that does not exist yet (written by another rule)
needs ``datasets.<name>.scores: true|false`` declared instead. An explicit ``scores`` always wins.

Cheap to import (the Snakefile uses it): no polars at module level.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FORMATS = ("multipref", "helpsteer2", "long")
"""Known raw layouts: the two published ones and the generic long format (:mod:`divpref.data.longformat`)."""

SCORED_FORMATS = {"multipref": False, "helpsteer2": True}
"""Whether a published layout carries per-annotator Likert scores."""

LONG_REQUIRED_COLUMNS = ("pair_id", "prompt", "response_a", "response_b", "annotator", "strength")
LONG_SCORE_COLUMNS = ("score_a", "score_b")
LONG_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet", ".csv")


def dataset_format(name: str, spec: Mapping[str, Any]) -> str:
    """The dataset's ``format``: the configured one, else the layout its key implies."""
    fmt = spec.get("format")
    if fmt is None:
        if name not in SCORED_FORMATS:
            raise ValueError(
                f"config key datasets.{name}.format: required for a dataset not called "
                f"{' or '.join(SCORED_FORMATS)} (one of {list(FORMATS)})"
            )
        return name
    if fmt not in FORMATS:
        raise ValueError(f"config key datasets.{name}.format: unknown format {fmt!r}; known: {list(FORMATS)}")
    return fmt


def header_columns(path: str | Path) -> list[str]:
    """Column names of a long-format file without reading its rows (first record for JSON lines)."""
    path = Path(path)
    name = path.name
    if name.endswith(".parquet"):
        import polars as pl

        return list(pl.read_parquet_schema(path))
    if name.endswith(".csv"):
        with path.open(newline="", encoding="utf-8") as stream:
            return next(csv.reader(stream), [])
    if name.endswith((".jsonl", ".jsonl.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8") as stream:
            for line in stream:
                if line.strip():
                    record = json.loads(line)
                    return list(record) if isinstance(record, dict) else []
        return []
    raise ValueError(f"{path}: unsupported file type (expected one of {', '.join(LONG_SUFFIXES)})")


def dataset_has_scores(name: str, spec: Mapping[str, Any]) -> bool:
    """Whether dataset ``name`` has per-annotator Likert scores (how it is known: the module docstring)."""
    fmt = dataset_format(name, spec)
    if "scores" in spec:
        declared = bool(spec["scores"])
        if fmt != "long" and declared != SCORED_FORMATS[fmt]:
            raise ValueError(
                f"config key datasets.{name}.scores: {declared} contradicts format {fmt!r} "
                f"({'has' if SCORED_FORMATS[fmt] else 'has no'} Likert scores)"
            )
        return declared
    if fmt != "long":
        return SCORED_FORMATS[fmt]
    source = spec["source"]
    path = Path(source).expanduser()
    if source == "hub" or not path.exists():
        raise ValueError(
            f"config key datasets.{name}.scores: {source} does not exist yet, so its columns are unknown; "
            f"declare `scores: true` (it has score_a and score_b) or `scores: false`"
        )
    try:
        columns = header_columns(path)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"datasets.{name}: cannot read the header of {path}: {error}") from error
    return all(column in columns for column in LONG_SCORE_COLUMNS)
