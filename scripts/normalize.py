"""Rule normalize: a raw dataset file -> long per-annotation table, rejects and data-quality report."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import logging

from divpref.data.normalize import normalize_to_files


def main(smk) -> None:
    report = normalize_to_files(
        smk.wildcards.dataset,
        smk.input.raw,
        smk.output.annotations,
        smk.output.rejects,
        smk.output.quality,
        helpsteer2_strength_options=dict(smk.params.helpsteer2_strength),
        fmt=smk.params.format,
        use_scores=smk.params.scores,
        min_annotators=smk.params.min_annotators,
    )
    logging.info("data quality: %s", report)


main(snakemake)
