"""Rule trainset: train and dev tables for one method and label scheme."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.data.splits import rows_of_split
from divpref.data.trainsets import build_parts


def main(smk) -> None:
    pairs = pl.read_parquet(smk.input.pairs)
    splits = pl.read_parquet(smk.input.splits)
    annotations = pl.read_parquet(smk.input.annotations)
    by_split = {part: rows_of_split(pairs, splits, part) for part in ("train", "dev")}
    # The layout of the method's targets (the method's own name for the built-in methods; see RewardMethod).
    parts = build_parts(
        smk.params.layout, smk.wildcards.labels, by_split, annotations, no_majority=smk.params.no_majority
    )
    with atomic_path(smk.output.train) as train_tmp, atomic_path(smk.output.dev) as dev_tmp:
        parts["train"].write_parquet(train_tmp)
        parts["dev"].write_parquet(dev_tmp)
    print({part: table.height for part, table in parts.items()})


main(snakemake)
