"""Where jobs compute: the one device choice of every stage; a GPU job without a visible GPU fails at once.

Failing at once beats running an 8B model on one CPU thread for hours. torch is imported inside the functions
only.
"""

from __future__ import annotations

import os

ALLOW_NO_VISIBLE_GPU = "DIVPREF_ALLOW_NO_VISIBLE_GPU"
"""Set to 1 where a job's GPUs are placeholders (tests/slurm's fake GPUs): such a job then runs on CPU."""


class NoVisibleGpuError(RuntimeError):
    """The job was given GPUs (resources ``gpu`` > 0) but torch sees fewer than it needs."""


def require_visible_gpus(requested: int, needed: int = 1) -> int:
    """Raise :class:`NoVisibleGpuError` when a job given ``requested`` > 0 GPUs sees fewer than ``needed``.

    Returns the number of visible GPUs. A driver too old for torch's CUDA build shows up here as 0 GPUs.
    """
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if requested <= 0 or os.environ.get(ALLOW_NO_VISIBLE_GPU) == "1":
        return visible
    if visible == 0:
        raise NoVisibleGpuError(
            f"this job was given {requested} GPU(s) but torch {torch.__version__} sees none "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}, torch CUDA build "
            f"{torch.version.cuda!r}): check the node's NVIDIA driver against torch's CUDA build"
        )
    if visible < needed:
        raise NoVisibleGpuError(f"this job needs {needed} GPUs (training.data_parallel) but sees {visible}")
    return visible


def compute_device(local_rank: int | None = None) -> str:
    """``cuda`` when a GPU is visible, else ``cpu``; with ``local_rank``, that process's GPU, ``cuda:<rank>``.

    Scoring and judging pass no rank (their 8-bit loading and device maps key on the plain ``cuda``); training
    passes its data-parallel process's local rank.
    """
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return "cuda" if local_rank is None else f"cuda:{local_rank}"


CUBLAS_WORKSPACE = ":4096:8"
"""cuBLAS' workspace setting for reproducible results (CUDA's documentation: ``:4096:8`` or ``:16:8``)."""


def set_deterministic(enabled: bool) -> bool:
    """With a visible GPU and ``enabled`` (``training.deterministic``): deterministic algorithms; True if set.

    Sets ``CUBLAS_WORKSPACE_CONFIG`` (unless the environment has one) before cuBLAS starts, and
    ``torch.use_deterministic_algorithms(True, warn_only=True)``: an op without a deterministic CUDA kernel
    warns once instead of failing. Call it before the first CUDA computation. CPU kernels are deterministic
    already, so on CPU this does nothing.
    """
    import torch

    if not enabled or not torch.cuda.is_available():
        return False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    return True
