"""Pairs with fewer annotators than their dataset usually has: always reported, optionally excluded.

A MultiPref row whose ``expert_worker_annotations`` is null (or empty) keeps only its 2 crowdworkers of the
usual 4; HelpSteer2 pairs have 3-5 annotators. The usual count of a file is the most common number of
annotators per pair (ties: the larger). Every kept pair below it is counted and listed in
``data_quality.json``. With config ``divergence.min_annotators`` set to N, pairs with fewer than N annotators
are excluded instead, each of their input rows listed in ``rejects.csv`` with reason ``too_few_annotators``;
null (the default) keeps them.
"""

from collections import Counter
from dataclasses import replace

import polars as pl

from divpref.data.records import Normalized

REASON = "too_few_annotators"


def usual_annotator_count(counts: list[int]) -> int | None:
    """The most common value of ``counts`` (ties: the larger), None if empty."""
    if not counts:
        return None
    tally = Counter(counts)
    return max(tally, key=lambda count: (tally[count], count))


def apply_min_annotators(normalized: Normalized, min_annotators: int | None) -> Normalized:
    """``normalized`` with the annotator-count report, and without pairs below ``min_annotators`` if set."""
    if min_annotators is not None and (isinstance(min_annotators, bool) or min_annotators < 1):
        raise ValueError(f"divergence.min_annotators must be null or an integer >= 1, got {min_annotators!r}")
    per_pair = normalized.annotations.group_by("pair_id", maintain_order=True).agg(
        pl.len().alias("n_annotators")
    )
    usual = usual_annotator_count(per_pair["n_annotators"].to_list())
    row_keys = normalized.pair_row_keys or {}
    short = per_pair.filter(pl.col("n_annotators") < usual) if usual is not None else per_pair.clear()
    listed = [
        {
            "pair_id": pair_id,
            "row_keys": list(row_keys.get(pair_id, (pair_id,))),
            "n_annotators": int(n),
            "excluded": min_annotators is not None and n < min_annotators,
        }
        for pair_id, n in short.iter_rows()
    ]
    excluded = (
        per_pair.filter(pl.col("n_annotators") < min_annotators)
        if min_annotators is not None
        else per_pair.clear()
    )
    report = {
        "usual_annotators": usual,
        "min_annotators": min_annotators,
        "pairs_with_fewer_annotators": len(listed),
        "pairs_excluded_for_too_few_annotators": excluded.height,
        "fewer_annotator_pairs": listed,
    }
    if excluded.is_empty():
        return replace(normalized, annotator_report=report)
    rejects = [
        (key, REASON, f"{int(n)} of {usual} annotators (min_annotators {min_annotators})")
        for pair_id, n in excluded.iter_rows()
        for key in row_keys.get(pair_id, (pair_id,))
    ]
    kept = normalized.annotations.join(
        excluded.select("pair_id"), on="pair_id", how="anti", maintain_order="left"
    )
    all_rejects = pl.concat(
        [normalized.rejects, pl.DataFrame(rejects, schema=normalized.rejects.schema, orient="row")]
    )
    kept_keys = {pair: keys for pair, keys in row_keys.items() if pair not in set(excluded["pair_id"])}
    return replace(
        normalized,
        annotations=kept,
        rejects=all_rejects,
        pair_row_keys=kept_keys or None,
        annotator_report=report,
    )
