"""The HelpSteer2 reader: the ``disagreements`` layout, one row per response with its annotators' scores.

Row keys and the kinds of problems: :mod:`divpref.data.normalize`.
"""

import hashlib
from pathlib import Path

import polars as pl

from divpref.data.records import (
    ANNOTATIONS_SCHEMA,
    REJECTS_SCHEMA,
    InputDataError,
    Normalized,
    read_records,
    require_columns,
    rows_frame,
    snippet,
)

HELPSTEER2_COLUMNS = ("prompt", "response", "helpfulness")
HELPSTEER2_SCALE = (0, 4)


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

    Rows are paired in file order: a row and the next one form a pair when their prompts are equal, so a
    prompt that appears in several consecutive pairs (a short prompt such as "Hi") gives several pairs.
    Nothing is guessed: a row without a same-prompt partner (a lone prompt, the odd row out of a run) is
    rejected as ``unpaired_row``, a row without a prompt as ``missing_prompt``, and a pair equal to an earlier
    pair (same prompt and both responses, hence the same pair_id) as ``duplicate_pair``, both its rows. The
    i-th helpfulness score of both responses is taken as annotator i's (SPEC's documented assumption).
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
            rejects.append((f"row {row}", "unpaired_row", snippet(first["prompt"])))
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
    return Normalized(annotations, rows_frame(rejects, REJECTS_SCHEMA), len(records), pair_row_keys)


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
