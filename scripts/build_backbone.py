"""Rule build_backbone: write the offline demo/CI backbone (see divpref.models.tiny_backbone)."""

from divpref.common.atomic_io import atomic_path
from divpref.common.job_log import log_to_file
from divpref.models.tiny_backbone import build_backbone

log_to_file(snakemake.log[0])  # noqa: F821 - injected by snakemake

with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    build_backbone(snakemake.params.build, tmp)  # noqa: F821
