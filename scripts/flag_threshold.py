"""Rule flag_threshold: the flag model's divergence-score choice and flag threshold, from its dev scores."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.flagging.flags import choose_threshold


def main(smk) -> None:
    model = {**smk.params.model, "dev_scores": smk.input.dev_scores}
    record = choose_threshold(
        model,
        pl.read_parquet(smk.input.pairs),
        pl.read_parquet(smk.input.dev_scores),
        smk.params.lambda_grid,
        classification_score=smk.params.classification_score,
    )
    text = json.dumps(record, indent=2) + "\n"
    with atomic_path(smk.output.threshold) as tmp:
        tmp.write_text(text)
    print(text)


main(snakemake)
