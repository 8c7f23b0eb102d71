"""Rule judge_bias: how often each judge's and reward model's winner has more of each response feature."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json
from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.common.rule_inputs import files_by_name, with_files
from divpref.common.scorefiles import join_scores
from divpref.evaluation.metrics import SCORE_COLUMNS, subset_masks
from divpref.flagging.flags import UNFLAGGED, unflagged_test_mask
from divpref.judge.bias import bias_rows, bias_table, reward_winner
from divpref.judge.table import join_verdicts


def winners(run: dict, test: pl.DataFrame):
    """The run's winner per test pair (test order): a judge's final verdict, a reward model's larger side."""
    if run["kind"] == "judge":
        return join_verdicts(test, pl.read_parquet(run["path"]), run["path"])["verdict"].to_numpy()
    columns = list(SCORE_COLUMNS)
    scores = join_scores(test, pl.read_parquet(run["path"]), columns, ["pair_id"], run["path"])
    return reward_winner(scores["reward_a"].to_numpy(), scores["reward_b"].to_numpy())


def main(smk) -> None:
    evaluation = smk.params.evaluation
    tests = {
        name: pl.read_parquet(path)
        for name, path in files_by_name(smk.params.test_datasets, smk.input.tests).items()
    }
    masks = {
        name: subset_masks(test["agreement"].to_numpy(), test["substantial"].to_numpy())
        for name, test in tests.items()
    }
    if smk.params.flag_dataset in tests:
        record = json.loads(Path(smk.input.flag_threshold).read_text())
        test = tests[smk.params.flag_dataset]
        scores = pl.read_parquet(smk.input.flag_scores)
        masks[smk.params.flag_dataset][UNFLAGGED] = unflagged_test_mask(
            record, scores, smk.input.flag_scores, test
        )
    rows = []
    for run in with_files(smk.params.runs, "path", smk.input.runs):
        test = tests[run["dataset"]]
        rows += bias_rows(
            run["dataset"],
            run["judge"],
            run["kind"],
            test,
            winners(run, test),
            masks[run["dataset"]],
            n_samples=int(evaluation["bootstrap_samples"]),
            ci=float(evaluation["confidence"]),
            seed=int(evaluation["seed"]),
        )
    table = bias_table(rows)
    with atomic_path(smk.output.csv) as tmp:
        table.write_csv(tmp)
    with pl.Config(tbl_rows=-1, tbl_cols=-1):
        print(table)


main(snakemake)
