"""Rule train: fit one reward model (resuming from its latest checkpoint) and write the training log.

With ``training.data_parallel: N > 1`` this process becomes torchrun's agent and starts N training processes
(divpref.training.job); the hub is offline: the backbone was downloaded (or built) by a local rule beforehand.
"""

import os

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers loads: compute nodes have no internet

from divpref.training.job import job_from_snakemake, run_job


def main(smk) -> None:
    run_job(job_from_snakemake(smk))


main(snakemake)
