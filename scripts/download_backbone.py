"""Rule download_backbone: the configured hub backbone at its revision, once, into resources/models/."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

from divpref.data.sources import download_hub_model


def main(smk) -> None:
    download_hub_model(smk.params.repo_id, smk.params.revision, smk.output.folder)


main(snakemake)
