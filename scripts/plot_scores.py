"""Rule plot_scores: per-pair P(chosen > rejected) (BT) and reward margins (MSE) by agreement subset."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

from divpref.common.atomic_io import atomic_path
from divpref.common.rule_inputs import files_by_name, with_files
from divpref.evaluation.metrics import load_scored_runs
from divpref.evaluation.plots import pair_scores, plot_score_distributions


def main(smk) -> None:
    runs = with_files(smk.params.runs, "scores", smk.input.scores)
    runs, tests = load_scored_runs(runs, files_by_name(smk.params.test_datasets, smk.input.tests))
    scores = pair_scores(runs, tests)
    with atomic_path(smk.output.png) as png, atomic_path(smk.output.pdf) as pdf:
        plot_score_distributions(scores, png, pdf, seed=int(smk.params.seed))


main(snakemake)
