"""Rule config_snapshot: the merged config of this run, as YAML and as an HTML page for the report."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

from divpref.common.atomic_io import atomic_path
from divpref.evaluation.reporting import config_html, config_yaml


def main(smk) -> None:
    with atomic_path(smk.output.yaml) as tmp:
        tmp.write_text(config_yaml(smk.params.config))
    with atomic_path(smk.output.html) as tmp:
        tmp.write_text(config_html(smk.params.config))


main(snakemake)
