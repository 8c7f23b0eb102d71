"""Rule taxonomy_agreement: cause frequencies (Table 1), Cohen's kappa and Krippendorff's alpha (MASI)."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

from pathlib import Path

from divpref.common.atomic_io import atomic_path
from divpref.taxonomy.sheets import annotator_agreement, frequency_table, read_filled_sheet


def main(smk) -> None:
    sheets = {}
    for path in smk.input.sheets:
        name = Path(path).stem
        if name in sheets:
            raise ValueError(
                f"two filled sheets share the annotator name {name!r} (file stem): {smk.input.sheets}"
            )
        sheets[name] = read_filled_sheet(path)
    result = annotator_agreement(sheets)
    print(result.to_json())
    with atomic_path(smk.output.agreement) as tmp:
        tmp.write_text(result.to_json())
    with atomic_path(smk.output.frequencies) as tmp:
        frequency_table(smk.wildcards.dataset, result).write_csv(tmp)


main(snakemake)
