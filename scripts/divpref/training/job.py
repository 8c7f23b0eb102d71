"""One training job: its spec, the GPU checks before loading, and the launch of ``data_parallel`` processes.

The rule script (``scripts/train.py``) builds a :class:`TrainJob` and calls :func:`run_job`:
* ``data_parallel: 1``: this process trains (no process group, exactly the single-process trainer);
* ``data_parallel: N > 1``: this process becomes torchrun's agent (``torch.distributed.run`` in-process,
  ``--standalone``) and starts N workers, ``python -m divpref.training.job <spec.json>``: one per GPU (NCCL),
  or N gloo processes on CPU. Rank 0 writes the training log. Every worker dies with the agent
  (``PR_SET_PDEATHSIG``), so a SIGKILLed or cancelled job leaves no process behind and its rerun resumes from
  the last checkpoint.

torch is imported inside the functions only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from divpref.common.gpu_request import requested_gpus

log = logging.getLogger(__name__)

LAUNCHER_PID_ENV = "DIVPREF_LAUNCHER_PID"


@dataclass(frozen=True)
class TrainJob:
    """Everything one training job needs (JSON-serialisable, handed to every worker)."""

    train: str
    dev: str
    method: str
    model: dict[str, Any]
    training: dict[str, Any]
    checkpoint_root: str
    train_log: str
    log_file: str | None = None
    threads: int = 1
    gpus_requested: int = 0
    micro_batch_halvings: int = (
        0  # retries (attempt - 1): on CUDA each halves micro_batch_size, batch_size stays
    )
    method_settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # divpref.models.method_options
    method_modules: list[str] = dataclasses.field(default_factory=list)  # config `method_modules`
    tracking: dict[str, Any] = dataclasses.field(default_factory=dict)  # divpref.training.tracking spec

    def params(self) -> Any:
        """The resolved :class:`divpref.training.params.TrainingParams`, with the retry's micro-batch size."""
        import torch

        from divpref.training.params import TrainingParams

        params = TrainingParams.from_mapping(self.training)
        # Only a GPU run can run out of GPU memory; on CPU a retry keeps the micro-batch and so resumes
        # bit-identically.
        if self.micro_batch_halvings and torch.cuda.is_available():
            micro = max(1, params.pairs_per_micro_batch >> self.micro_batch_halvings)
            params = dataclasses.replace(params, micro_batch_size=micro)
        return params


def check_gpus(job: TrainJob) -> None:
    """Fail at once when GPUs were requested but are not visible, or fewer than ``data_parallel``."""
    from divpref.common.devices import require_visible_gpus

    require_visible_gpus(job.gpus_requested, int(job.training.get("data_parallel", 1) or 1))


def run_job(job: TrainJob) -> None:
    """Check, then train in this process or in ``data_parallel`` torchrun workers; write the training log."""
    check_gpus(job)
    params = job.params()
    if params.data_parallel == 1:
        train_in_this_process(job)
        return
    launch(job, params.data_parallel)


def train_in_this_process(job: TrainJob) -> None:
    """Train (as one process, or as one torchrun worker) and, on rank 0, write the training log atomically."""
    import torch

    from divpref.common.atomic_io import atomic_path
    from divpref.common.devices import set_deterministic
    from divpref.models.method_options import resolve
    from divpref.models.methods import get_method, load_method_modules
    from divpref.training import distributed
    from divpref.training.loop import train_reward_model
    from divpref.training.memory import preflight

    load_method_modules(job.method_modules)  # in every worker: the registry is per process
    set_deterministic(bool(job.training.get("deterministic", True)))  # before CUDA computes anything
    parallel = distributed.from_environment()
    distributed.init_process_group(parallel)  # first: it selects this process's GPU for the pre-flight
    torch.set_num_threads(max(1, job.threads // parallel.world_size))
    params = job.params()
    preflight(job.model, params, job.method)
    import polars as pl

    train_table = pl.read_parquet(job.train) if job.method_settings else None
    options = resolve(job.method, job.method_settings, train_table)
    result = train_reward_model(
        job.train,
        job.dev,
        get_method(job.method, options),
        job.model,
        params,
        job.checkpoint_root,
        tracking_spec=job.tracking or None,
    )
    if parallel.is_main:
        result["method_options"] = options
        result["micro_batch_size"] = params.pairs_per_micro_batch
        with atomic_path(job.train_log) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n")
    distributed.barrier(parallel)
    distributed.destroy_process_group(parallel)


def launch(job: TrainJob, processes: int) -> None:
    """Run torchrun's agent in this process with ``processes`` workers of :func:`main` on a spec file."""
    from torch.distributed.run import main as torchrun

    from divpref.common.atomic_io import atomic_path

    spec = Path(job.train_log).with_name(".train_job.json")
    spec.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(spec) as tmp:
        tmp.write_text(json.dumps(dataclasses.asdict(job), indent=2) + "\n")
    package_root = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, job.threads // processes)))
    log.info("starting %d data-parallel training processes (torchrun --standalone)", processes)
    try:
        torchrun(
            [
                "--standalone",
                f"--nproc-per-node={processes}",
                "--max-restarts=0",
                "--module",
                "divpref.training.job",
                str(spec),
            ]
        )
    finally:
        spec.unlink(missing_ok=True)


def die_with_launcher() -> None:
    """Ask Linux to SIGKILL this worker when its parent (torchrun's agent) dies (e.g. SIGKILL, scancel)."""
    expected_parent = os.environ.get(LAUNCHER_PID_ENV)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if expected_parent is not None and os.getppid() != int(expected_parent):
        os._exit(1)  # the launcher died before prctl took effect


def main(argv: list[str]) -> None:
    """Worker entry point: ``python -m divpref.training.job <spec.json>`` (started by :func:`launch`)."""
    die_with_launcher()
    job = TrainJob(**json.loads(Path(argv[0]).read_text()))
    from divpref.common.job_log import log_to_file
    from divpref.training import distributed

    parallel = distributed.from_environment()
    if parallel.is_main and job.log_file:
        log_to_file(job.log_file)
    else:  # only rank 0 writes the job log; the others report warnings and errors on stderr
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, force=True)
    train_in_this_process(job)


def job_from_snakemake(smk: Any) -> TrainJob:
    """The :class:`TrainJob` of a snakemake ``train`` job."""
    resources: Mapping[str, Any] = smk.resources
    return TrainJob(
        train=str(smk.input.train),
        dev=str(smk.input.dev),
        method=str(smk.params.method),
        model=dict(smk.params.model),
        training=dict(smk.params.training),
        checkpoint_root=str(smk.params.checkpoint_root),
        train_log=str(smk.output.train_log),
        log_file=str(smk.log[0]),
        threads=int(smk.threads),
        gpus_requested=requested_gpus(resources),
        micro_batch_halvings=int(resources.get("micro_batch_halvings", 0) or 0),
        method_settings=dict(smk.params.method_settings),
        method_modules=[str(path) for path in smk.params.method_modules],
        tracking=tracking_from_snakemake(smk),
    )


def tracking_from_snakemake(smk: Any) -> dict[str, Any]:
    """The run's tracking spec from config ``tracking`` (read from the config, not a param: changing the
    tracker must not rerun training)."""
    from divpref.training.tracking import resolve_tracking

    wildcards = smk.wildcards
    return resolve_tracking(
        smk.config.get("tracking") or {},
        wildcards.dataset,
        wildcards.condition,
        wildcards.seed,
        str(Path(smk.output.train_log).parent),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
