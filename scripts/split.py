"""Rule split: seeded train/dev/test assignment (grouped by prompt or by pair), and the test pairs."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.data.splits import assign_splits, rows_of_split, split_summary


def main(smk) -> None:
    pairs = pl.read_parquet(smk.input.pairs)
    test_size, dev_size = int(smk.params.test_size), int(smk.params.dev_size)
    splits = assign_splits(
        pairs["pair_id"].to_list(),
        test_size=test_size,
        dev_size=dev_size,
        seed=int(smk.params.seed),
        prompts=pairs["prompt"].to_list(),
        group_by=smk.params.group_by,
    )
    summary = split_summary(splits, pairs, test_size, dev_size)
    with (
        atomic_path(smk.output.splits) as splits_tmp,
        atomic_path(smk.output.test) as test_tmp,
        atomic_path(smk.output.summary) as summary_tmp,
    ):
        splits.write_parquet(splits_tmp)
        rows_of_split(pairs, splits, "test").write_parquet(test_tmp)
        summary_tmp.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


main(snakemake)
