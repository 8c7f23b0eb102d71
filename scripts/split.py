"""Rule split: seeded pair-level train/dev/test assignment, and the test pairs as their own table."""

from divpref.logutil import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - injected by snakemake

import polars as pl  # noqa: E402
from divpref.io_utils import atomic_path  # noqa: E402
from divpref.splits import assign_splits, rows_of_split  # noqa: E402


def main(smk) -> None:
    pairs = pl.read_parquet(smk.input.pairs)
    splits = assign_splits(
        pairs["pair_id"].to_list(),
        test_size=int(smk.params.test_size),
        dev_size=int(smk.params.dev_size),
        seed=int(smk.params.seed),
    )
    with atomic_path(smk.output.splits) as splits_tmp, atomic_path(smk.output.test) as test_tmp:
        splits.write_parquet(splits_tmp)
        rows_of_split(pairs, splits, "test").write_parquet(test_tmp)
    print(splits["split"].value_counts(sort=True))


main(snakemake)  # noqa: F821
