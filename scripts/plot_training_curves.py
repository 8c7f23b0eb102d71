"""Rule plot_training_curves: the dev selection metric against epoch for every run, selections marked."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json
from pathlib import Path

from divpref.common.atomic_io import atomic_path
from divpref.common.figures import save_figure
from divpref.evaluation.curves import plot_training_curves


def main(smk) -> None:
    bests = [json.loads(Path(path).read_text()) for path in smk.input.best]
    figure = plot_training_curves(smk.params.runs, bests)
    with atomic_path(smk.output.png) as png, atomic_path(smk.output.pdf) as pdf:
        save_figure(figure, png, pdf)


main(snakemake)
