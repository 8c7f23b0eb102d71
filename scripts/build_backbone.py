"""Rule build_backbone: write the offline demo/CI backbone (see divpref.models.tiny_backbone)."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

from divpref.common.atomic_io import atomic_path
from divpref.models.tiny_backbone import build_backbone


def main(smk) -> None:
    with atomic_path(smk.output[0]) as tmp:
        build_backbone(smk.params.build, tmp)


main(snakemake)
