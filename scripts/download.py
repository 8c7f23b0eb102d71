"""Rule download: one file of a Hugging Face hub dataset repository at a pinned revision, with provenance."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

from divpref.data.sources import download_hub_file, write_json


def main(smk) -> None:
    hub = smk.params.hub
    provenance = download_hub_file(hub["repo_id"], hub["filename"], hub["revision"], smk.output.raw)
    write_json(provenance, smk.output.provenance)


main(snakemake)
