"""Rule mitigation_table: the flag dataset's test set, judges and reward models before and after cleaning."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json
from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.flagging.flags import unflagged_test_mask
from divpref.flagging.mitigation import before_after_counts, render_mitigation


def main(smk) -> None:
    test = pl.read_parquet(smk.input.test)
    record = json.loads(Path(smk.input.flag_threshold).read_text())
    scores = pl.read_parquet(smk.input.flag_scores)
    unflagged = unflagged_test_mask(record, scores, smk.input.flag_scores, test)
    counts = before_after_counts(test["agreement"].to_list(), unflagged)
    judge = pl.read_csv(smk.input.judge) if smk.input.get("judge") else None
    table2 = pl.read_csv(smk.input.table2, schema_overrides={"seed": pl.String})
    summaries = [json.loads(Path(path).read_text()) for path in smk.input.summaries]
    markdown = render_mitigation(
        smk.params.dataset,
        counts,
        judge=judge,
        table2=table2,
        summaries=summaries,
        ci=float(smk.params.evaluation["confidence"]),
    )
    with atomic_path(smk.output.md) as tmp:
        tmp.write_text(markdown)
    print(markdown)


main(snakemake)
