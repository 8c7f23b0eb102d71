"""Rule detection_table: preference accuracy and divergence AUROC of every trained model, per dataset."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.common.rule_inputs import with_files, with_some_files
from divpref.detection.table import detection_table, pair_scores, prepare_run, render_markdown


def main(smk) -> None:
    datasets = list(smk.params.datasets)
    tests = {dataset: pl.read_parquet(path) for dataset, path in zip(datasets, smk.input.tests, strict=True)}
    pairs = {dataset: pl.read_parquet(path) for dataset, path in zip(datasets, smk.input.pairs, strict=True)}
    specs = with_files(smk.params.runs, "scores", smk.input.scores)
    runs = [
        prepare_run(
            spec,
            tests[spec["dataset"]],
            pl.read_parquet(spec["scores"]),
            pairs=pairs[spec["dataset"]],
            dev_scores=pl.read_parquet(spec["dev_scores"]) if spec["dev_scores"] else None,
            lambda_grid=smk.params.lambda_grid,
            classification_score=smk.params.classification_score,
        )
        for spec in with_some_files(specs, "dev_scores", smk.input.dev_scores, flag="dev_scored")
    ]
    table = detection_table(
        runs,
        n_samples=int(smk.params.bootstrap_samples),
        ci=float(smk.params.confidence),
        seed=int(smk.params.seed),
    )
    with atomic_path(smk.output.pair_scores) as tmp:
        pl.concat([pair_scores(run) for run in runs]).write_parquet(tmp)
    with atomic_path(smk.output.csv) as tmp:
        table.write_csv(tmp)
    with atomic_path(smk.output.md) as tmp:
        tmp.write_text(render_markdown(table, ci=float(smk.params.confidence)))
    print(render_markdown(table, ci=float(smk.params.confidence)))


main(snakemake)
