"""Rule judge_table: winner rate, tie rate and order consistency per dataset, judge and agreement subset."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json
from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.common.rule_inputs import files_by_name, with_files
from divpref.flagging.flags import unflagged_test_mask
from divpref.judge.table import (
    join_verdicts,
    judge_rows,
    judge_table,
    render_markdown,
)


def unflagged_mask(smk, dataset: str, test: pl.DataFrame):
    """``~flagged`` per test pair of the flag dataset (None for other datasets or without a flag model)."""
    if not smk.params.flag_dataset or dataset != smk.params.flag_dataset:
        return None
    record = json.loads(Path(smk.input.flag_threshold).read_text())
    scores = pl.read_parquet(smk.input.flag_scores)
    return unflagged_test_mask(record, scores, smk.input.flag_scores, test)


def main(smk) -> None:
    evaluation = smk.params.evaluation
    rows = []
    tests = files_by_name(smk.params.test_datasets, smk.input.tests)
    for run in with_files(smk.params.runs, "verdicts", smk.input.verdicts):
        test = pl.read_parquet(tests[run["dataset"]])
        pairs = join_verdicts(test, pl.read_parquet(run["verdicts"]), run["verdicts"])
        rows += judge_rows(
            run["dataset"],
            run["judge"],
            pairs,
            unflagged=unflagged_mask(smk, run["dataset"], test),
            n_samples=int(evaluation["bootstrap_samples"]),
            ci=float(evaluation["confidence"]),
            seed=int(evaluation["seed"]),
        )
    table = judge_table(rows)
    markdown = render_markdown(table, ci=float(evaluation["confidence"]))
    with atomic_path(smk.output.csv) as csv_tmp, atomic_path(smk.output.md) as md_tmp:
        table.write_csv(csv_tmp)
        md_tmp.write_text(markdown)
    print(markdown)


main(snakemake)
