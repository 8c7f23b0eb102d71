"""Rule gpu_check: on the training job's own hardware, what a training job will do, before any training job.

It records (``results/gpu_check.json``, :data:`divpref.training.memory.GPU_CHECK_FILE`):

* ``device`` (``cuda`` or ``cpu``), ``gpu_name``, ``gpu_memory_gib``, ``torch_cuda`` (torch's CUDA build),
  ``driver`` (the NVIDIA driver, from ``nvidia-smi``);
* ``int8_ok``: bitsandbytes' CUDA int8 matmul (``MatMul8bitLt``), forward and backward, against fp32;
* ``nccl_ok``: with ``training.data_parallel > 1``, an NCCL all-reduce over the job's GPUs (``null`` with 1);
* a few optimisation steps of the configured backbone, loaded exactly as training loads it
  (:func:`divpref.models.loading.load_backbone`: 8 bit, LoRA, checkpointing), at ``micro_batch_size`` with
  every sequence padded to ``max_length`` (the worst case): ``peak_memory_gib`` (``allocated`` and
  ``reserved``, the process's maxima) beside ``predicted_peak_gib`` (the memory model), and
  ``tokens_per_second``;
* ``grid_gpu_hours``: the configured grid's hours without early stopping, computed as
  ``bench/bench_gpu_hours.py`` does (:mod:`divpref.training.gpu_hours`) with the measured throughput.

On CPU (the demo, the tests) the same steps run on CPU: ``device: cpu``, ``null`` GPU-only fields, a real
``tokens_per_second``. Every failure raises :class:`GpuCheckError` naming the cause and the fix.
torch is imported inside the functions only.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MEASURED_STEPS = 3
"""Optimisation steps timed after one warm-up step (kernels, AdamW's state)."""

CUDA_MIN_DRIVER = {13: 580, 12: 525}
"""Oldest NVIDIA Linux driver branch each CUDA major release runs on (NVIDIA's compatibility table)."""

CUDA12_OPTION = (
    "use the CUDA 12 build of the same torch version: run with `--sdm conda` and config `cuda_build: cu126` "
    "(envs/train-cu126.yaml), or `pip install torch==<version> "
    "--index-url https://download.pytorch.org/whl/cu126` "
    "(README, CUDA builds)"
)

GPU_ONLY_FIELDS = (
    "gpu_name",
    "gpu_memory_gib",
    "torch_cuda",
    "driver",
    "int8_ok",
    "nccl_ok",
    "peak_memory_gib",
)

INT8_TOLERANCE = 0.05
"""Largest relative error (Frobenius norm) of the int8 matmul's output and input gradient against fp32;
LLM.int8 with outlier decomposition measures about 1% on random normal data."""


class GpuCheckError(RuntimeError):
    """The training hardware or configuration cannot run the grid; the message names the cause and the fix."""


def nvidia_driver() -> str | None:
    """The NVIDIA driver version ``nvidia-smi`` reports (e.g. ``535.104.05``), or None without nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return lines[0] if result.returncode == 0 and lines else None


def no_gpu_message(requested: int, torch_version: str, torch_cuda: str | None, driver: str | None) -> str:
    """Why a job given ``requested`` GPUs sees none, and what to do about it."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if torch_cuda is None:
        return (
            f"gpu_check: this job was given {requested} GPU(s) but torch {torch_version} is a CPU-only "
            "build: install a CUDA build of torch (the conda envs under envs/ pull one from PyPI; README, "
            "CUDA builds)"
        )
    if driver is None:
        return (
            f"gpu_check: this job was given {requested} GPU(s) but none is visible and nvidia-smi was not "
            f"found (CUDA_VISIBLE_DEVICES={visible!r}): check that the job runs on a GPU node and the SLURM "
            "request names a GPU (profiles/slurm, rule gpu_check)"
        )
    major = int(str(torch_cuda).split(".")[0])
    needed = CUDA_MIN_DRIVER.get(major)
    try:
        too_old = needed is not None and int(driver.split(".")[0]) < needed
    except ValueError:
        too_old = False
    if too_old:
        return (
            f"gpu_check: the node's NVIDIA driver {driver} is too old for torch {torch_version}'s CUDA "
            f"{torch_cuda} build, which needs driver {needed} or newer: ask the cluster's admins for a newer "
            f"driver, or {CUDA12_OPTION}"
        )
    return (
        f"gpu_check: this job was given {requested} GPU(s) but torch {torch_version} (CUDA {torch_cuda}) "
        f"sees none with driver {driver} (CUDA_VISIBLE_DEVICES={visible!r}): check the driver against "
        f"torch's CUDA build, or {CUDA12_OPTION}"
    )


def check_int8(device: str) -> bool:
    """bitsandbytes' int8 matmul in training mode (forward and input gradient) against an fp32 reference.

    On CUDA this runs ``MatMul8bitLt``, the kernel training uses; on CPU bitsandbytes runs ``MatMul8bitFp``.
    """
    import bitsandbytes as bnb
    import torch

    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(256, 512, generator=generator) / 512**0.5
    inputs = torch.randn(64, 512, generator=generator)
    layer = bnb.nn.Linear8bitLt(512, 256, bias=False, has_fp16_weights=False, threshold=6.0)
    layer.weight = bnb.nn.Int8Params(weight.to(torch.float16), requires_grad=False, has_fp16_weights=False)
    layer = layer.to(device).train()
    x = inputs.to(device).requires_grad_(True)
    out = layer(x)
    out.backward(torch.ones_like(out))
    reference = inputs @ weight.T
    reference_grad = torch.ones(64, 256) @ weight

    def relative_error(value: Any, expected: Any) -> float:
        return float((value.detach().float().cpu() - expected).norm() / expected.norm())

    errors = relative_error(out, reference), relative_error(x.grad, reference_grad)
    log.info("int8 matmul on %s: relative error forward %.4f, backward %.4f", device, *errors)
    return all(np.isfinite(errors)) and max(errors) <= INT8_TOLERANCE


def _all_reduce_worker(rank: int, world: int, backend: str, init_file: str) -> None:
    """One process of :func:`check_all_reduce`: all-reduce a one; fail unless the sum is ``world``."""
    import torch
    import torch.distributed as dist

    device = torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(rank)
        device = torch.device("cuda", rank)
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        value = torch.ones(1, device=device)
        dist.all_reduce(value)
        if int(value.item()) != world:
            raise RuntimeError(f"all-reduce over {world} processes gave {value.item()}")
    finally:
        dist.destroy_process_group()


def check_all_reduce(world: int, backend: str = "nccl") -> bool:
    """An all-reduce over ``world`` processes (one per GPU with ``nccl``; ``gloo`` runs on CPU)."""
    import torch.multiprocessing as mp

    # Spawned processes import this module anew: give them the package (a rule script's sys.path is its own).
    package_root = str(Path(__file__).resolve().parents[2])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        try:
            mp.start_processes(
                _all_reduce_worker,
                args=(world, backend, str(Path(scratch) / "rendezvous")),
                nprocs=world,
                join=True,
                start_method="spawn",
            )
        except Exception as error:  # a worker's exception, or one that died
            log.error("%s all-reduce over %d processes failed: %s", backend, world, error)
            return False
    return True


def random_pairs(vocab: int, rows: int, length: int, seed: int) -> Any:
    """``rows`` pairs of random token ids, every response ``length`` tokens long (the padded worst case)."""
    from divpref.training.batching import EncodedPairs

    rng = np.random.default_rng(seed)
    return EncodedPairs(
        ids_a=[[int(t) for t in rng.integers(100, vocab, length)] for _ in range(rows)],
        ids_b=[[int(t) for t in rng.integers(100, vocab, length)] for _ in range(rows)],
    )


def memory_advice(params: Any) -> str:
    """The config keys that lower a training step's peak memory, in the order to try them."""
    keys = []
    if not params.gradient_checkpointing:
        keys.append("set training.gradient_checkpointing: true")
    if params.pairs_per_micro_batch > 1:
        keys.append("lower training.micro_batch_size (batch_size stays: gradients accumulate)")
    keys.append("lower training.max_length")
    return ", or ".join(keys)


def measure_training(
    model_cfg: Mapping[str, Any], params: Any, device: str, steps: int = MEASURED_STEPS
) -> tuple[dict[str, Any], Any]:
    """Load the backbone as training does and time ``steps`` optimisation steps after a warm-up step.

    Returns the measurements (``tokens_per_second``, and on CUDA ``peak_memory_gib``) and the tokenizer.
    """
    import torch

    from divpref.common.constants import BT
    from divpref.models.methods import get_method
    from divpref.training.loop import load_training_model
    from divpref.training.params import resolve_bf16
    from divpref.training.steps import accumulate_step_gradients, trainable_parameters

    method = get_method(BT)
    model, tokenizer = load_training_model(model_cfg, method.head_outputs, params, device)
    torch_device = next(model.parameters()).device
    bf16 = resolve_bf16(params.bf16, torch_device.type)
    optimizer = torch.optim.AdamW(
        trainable_parameters(model), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    data = random_pairs(len(tokenizer), params.batch_size * (steps + 1), params.max_length, params.seed)
    targets = {
        "a_preferred": np.random.default_rng(params.seed).integers(0, 2, len(data.ids_a)).astype(np.float32)
    }
    model.train()

    def step(index: int) -> None:
        rows = np.arange(index * params.batch_size, (index + 1) * params.batch_size)
        accumulate_step_gradients(
            model,
            method,
            data,
            targets,
            rows,
            params.pairs_per_micro_batch,
            tokenizer.pad_token_id,
            torch_device,
            bf16,
        )
        if params.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(trainable_parameters(model), params.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    cuda = torch_device.type == "cuda"
    try:
        step(0)
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        for index in range(1, steps + 1):
            step(index)
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
    except torch.OutOfMemoryError as error:
        raise GpuCheckError(
            f"gpu_check: a training step of {model_cfg['name_or_path']} ran out of GPU memory (training."
            f"micro_batch_size {params.pairs_per_micro_batch}, training.max_length {params.max_length}, "
            f"training.gradient_checkpointing {str(params.gradient_checkpointing).lower()}): "
            f"{memory_advice(params)}; {error}"
        ) from error
    tokens = steps * 2 * params.batch_size * params.max_length
    measured: dict[str, Any] = {"tokens_per_second": tokens / elapsed, "step_seconds": elapsed / steps}
    if cuda:
        from divpref.training.memory import GIB

        measured["peak_memory_gib"] = {
            "allocated": torch.cuda.max_memory_allocated(torch_device) / GIB,
            "reserved": torch.cuda.max_memory_reserved(torch_device) / GIB,
        }
    return measured, tokenizer


def grid_hours(runs: Sequence[Mapping[str, Any]], tokenizer: Any, tokens_per_second: float) -> float:
    """GPU-hours of every run (``train``, ``dev``, ``training``, ``seeds``) without early stopping."""
    import polars as pl

    from divpref.training.gpu_hours import hours, plain_tokens_per_second, run_cost
    from divpref.training.params import TrainingParams

    total = 0.0
    for run in runs:
        params = TrainingParams.from_mapping(run["training"])
        cost = run_cost(pl.read_parquet(run["train"]), pl.read_parquet(run["dev"]), tokenizer, params)
        total += hours(
            cost,
            params.max_epochs,
            int(run["seeds"]),
            plain_tokens_per_second(tokens_per_second, params.gradient_checkpointing),
        )
    return total


def run_gpu_check(
    model_cfg: Mapping[str, Any],
    training: Mapping[str, Any],
    runs: Sequence[Mapping[str, Any]] = (),
    gpus_requested: int = 0,
    steps: int = MEASURED_STEPS,
) -> dict[str, Any]:
    """The whole check (module docstring); raises :class:`GpuCheckError` on the first failure."""
    import torch

    from divpref.common.devices import ALLOW_NO_VISIBLE_GPU, set_deterministic
    from divpref.training import memory
    from divpref.training.params import TrainingParams

    params = TrainingParams.from_mapping({k: v for k, v in training.items() if k != "seeds"})
    started = time.perf_counter()
    torch_cuda = torch.version.cuda
    driver = nvidia_driver()
    cuda = torch.cuda.is_available()
    if gpus_requested > 0 and not cuda and os.environ.get(ALLOW_NO_VISIBLE_GPU) != "1":
        raise GpuCheckError(no_gpu_message(gpus_requested, torch.__version__, torch_cuda, driver))
    if cuda and torch.cuda.device_count() < params.data_parallel:
        raise GpuCheckError(
            f"gpu_check: training.data_parallel is {params.data_parallel} but this job sees "
            f"{torch.cuda.device_count()} GPU(s): ask for that many GPUs on one node (profiles/slurm), "
            "or lower training.data_parallel"
        )
    set_deterministic(params.deterministic)
    result: dict[str, Any] = {
        "device": "cuda" if cuda else "cpu",
        "gpu_name": None,
        "gpu_memory_gib": None,
        "torch_cuda": torch_cuda if cuda else None,
        "driver": driver if cuda else None,
        "int8_ok": None,
        "nccl_ok": None,
        "torch": torch.__version__,
        "model": str(model_cfg["name_or_path"]),
        "load_in_8bit": bool(model_cfg.get("load_in_8bit", False)),
        "micro_batch_size": params.pairs_per_micro_batch,
        "batch_size": params.batch_size,
        "max_length": params.max_length,
        "gradient_checkpointing": params.gradient_checkpointing,
        "data_parallel": params.data_parallel,
        "steps": steps,
    }
    if cuda:
        properties = torch.cuda.get_device_properties(0)
        result["gpu_name"] = properties.name
        result["gpu_memory_gib"] = properties.total_memory / memory.GIB
        result["int8_ok"] = check_int8("cuda")
        if not result["int8_ok"]:
            raise GpuCheckError(
                f"gpu_check: bitsandbytes' int8 matmul on {properties.name} (CUDA {torch_cuda}, driver "
                f"{driver}) "
                f"differs from fp32 by more than {INT8_TOLERANCE:.0%} or failed (the log has the errors): "
                "check that the installed bitsandbytes has kernels for this GPU and CUDA build, or set "
                "model.load_in_8bit: false"
            )
        if params.data_parallel > 1:
            result["nccl_ok"] = check_all_reduce(params.data_parallel, "nccl")
            if not result["nccl_ok"]:
                raise GpuCheckError(
                    f"gpu_check: an NCCL all-reduce over {params.data_parallel} GPUs failed (the log has the "
                    "error): check the node's NCCL setup (NCCL_DEBUG=INFO shows why; NCCL_P2P_DISABLE=1 is a "
                    "common workaround), or set training.data_parallel: 1"
                )
    predicted = memory.predicted_peak(model_cfg, params)
    result["predicted_peak_gib"] = None if predicted is None else predicted / memory.GIB
    measured, tokenizer = measure_training(model_cfg, params, "cuda:0" if cuda else "cpu", steps)
    result["peak_memory_gib"] = measured.get("peak_memory_gib")
    result["tokens_per_second"] = measured["tokens_per_second"]
    result["step_seconds"] = measured["step_seconds"]
    result["grid_gpu_hours"] = grid_hours(runs, tokenizer, measured["tokens_per_second"])
    result["seconds"] = time.perf_counter() - started
    log_memory(result)
    if cuda:
        peak = result["peak_memory_gib"]["reserved"] * memory.GIB
        total = result["gpu_memory_gib"] * memory.GIB
        if peak > total:
            raise GpuCheckError(
                f"gpu_check: measured peak {peak / memory.GIB:.1f} GiB exceeds the GPU's "
                f"{total / memory.GIB:.1f} GiB: {memory_advice(params)}"
            )
    return result


def log_memory(result: Mapping[str, Any]) -> None:
    """The log line comparing measured and predicted memory (and the throughput)."""
    peak, predicted = result["peak_memory_gib"], result["predicted_peak_gib"]
    measured = (
        "no GPU memory measured (CPU)"
        if peak is None
        else f"measured peak {peak['allocated']:.2f} GiB allocated, {peak['reserved']:.2f} GiB reserved"
    )
    prediction = (
        "no prediction (the memory model covers 8-bit backbones)"
        if predicted is None
        else (f"predicted {predicted:.2f} GiB")
    )
    verdict = ""
    if peak is not None and predicted is not None:
        verdict = (
            "; the memory model takes the measured figure"
            if peak["reserved"] > predicted
            else "; the prediction covers the measurement"
        )
    log.info(
        "gpu_check on %s: %s vs %s%s; %.0f training tokens/s, grid %.3g GPU-hours",
        result["device"],
        measured,
        prediction,
        verdict,
        result["tokens_per_second"],
        result["grid_gpu_hours"],
    )
