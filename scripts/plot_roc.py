"""Rule plot_roc: ROC curves of divergence detection for one dataset."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.detection.roc_plot import plot_roc_curves


def main(smk) -> None:
    pair_scores = pl.read_parquet(smk.input.pair_scores)
    with atomic_path(smk.output.png) as png, atomic_path(smk.output.pdf) as pdf:
        plot_roc_curves(pair_scores, smk.wildcards.dataset, png, pdf)


main(snakemake)
