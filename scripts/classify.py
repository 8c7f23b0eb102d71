"""Rule classify: agreement category of every pair, and the per-dataset divergence summary."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.data.agreement import classify_pairs, summarize


def main(smk) -> None:
    annotations = pl.read_parquet(smk.input.annotations)
    pairs = classify_pairs(annotations, chosen_tie_break=smk.params.chosen_tie_break)
    summary = summarize(pairs, n_annotations=annotations.height)
    with atomic_path(smk.output.pairs) as pairs_tmp, atomic_path(smk.output.summary) as summary_tmp:
        pairs.write_parquet(pairs_tmp)
        summary.write_csv(summary_tmp)
    print(summary)


main(snakemake)
