# Site settings (config `cluster:`, from the user's site.yaml) as job resources, and their check against the
# cluster; included by rules/common.smk. Every rule takes its resources from here, local rules too (a rule that
# stops being local needs no edit, and a dry run shows each job's site values). Without the block no job names
# a partition, an account or a GPU (local runs, the demo, the tests).

from snakemake.logging import logger

from divpref.common.cluster_check import cluster_check
from divpref.common.gpu_request import gpu_resources

CLUSTER = lookup(dpath="cluster", within=config, default={})


def _per_job(value, wildcards):
    """A resource argument given as a constant or as a function of the job's wildcards."""
    return value(wildcards) if callable(value) else value


def _site():
    """Account of every job, where the site names one (else the executor plugin guesses)."""
    return {"slurm_account": CLUSTER["account"]} if "account" in CLUSTER else {}


def capped_runtime(minutes_per_attempt):
    """Runtime in minutes: `minutes_per_attempt` times the attempt, never above cluster.max_runtime_minutes."""
    limit = CLUSTER["max_runtime_minutes"]
    return lambda wildcards, attempt: min(minutes_per_attempt * attempt, limit)


def cpu_job_resources(runtime_per_attempt=60):
    """Resources of a job without a GPU: the CPU partition, the account, a runtime within the site's limit."""
    if not CLUSTER:
        return {}
    return {
        "slurm_partition": CLUSTER["cpu_partition"],
        **_site(),
        "runtime": capped_runtime(runtime_per_attempt),
    }


def gpu_job_resources(gpus, cpus_per_gpu, mem_mb, runtime_per_attempt=None):
    """Resources of a GPU job, all on one node: `gpus` GPUs (an int or a function of the wildcards) of the site's
    model in its GPU partition, asked for as cluster.gpu_request says; `mem_mb` host memory (a function of
    the wildcards and attempt); `runtime_per_attempt` minutes per attempt within the site's limit, or, when
    None, always the limit itself (training: a job that hits it is requeued or retried and resumes).
    Without a `cluster:` block: no GPU request (`gpu=0`), so the job runs on whatever the host has.
    """
    resources = {"mem_mb": mem_mb}
    if not CLUSTER:
        return {"gpu": 0, **resources}
    request = lookup(dpath="cluster/gpu_request", within=config, default="gpus")
    limit = CLUSTER["max_runtime_minutes"]
    for key in gpu_resources(request, CLUSTER["gpu_model"], 1):
        # Each key (gpu and gpu_model, or gres) as a function of the job's wildcards.
        resources[key] = lambda wildcards, key=key: gpu_resources(
            request, CLUSTER["gpu_model"], _per_job(gpus, wildcards)
        )[key]
    return {
        **resources,
        "slurm_partition": CLUSTER["gpu_partition"],
        **_site(),
        "nodes": 1,
        "cpus_per_gpu": cpus_per_gpu,
        "runtime": (
            limit
            if runtime_per_attempt is None
            else capped_runtime(runtime_per_attempt)
        ),
    }


def train_job_resources(gpus=get_data_parallel, runtime_per_attempt=None):
    """The resources of a training job (train, and any job that must run where training runs), namely
    one GPU per data-parallel process (`gpus`, default the run's training.data_parallel), 8 CPUs and 64 GB of
    host memory per GPU (each process loads the 8-bit model, about twice the weights), and by default the
    site's whole time limit: up to 10 epochs with evaluation every 0.25 epoch, resumed from checkpoints when it
    is not enough. A short job on the same GPUs passes its own `runtime_per_attempt`.
    """
    return gpu_job_resources(
        gpus,
        cpus_per_gpu=8,
        mem_mb=lambda wildcards: 64000 * _per_job(gpus, wildcards),
        runtime_per_attempt=runtime_per_attempt,
    )


def check_site_before_submitting():
    """Run before the first job (onstart, never in a dry run): the SLURM executor needs the site settings, and
    where `sinfo` exists they must match the cluster (divpref.common.cluster_check)."""
    plugin = workflow.executor_plugin
    if plugin is not None and plugin.cli_prefix == "slurm" and not CLUSTER:
        raise ValueError(
            "config key cluster: the SLURM executor needs the site settings (partitions, GPU model, time "
            "limit); write site.yaml from site.example.yaml and run "
            "`snakemake --profile profiles/slurm --configfile config.yaml site.yaml`"
        )
    if CLUSTER:
        logger.info(
            cluster_check(CLUSTER)
            or "cluster_check: no sinfo on this host, site settings not checked"
        )
