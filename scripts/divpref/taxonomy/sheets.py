"""Table 1 tools: annotation sheets of diverging pairs, and agreement between annotators on their causes.

Agreement uses maintained implementations: sklearn's Cohen's kappa on full label-set equality (averaged over
annotator pairs) and NLTK's Krippendorff's alpha with MASI distance, as in the paper.
"""

import itertools
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

log = logging.getLogger(__name__)

CAUSE_CLASSES = {
    "task_underspecification": "Task",
    "verbosity": "Response style",
    "format": "Response style",
    "aesthetic_taste": "Response style",
    "complexity": "Response style",
    "safety": "Refusals",
    "capabilities": "Refusals",
    "comply_vs_refuse": "Refusals",
    "refuse_vs_refuse": "Refusals",
    "errors": "Errors",
}
"""The ten causes of diverging preferences (SPEC's taxonomy, paper Table 1), each with its class."""
CAUSES = tuple(CAUSE_CLASSES)

CAUSE_DESCRIPTIONS = {
    "task_underspecification": "the prompt is underspecified; the responses address different valid readings",
    "verbosity": "the responses differ in level of detail, explanation or examples",
    "format": "the responses differ in organisation: paragraphs, lists, headings",
    "aesthetic_taste": "creative or stylistic writing where preference is a matter of taste",
    "complexity": "the responses assume different expertise or technical depth",
    "safety": "one response refuses or hedges for safety reasons",
    "capabilities": "one response refuses or hedges because of the model's capabilities",
    "comply_vs_refuse": "one response complies, the other refuses",
    "refuse_vs_refuse": "both responses refuse, in different ways",
    "errors": "hallucinations, degenerate outputs or errors that annotators judged differently",
}

SHEET_TEXT_COLUMNS = ("pair_id", "prompt", "response_a", "response_b", "votes")
TRUE_MARKS = frozenset({"1", "x", "yes", "y", "true"})
FALSE_MARKS = frozenset({"", "0", "no", "n", "false"})


def format_votes(strengths: list[int]) -> str:
    """Annotator strengths as a compact signed string, e.g. ``+2 -1 0``."""
    return " ".join(f"{s:+d}" if s else "0" for s in strengths)


def sample_sheet(pairs: pl.DataFrame, *, size: int, seed: int) -> pl.DataFrame:
    """A seeded sample of ``size`` diverging pairs (all of them if fewer) with empty cause columns.

    The sample depends only on the seed and the set of diverging pair_ids, not on the row order.
    """
    diverging = pairs.filter(pl.col("agreement") == "diverging").sort("pair_id")
    if diverging.height < size:
        log.warning("only %d diverging pairs for a sheet of %d: taking them all", diverging.height, size)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(diverging.height, size=min(size, diverging.height), replace=False))
    sample = diverging[picked.tolist()] if picked.size else diverging.head(0)
    sample = sample.with_columns(
        pl.col("strengths").map_elements(format_votes, return_dtype=pl.String).alias("votes")
    )
    return sample.select(
        *SHEET_TEXT_COLUMNS,
        *(pl.lit("", dtype=pl.String).alias(cause) for cause in CAUSES),
        pl.lit("", dtype=pl.String).alias("notes"),
    )


def sheet_instructions(dataset: str, sheet_name: str) -> str:
    """Short annotator instructions for a sheet (markdown)."""
    causes = "\n".join(
        f"- `{cause}` ({CAUSE_CLASSES[cause]}): {CAUSE_DESCRIPTIONS[cause]}" for cause in CAUSES
    )
    return f"""# Causes of diverging preferences: annotation instructions ({dataset})

Each row of `{sheet_name}` is a diverging pair: some annotators preferred A, others B, at least one clearly
(`votes`: one signed strength per annotator, + favours response A, 2 = clearly better, 1 = slightly, 0 = tie).
Read the prompt and both responses and decide WHY people could reasonably disagree.

1. Put `1` in every cause column that applies (a pair may have several causes); leave the others empty or `0`.
2. Mark at least one cause per row; a row with none counts as not annotated and is left out of the agreement.
3. Do not change `pair_id`, do not add or reorder columns; `notes` is free text.
4. Save your copy as CSV (UTF-8), one file per annotator, named after them (e.g. `alice.csv`), and list
   the files under `taxonomy: filled_sheets: {dataset}:` in the config (agreement needs two or more).

Causes (paper, Table 1):
{causes}
"""


