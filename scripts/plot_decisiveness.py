"""Rule plot_decisiveness: side-free model decisiveness vs. the share of annotators on the majority side."""

from divpref.common.atomic_io import atomic_path
from divpref.common.job_log import log_to_file
from divpref.evaluation.plots import pair_scores, plot_decisiveness
from divpref.evaluation.metrics import load_scored_runs


def main(smk) -> None:
    log_to_file(smk.log[0])
    runs, tests = load_scored_runs(smk.params.runs, dict(smk.params.tests))
    scores = pair_scores(runs, tests)
    with atomic_path(smk.output.png) as png, atomic_path(smk.output.pdf) as pdf:
        plot_decisiveness(scores, png, pdf, seed=int(smk.params.seed))


main(snakemake)  # noqa: F821 - injected by snakemake
