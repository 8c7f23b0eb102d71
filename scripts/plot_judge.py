"""Rule plot_judge: winner rate by agreement subset, per dataset and judge, beside the paper's figures."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.judge.table import plot_winner_rates


def main(smk) -> None:
    table = pl.read_csv(smk.input.csv)
    with atomic_path(smk.output.png) as png, atomic_path(smk.output.pdf) as pdf:
        plot_winner_rates(table, png, pdf)


main(snakemake)
