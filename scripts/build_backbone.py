"""Rule build_backbone: write the offline demo/CI backbone (see divpref.backbone)."""

from divpref.backbone import build_backbone
from divpref.io_utils import atomic_path
from divpref.logutil import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - injected by snakemake

with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    build_backbone(snakemake.params.build, tmp)  # noqa: F821
