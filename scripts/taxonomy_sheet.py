"""Rule taxonomy_sheet: a seeded sample of diverging pairs to annotate with causes, plus instructions."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.taxonomy.sheets import sample_sheet, sheet_instructions


def main(smk) -> None:
    pairs = pl.read_parquet(smk.input.pairs)
    sheet = sample_sheet(pairs, size=int(smk.params.size), seed=int(smk.params.seed))
    print(
        f"{sheet.height} of {pairs.filter(pl.col('agreement') == 'diverging').height} diverging pairs sampled"
    )
    with atomic_path(smk.output.sheet) as tmp:
        sheet.write_csv(tmp)
    with atomic_path(smk.output.instructions) as tmp:
        tmp.write_text(sheet_instructions(smk.wildcards.dataset, Path(smk.output.sheet).name))


main(snakemake)
