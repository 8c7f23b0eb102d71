"""Rule table2: Table 2 in long form (CSV) and in the paper's layout (markdown, LaTeX, HTML)."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

from divpref.common.atomic_io import atomic_path
from divpref.common.rule_inputs import files_by_name, with_files
from divpref.evaluation.metrics import load_scored_runs
from divpref.evaluation.table2 import (
    render_html,
    render_latex,
    render_markdown,
    table2_long,
)


def main(smk) -> None:
    runs = with_files(smk.params.runs, "scores", smk.input.scores)
    runs, _ = load_scored_runs(runs, files_by_name(smk.params.test_datasets, smk.input.tests))
    evaluation = smk.params.evaluation
    confidence = float(evaluation["confidence"])
    table = table2_long(
        runs, n_samples=int(evaluation["bootstrap_samples"]), ci=confidence, seed=int(evaluation["seed"])
    )
    with atomic_path(smk.output.csv) as tmp:
        table.write_csv(tmp)
    for key, render in (("md", render_markdown), ("tex", render_latex), ("html", render_html)):
        with atomic_path(smk.output[key]) as tmp:
            tmp.write_text(render(table, ci=confidence))


main(snakemake)
