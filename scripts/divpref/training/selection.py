"""Checkpoint selection: the best dev evaluation of a training log, exported as a PEFT adapter folder."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from divpref.models.loading import write_head_info
from divpref.training.checkpoints import ADAPTER_DIR

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
ADAPTER_CONFIG = "adapter_config.json"
PROVENANCE_FILE = "download_provenance.json"  # divpref.data.sources: a downloaded backbone's resolved commit


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


def base_model_reference(configured: str, loaded_from: str | Path) -> tuple[str, str | None]:
    """``(base_model_name_or_path, revision)`` of an exported adapter.

    ``configured`` is config ``model.name_or_path`` (a hub id, or a local folder as configured);
    ``loaded_from`` is the folder training loaded. A downloaded backbone's folder holds
    ``download_provenance.json``: then the revision is the commit it resolved to. The download folder itself
    is never named.
    """
    provenance = Path(loaded_from) / PROVENANCE_FILE
    if provenance.is_file():
        record = json.loads(provenance.read_text())
        return configured, record.get("resolved_commit") or record.get("revision")
    return configured, None


def write_adapter_config(folder: Path, base_model: str, revision: str | None) -> None:
    """Rewrite ``adapter_config.json``: the base model as configured, its revision, sorted target modules.

    peft writes ``target_modules`` from a set (order depends on the hash seed); sorted, with sorted keys, the
    file is the same bytes in every run.
    """
    path = folder / ADAPTER_CONFIG
    settings = json.loads(path.read_text())
    settings["base_model_name_or_path"] = base_model
    settings["revision"] = revision
    for key in ("target_modules", "modules_to_save"):
        if isinstance(settings.get(key), list):
            settings[key] = sorted(settings[key])
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")


def export_adapter(
    checkpoint: str | Path,
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    head_outputs: int,
    pad_token_id: int,
    compute_dtype: str = "float32",
    base_model: str | None = None,
    revision: str | None = None,
) -> Path:
    """Copy a checkpoint's PEFT adapter plus the tokenizer into ``out_dir`` and record the head kwargs.

    The result loads with
    ``peft.AutoPeftModelForSequenceClassification.from_pretrained(out_dir, num_labels=...)``
    (or :func:`divpref.models.loading.load_for_inference`); ``adapter_config.json`` names ``base_model``
    (default: the base the checkpoint recorded) at ``revision`` (:func:`base_model_reference`).
    """
    source = Path(checkpoint) / ADAPTER_DIR
    missing = [name for name in ADAPTER_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"checkpoint adapter {source} lacks {missing}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        shutil.copyfile(source / name, out_dir / name)
    if base_model is None:
        base_model = json.loads((source / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]
    write_adapter_config(out_dir, base_model, revision)
    for item in Path(tokenizer_dir).iterdir():
        if item.is_file():
            shutil.copyfile(item, out_dir / item.name)
    write_head_info(out_dir, head_outputs, pad_token_id, compute_dtype)
    return out_dir
