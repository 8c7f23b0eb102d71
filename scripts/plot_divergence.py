"""Rule plot_divergence: share of pairs in each agreement category, per dataset."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.evaluation.plots import plot_divergence_rates


def main(smk) -> None:
    divergence = pl.read_csv(smk.input.divergence)
    with atomic_path(smk.output.png) as png, atomic_path(smk.output.pdf) as pdf:
        plot_divergence_rates(divergence, png, pdf)


main(snakemake)
