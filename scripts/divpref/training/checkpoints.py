"""Run fingerprints and checkpoint folders: trainable weights, optimizer, scheduler and RNG states.

Checkpoints live in ``<checkpoint_root>/<fingerprint>/step<NNNNNNNN>/`` (``adapter/`` in PEFT format, plus the
trainer state); the fingerprint hashes everything that determines the run, so a changed condition starts
afresh, while a rerun of an interrupted job resumes from its latest complete checkpoint and ends
bit-identically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from divpref.common.atomic_io import atomic_path
from divpref.training.params import EXECUTION_ONLY, TrainingParams

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng_state.pt"
ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"


def file_digest(path: str | Path, full_limit: int = 1 << 26) -> str:
    """sha256 of a file's bytes; above ``full_limit`` bytes only name and size are hashed (8B weights)."""
    path = Path(path)
    digest = hashlib.sha256()
    size = path.stat().st_size
    if size > full_limit:
        digest.update(f"{path.name}:{size}".encode())
        return digest.hexdigest()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backbone_digest(name_or_path: str) -> str | None:
    """Digest of a local model folder's files (None for a hub id, whose revision is in the model config)."""
    folder = Path(name_or_path)
    if not folder.is_dir():
        return None
    entries = [f"{p.relative_to(folder)}={file_digest(p)}" for p in sorted(folder.rglob("*")) if p.is_file()]
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def run_fingerprint(
    params: TrainingParams, model_cfg: Mapping[str, Any], method: str, data_files: Sequence[str | Path]
) -> str:
    """16-hex hash of everything that determines a training run (not the :data:`EXECUTION_ONLY` settings)."""
    determining = {k: v for k, v in dataclasses.asdict(params).items() if k not in EXECUTION_ONLY}
    payload = {
        "params": determining,
        "model": model_cfg,
        "backbone": backbone_digest(str(model_cfg["name_or_path"])),
        "method": method,
        "data": [file_digest(path) for path in data_files],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint written after ``step`` (zero-padded so names sort by step)."""
    return f"step{step:08d}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step (in-progress temporaries are ignored)."""
    complete = [p for p in run_dir.glob("step*") if p.is_dir() and (p / STATE_FILE).is_file()]
    return max(complete, key=lambda p: int(p.name.removeprefix("step")), default=None)


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states, so a resumed run draws the same random numbers."""
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (head and LoRA initialisation, dropout)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_file(rank: int) -> str:
    """RNG state file of process ``rank`` inside a checkpoint (rank 0 keeps the single-process name)."""
    return RNG_FILE if rank == 0 else f"rng_state_rank{rank}.pt"


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    state: Mapping[str, Any],
    rng_states: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``step<N>/`` atomically; drop optimizer states of older checkpoints (only the latest resumes).

    ``rng_states`` holds every process's RNG state in rank order (default: this process's).
    """
    import torch

    target = run_dir / checkpoint_name(step)
    with atomic_path(target) as tmp:
        tmp.mkdir()
        model.save_pretrained(tmp / ADAPTER_DIR)
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / OPTIMIZER_FILE
        )
        for rank, rng_state in enumerate(rng_states or [capture_rng_state()]):
            torch.save(rng_state, tmp / rng_file(rank))
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    for older in run_dir.glob("step*"):
        if older != target and (older / OPTIMIZER_FILE).exists():
            (older / OPTIMIZER_FILE).unlink()
    return target


def load_checkpoint(
    checkpoint: Path, model: Any, optimizer: Any, scheduler: Any, rank: int = 0
) -> dict[str, Any]:
    """Restore trainable weights, optimizer, scheduler and RNG states; return the saved trainer state.

    Process ``rank`` restores its own RNG state, or rank 0's if the checkpoint has none for it.
    """
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint / ADAPTER_DIR / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, weights)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"{checkpoint}: adapter has unexpected keys {unexpected[:5]}")
    # Onto this rank's own device: without map_location every rank would first materialise the state on the
    # GPU it was saved from (GPU 0), which the memory pre-flight does not count.
    device = next(model.parameters()).device
    states = torch.load(checkpoint / OPTIMIZER_FILE, map_location=device, weights_only=False)
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])
    rng_path = checkpoint / rng_file(rank)
    restore_rng_state(
        torch.load(
            rng_path if rng_path.exists() else checkpoint / RNG_FILE, map_location="cpu", weights_only=False
        )
    )
    return json.loads((checkpoint / STATE_FILE).read_text())
