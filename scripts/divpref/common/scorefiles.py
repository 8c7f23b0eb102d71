"""Join a score file onto the pairs it scores, refusing anything that would silently drop or invent a pair."""

import polars as pl

LABEL_COUNT = 5
LIST_COLUMNS = ("label_probs", "likert_probs_a", "likert_probs_b")
"""Score columns holding five probabilities per pair."""


def join_scores(
    pairs: pl.DataFrame,
    scores: pl.DataFrame,
    score_columns: list[str],
    pair_columns: list[str],
    scores_source: str,
) -> pl.DataFrame:
    """``pairs[pair_columns]`` with ``scores[score_columns]`` attached, in ``pairs`` order.

    Every pair needs exactly one score row, every score row a pair, and every score a finite value
    (``label_probs``, ``likert_probs_*``: five finite probabilities); a ``chosen`` pair column must be ``a``
    or ``b``. Otherwise ValueError naming ``scores_source``, the pair_id and the value.
    """
    missing_columns = [column for column in ["pair_id", *score_columns] if column not in scores.columns]
    if missing_columns:
        raise ValueError(f"{scores_source}: missing column(s) {missing_columns} (has {scores.columns})")
    duplicated = scores.filter(pl.col("pair_id").is_duplicated())
    if duplicated.height:
        raise ValueError(f"{scores_source}: pair_id {duplicated['pair_id'][0]!r} is scored more than once")
    unknown = scores.join(pairs, on="pair_id", how="anti")
    if unknown.height:
        raise ValueError(
            f"{scores_source}: pair_id {unknown['pair_id'][0]!r} is not among the pairs it should score"
        )
    absent = pairs.join(scores, on="pair_id", how="anti")
    if absent.height:
        raise ValueError(f"{scores_source}: pair_id {absent['pair_id'][0]!r} has no score")
    joined = pairs.select(pair_columns).join(
        scores.select("pair_id", *score_columns), on="pair_id", maintain_order="left"
    )
    for column in score_columns:
        values = joined[column]
        if column in LIST_COLUMNS:
            finite = values.list.len().eq(LABEL_COUNT) & values.list.eval(pl.element().is_finite()).list.all()
        else:
            finite = values.cast(pl.Float64).is_finite()
        bad = joined.filter(~finite.fill_null(False))
        if bad.height:
            raise ValueError(
                f"{scores_source}: pair_id {bad['pair_id'][0]!r} has invalid {column} = {bad[column][0]!r}"
            )
    if "chosen" in pair_columns:
        bad_chosen = joined.filter(~pl.col("chosen").is_in(["a", "b"]).fill_null(False))
        if bad_chosen.height:
            raise ValueError(
                f"pairs scored by {scores_source}: pair_id {bad_chosen['pair_id'][0]!r} "
                f"has chosen = {bad_chosen['chosen'][0]!r}"
            )
    return joined
