"""Rule gpu_check: the training hardware, checked with a few real training steps before any train job.

Writes results/gpu_check.json (divpref.training.gpu_check); fails, naming the cause and the fix, when the GPU,
its driver, the int8 kernel, NCCL or the memory of a training step is not what the grid needs.
"""

import os

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers loads: compute nodes have no internet

import json

import torch

from divpref.common.atomic_io import atomic_path
from divpref.common.gpu_request import requested_gpus
from divpref.training.gpu_check import run_gpu_check


def main(smk) -> None:
    torch.set_num_threads(max(1, int(smk.threads)))
    result = run_gpu_check(
        dict(smk.params.model),
        dict(smk.params.training),
        runs=list(smk.params.runs),
        gpus_requested=requested_gpus(smk.resources),
    )
    with atomic_path(smk.output.check) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")


main(snakemake)
