"""Rule divergence_table: both datasets' divergence summaries in one CSV (and an HTML view for the report)."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.common.render import frame_to_html
from divpref.common.rule_inputs import files_by_name
from divpref.evaluation.divergence_table import gather_divergence


def main(smk) -> None:
    paths = files_by_name(smk.params.datasets, smk.input.summaries)
    summaries = {dataset: pl.read_csv(path) for dataset, path in paths.items()}
    table = gather_divergence(summaries)
    with atomic_path(smk.output.csv) as tmp:
        table.write_csv(tmp)
    with atomic_path(smk.output.html) as tmp:
        tmp.write_text(
            frame_to_html(table, title="Agreement categories per dataset", note="percent: share of all pairs")
        )


main(snakemake)
