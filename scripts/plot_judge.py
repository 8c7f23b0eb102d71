"""Rule plot_judge: winner rate by agreement subset, per dataset and judge, beside the paper's figures."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

import polars as pl  # noqa: E402

from divpref.common.atomic_io import atomic_path  # noqa: E402
from divpref.judge.table import plot_winner_rates  # noqa: E402


def main(smk) -> None:
    table = pl.read_csv(smk.input.csv)
    with atomic_path(smk.output.png) as png, atomic_path(smk.output.pdf) as pdf:
        plot_winner_rates(table, png, pdf)


main(snakemake)  # noqa: F821
