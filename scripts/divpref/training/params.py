"""Training hyperparameters and the step arithmetic they imply: evaluation cadence, learning-rate schedule."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainingParams:
    """Resolved training hyperparameters (config ``training:`` plus the condition's overrides)."""

    seed: int = 0
    learning_rate: float = 5e-5  # paper: 5e-5
    batch_size: int = 16  # pairs per optimisation step (paper: 16)
    max_epochs: float = 10  # paper: at most 10 epochs
    eval_every_epochs: float = 0.25  # dev evaluation + checkpoint cadence, a fraction of ONE epoch
    max_length: int = 1024  # tokens of prompt + response; longer inputs are truncated
    max_steps: int | None = None  # stop after this many optimisation steps (CI); None = max_epochs decides
    bf16: bool | str = "auto"  # bf16 autocast: "auto" = on CUDA GPUs that support bf16, off on CPU
    warmup_ratio: float = 0.0  # linear warm-up share of all steps, then linear decay to 0
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: float = 1.0  # gradient clipping (0 disables)
    eval_batch_size: int | None = None  # pairs per dev batch (default 2 * batch_size)
    micro_batch_size: int | None = (
        None  # pairs per forward/backward; gradients accumulate (default batch_size)
    )
    gradient_checkpointing: bool = False  # non-reentrant activation checkpointing (recompute in backward)
    data_parallel: int = 1  # data-parallel processes (one per GPU, or gloo processes on CPU)
    early_stopping_patience: int | None = None  # evaluations without improvement before stopping; None = off
    deterministic: bool = True  # GPU jobs: deterministic algorithms (warn_only) and CUBLAS_WORKSPACE_CONFIG

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainingParams:
        """Build from a config mapping; ``ValueError`` names unknown keys (``seeds`` is ignored)."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known - {"seeds"})
        if unknown:
            raise ValueError(f"training config: unknown key(s) {unknown}; known: {sorted(known)}")
        params = cls(**{key: value for key, value in values.items() if key in known})
        if params.batch_size < 1 or params.max_length < 2 or params.eval_every_epochs <= 0:
            raise ValueError(f"training config: invalid values in {params}")
        if params.micro_batch_size is not None and params.micro_batch_size < 1:
            raise ValueError(f"training config: micro_batch_size={params.micro_batch_size!r} must be >= 1")
        if params.data_parallel < 1:
            raise ValueError(f"training config: data_parallel={params.data_parallel!r} must be >= 1")
        if params.early_stopping_patience is not None and params.early_stopping_patience < 1:
            raise ValueError(
                f"training config: early_stopping_patience={params.early_stopping_patience!r} "
                "must be >= 1 or null"
            )
        if params.bf16 not in (True, False, "auto"):
            raise ValueError(f"training config: bf16={params.bf16!r} must be true, false or auto")
        return params

    @property
    def pairs_per_micro_batch(self) -> int:
        """``micro_batch_size``, or the whole ``batch_size`` when unset."""
        return self.micro_batch_size or self.batch_size


COST_KEYS = (
    "batch_size",
    "max_length",
    "max_epochs",
    "eval_every_epochs",
    "eval_batch_size",
    "gradient_checkpointing",
    "seed",
)
"""The settings a run's tokens and GPU-hours depend on (divpref.training.gpu_hours): rule gpu_check's grid."""

EXECUTION_ONLY = ("micro_batch_size", "gradient_checkpointing", "data_parallel", "deterministic")
"""Settings that change how a step is computed, not what it computes: not part of the run fingerprint."""


def resolve_bf16(setting: bool | str, device_type: str) -> bool:
    """Whether to autocast to bf16: ``auto`` means on CUDA devices that support bf16 (Ampere and newer)."""
    if setting != "auto":
        return bool(setting)
    if device_type != "cuda":
        return False
    import torch

    return bool(torch.cuda.is_bf16_supported())


@dataclass(frozen=True)
class Schedule:
    """Step arithmetic: evaluation cadence is a fraction of the steps of ONE epoch (not of all steps)."""

    steps_per_epoch: int
    total_steps: int
    eval_every_steps: int

    def eval_steps(self) -> list[int]:
        """Steps after which the dev set is evaluated and a checkpoint written (always includes the last)."""
        steps = list(range(self.eval_every_steps, self.total_steps + 1, self.eval_every_steps))
        if not steps or steps[-1] != self.total_steps:
            steps.append(self.total_steps)
        return steps


def make_schedule(n_rows: int, params: TrainingParams) -> Schedule:
    """The run's :class:`Schedule` for ``n_rows`` training rows."""
    if n_rows < 1:
        raise ValueError("no training rows")
    steps_per_epoch = math.ceil(n_rows / params.batch_size)
    total = math.ceil(params.max_epochs * steps_per_epoch)
    if params.max_steps is not None:
        total = min(total, int(params.max_steps))
    total = max(total, 1)
    every = max(1, round(params.eval_every_epochs * steps_per_epoch))
    return Schedule(steps_per_epoch=steps_per_epoch, total_steps=total, eval_every_steps=every)


def linear_schedule(total_steps: int, warmup_ratio: float) -> Any:
    """LR multiplier: linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0."""
    warmup = round(warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor
