"""Checkpoint selection: the best dev evaluation of a training log, exported as a PEFT adapter folder."""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from divpref.models.loading import write_head_info
from divpref.training.checkpoints import ADAPTER_DIR

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def _metric_value(entry: Mapping[str, Any], metric: str, source: str) -> float:
    if metric not in entry:
        raise ValueError(f"{source}: evaluation at step {entry.get('step')!r} has no metric {metric!r}")
    value = entry[metric]
    return float("nan") if value is None else float(value)


def select_best(
    curve: Sequence[Mapping[str, Any]], metric: str, greater_is_better: bool, source: str = "training log"
) -> Mapping[str, Any]:
    """The curve entry with the best ``metric``; ties go to the earliest step, NaN never wins.

    Raises ``ValueError`` (naming ``source``) for an empty curve or one whose metric is NaN everywhere.
    """
    if not curve:
        raise ValueError(f"{source}: the evaluation curve is empty")
    best: Mapping[str, Any] | None = None
    best_value = math.nan
    for entry in sorted(curve, key=lambda e: int(e["step"])):
        value = _metric_value(entry, metric, source)
        if math.isnan(value):
            continue
        if best is None or (value > best_value if greater_is_better else value < best_value):
            best, best_value = entry, value
    if best is None:
        raise ValueError(f"{source}: metric {metric!r} is NaN at every one of {len(curve)} evaluations")
    return best


def best_record(log_data: Mapping[str, Any], source: str = "training log") -> dict[str, Any]:
    """``best.json`` for a training log: epoch, step, metric name and value, checkpoint, whole curve."""
    metric = log_data["selection_metric"]
    best = select_best(log_data["curve"], metric, bool(log_data["greater_is_better"]), source)
    return {
        "method": log_data["method"],
        "epoch": best["epoch"],
        "step": best["step"],
        "metric": metric,
        "value": best[metric],
        "greater_is_better": log_data["greater_is_better"],
        "mean_margin": best.get("mean_margin"),
        "checkpoint": str(Path(log_data["checkpoint_dir"]) / best["checkpoint"]),
        "fingerprint": log_data.get("fingerprint"),
        "curve": list(log_data["curve"]),
    }


def export_adapter(
    checkpoint: str | Path,
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    head_outputs: int,
    pad_token_id: int,
    compute_dtype: str = "float32",
) -> Path:
    """Copy a checkpoint's PEFT adapter plus the tokenizer into ``out_dir`` and record the head kwargs.

    The result loads with
    ``peft.AutoPeftModelForSequenceClassification.from_pretrained(out_dir, num_labels=...)``
    (or :func:`divpref.models.loading.load_for_inference`); ``adapter_config.json`` names the base model.
    """
    source = Path(checkpoint) / ADAPTER_DIR
    missing = [name for name in ADAPTER_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"checkpoint adapter {source} lacks {missing}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        shutil.copy2(source / name, out_dir / name)
    for item in Path(tokenizer_dir).iterdir():
        if item.is_file():
            shutil.copy2(item, out_dir / item.name)
    write_head_info(out_dir, head_outputs, pad_token_id, compute_dtype)
    return out_dir
