"""Rule download_backbone: the configured hub backbone at its revision, once, into resources/models/."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - injected by snakemake

from divpref.data.sources import download_hub_model  # noqa: E402

download_hub_model(
    snakemake.params.repo_id,  # noqa: F821
    snakemake.params.revision,  # noqa: F821
    snakemake.output.folder,  # noqa: F821
)
