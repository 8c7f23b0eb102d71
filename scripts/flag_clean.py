"""Rule flag_clean: the unflagged rows of one flag set, in the set's own format, with all of its columns."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json
from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.flagging.flags import check_clean_count, write_clean_set


def main(smk) -> None:
    summary = json.loads(Path(smk.input.summary).read_text())
    flagged = pl.read_parquet(smk.input.flags)["flagged"].to_numpy()
    with atomic_path(smk.output.clean) as tmp:
        n_written = write_clean_set(smk.input.pairs, flagged, tmp)
        check_clean_count(summary, n_written, str(smk.output.clean))
    print(f"{smk.output.clean}: {n_written} of {summary['n_pairs']} rows ({summary['n_flagged']} flagged)")


main(snakemake)
