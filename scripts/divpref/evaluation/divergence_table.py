"""The divergence table: every dataset's agreement-category summary in one frame."""

import polars as pl

SUMMARY_COLUMNS = ["category", "count", "percent"]


def gather_divergence(summaries: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """All datasets' divergence summaries in one frame with a leading ``dataset`` column."""
    for dataset, summary in summaries.items():
        if summary.columns != SUMMARY_COLUMNS:
            raise ValueError(
                f"divergence summary of {dataset!r}: columns {summary.columns}, want {SUMMARY_COLUMNS}"
            )
    return pl.concat(
        [
            summary.with_columns(pl.col("percent").cast(pl.Float64)).select(
                pl.lit(dataset).alias("dataset"), *SUMMARY_COLUMNS
            )
            for dataset, summary in summaries.items()
        ]
    )
