"""Rule table2: Table 2 in long form (CSV) and in the paper's layout (markdown, LaTeX, HTML)."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json
from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.common.rule_inputs import files_by_name, with_files
from divpref.evaluation.metrics import load_scored_runs
from divpref.evaluation.table2 import (
    render_html,
    render_latex,
    render_markdown,
    table2_long,
)
from divpref.flagging.flags import UNFLAGGED, unflagged_test_mask


def unflagged_subsets(smk, tests: dict) -> dict:
    """``{flag dataset: {"unflagged": mask over its test pairs}}`` with a flag model, else nothing."""
    dataset = smk.params.flag_dataset
    if not dataset or dataset not in tests:
        return {}
    record = json.loads(Path(smk.input.flag_threshold).read_text())
    scores = pl.read_parquet(smk.input.flag_scores)
    return {dataset: {UNFLAGGED: unflagged_test_mask(record, scores, smk.input.flag_scores, tests[dataset])}}


def main(smk) -> None:
    runs = with_files(smk.params.runs, "scores", smk.input.scores)
    runs, tests = load_scored_runs(runs, files_by_name(smk.params.test_datasets, smk.input.tests))
    evaluation = smk.params.evaluation
    confidence = float(evaluation["confidence"])
    table = table2_long(
        runs,
        n_samples=int(evaluation["bootstrap_samples"]),
        ci=confidence,
        seed=int(evaluation["seed"]),
        extra_subsets=unflagged_subsets(smk, tests),
    )
    with atomic_path(smk.output.csv) as tmp:
        table.write_csv(tmp)
    for key, render in (("md", render_markdown), ("tex", render_latex), ("html", render_html)):
        with atomic_path(smk.output[key]) as tmp:
            tmp.write_text(render(table, ci=confidence))


main(snakemake)
