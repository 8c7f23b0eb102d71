"""Rule plot_judge_bias: pick rate per feature and subset, per dataset, judge and reward model."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.judge.bias import plot_pick_rates


def main(smk) -> None:
    table = pl.read_csv(smk.input.csv)
    with atomic_path(smk.output.png) as png, atomic_path(smk.output.pdf) as pdf:
        plot_pick_rates(table, png, pdf)


main(snakemake)