def _parse_mark(value: object, path: str, pair_id: str, cause: str) -> bool:
    text = "" if value is None else str(value).strip().lower()
    if text in TRUE_MARKS:
        return True
    if text in FALSE_MARKS:
        return False
    raise ValueError(
        f"{path}: pair_id {pair_id!r}, column {cause!r}: unreadable mark {value!r} (use 1 or leave empty)"
    )


def read_filled_sheet(path: str | Path) -> dict[str, frozenset[str]]:
    """One annotator's labels: pair_id -> set of causes (empty set: row not annotated)."""
    path = str(path)
    sheet = pl.read_csv(path, infer_schema=False)
    missing = [column for column in ("pair_id", *CAUSES) if column not in sheet.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    labels: dict[str, frozenset[str]] = {}
    for row in sheet.iter_rows(named=True):
        pair_id = row["pair_id"]
        if pair_id in labels:
            raise ValueError(f"{path}: pair_id {pair_id!r} appears twice")
        labels[pair_id] = frozenset(
            cause for cause in CAUSES if _parse_mark(row[cause], path, pair_id, cause)
        )
    return labels


@dataclass
class AgreementResult:
    """Agreement of several annotators on the cause sets of the pairs that all of them annotated."""

    annotators: list[str]
    pairs_annotated_by_all: int
    pairs_excluded: int  # in some sheet but not annotated (non-empty) by every annotator
    cohen_kappa_mean: float
    cohen_kappa_by_pair: dict[str, float]
    krippendorff_alpha_masi: float
    cause_frequency: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        """JSON text (NaN written as null)."""

        def clean(value):
            if isinstance(value, float) and np.isnan(value):
                return None
            if isinstance(value, dict):
                return {key: clean(item) for key, item in value.items()}
            return value

        return json.dumps({key: clean(value) for key, value in asdict(self).items()}, indent=2) + "\n"


def label_set_key(labels: frozenset[str]) -> str:
    """A canonical string for a label set (full-set equality for Cohen's kappa)."""
    return "|".join(sorted(labels))


def cause_frequencies(
    sheets: Mapping[str, Mapping[str, frozenset[str]]], items: list[str]
) -> dict[str, float]:
    """Share of ``items`` labelled with each cause, averaged over annotators (Table 1's MP/HS2 columns)."""
    return {
        cause: float(
            np.mean([np.mean([cause in sheet[item] for item in items]) for sheet in sheets.values()])
        )
        if items
        else float("nan")
        for cause in CAUSES
    }


def annotator_agreement(sheets: Mapping[str, Mapping[str, frozenset[str]]]) -> AgreementResult:
    """Cohen's kappa (label-set equality, mean over annotator pairs), Krippendorff's alpha (MASI), shares."""
    from nltk.metrics.agreement import AnnotationTask
    from nltk.metrics.distance import masi_distance
    from sklearn.metrics import cohen_kappa_score

    if len(sheets) < 2:
        raise ValueError(
            f"agreement needs at least two annotators' sheets, got {len(sheets)}: {list(sheets)}"
        )
    every_pair = set().union(*(sheet.keys() for sheet in sheets.values()))
    items = sorted(pair_id for pair_id in every_pair if all(sheet.get(pair_id) for sheet in sheets.values()))
    if not items:
        raise ValueError(f"no pair is annotated (with at least one cause) by all of {list(sheets)}")
    kappas = {}
    for first, second in itertools.combinations(sheets, 2):
        kappas[f"{first} vs {second}"] = float(
            cohen_kappa_score(
                [label_set_key(sheets[first][item]) for item in items],
                [label_set_key(sheets[second][item]) for item in items],
            )
        )
    task = AnnotationTask(
        data=[(annotator, item, sheet[item]) for annotator, sheet in sheets.items() for item in items],
        distance=masi_distance,
    )
    return AgreementResult(
        annotators=list(sheets),
        pairs_annotated_by_all=len(items),
        pairs_excluded=len(every_pair) - len(items),
        cohen_kappa_mean=float(np.mean(list(kappas.values()))),
        cohen_kappa_by_pair=kappas,
        krippendorff_alpha_masi=float(task.alpha()),
        cause_frequency=cause_frequencies(sheets, items),
    )


def frequency_table(dataset: str, result: AgreementResult) -> pl.DataFrame:
    """Table 1's frequency column for one dataset: one row per cause."""
    return pl.DataFrame(
        {
            "dataset": [dataset] * len(CAUSES),
            "class": [CAUSE_CLASSES[cause] for cause in CAUSES],
            "cause": list(CAUSES),
            "frequency": [result.cause_frequency[cause] for cause in CAUSES],
            "pairs": [result.pairs_annotated_by_all] * len(CAUSES),
        }
    )
