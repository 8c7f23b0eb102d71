"""Live tracking of a training run: TensorBoard, Weights & Biases or MLflow, and the job log's progress line.

Config block ``tracking:`` (:func:`resolve_tracking`): ``backend`` is ``tensorboard`` (default), ``wandb``,
``mlflow`` or ``none``, plus the backend's own options. Each backend is its own library
(``torch.utils.tensorboard``, ``wandb``, ``mlflow``); wandb and mlflow are optional extras, checked when the
config loads (:func:`check_backend_installed`).

What one run logs (rank 0 only; :class:`RunMonitor`):
* ``train/loss`` and ``train/lr`` at every optimisation step (the step's loss and the learning rate it used);
* at each evaluation, every dev metric of the training log's curve entry under its own name (``accuracy``,
  ``mean_margin``, ...), at the same optimisation step;
* the run's resolved settings once, as text (TensorBoard), as the run config (W&B) or as params (MLflow).

One training run is one tracker run, named ``{dataset}/{condition}/seed{seed}`` and grouped by condition. A
resumed job continues its tracker run: the points the tracker already holds, tag by tag (also those the
killed job logged after its last checkpoint), are not written again. A fresh start (a new fingerprint) starts
the tracker run afresh.

No torch at module level: the Snakefile's config check imports this module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BACKENDS = ("tensorboard", "wandb", "mlflow", "none")
DEFAULT_BACKEND = "tensorboard"
BACKEND_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
"""The package each backend imports (wandb and mlflow are optional extras)."""
PIP_NAMES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow-skinny"}
TENSORBOARD_DIR = "tensorboard"
"""Folder of a run's event files, inside ``results/train/{dataset}/{condition}/seed{seed}/``."""
LOSS_TAG, LR_TAG = "train/loss", "train/lr"
CURVE_BOOKKEEPING = ("step", "epoch", "train_loss", "checkpoint")
"""Curve-entry fields that are not dev metrics."""
FINGERPRINT_FILE = "fingerprint.txt"


def run_name(dataset: str, condition: str, seed: int | str) -> str:
    """The tracker run's name: ``{dataset}/{condition}/seed{seed}``."""
    return f"{dataset}/{condition}/seed{seed}"


def check_backend_installed(tracking: Mapping[str, Any], key: str = "tracking.backend") -> str:
    """The configured backend; a ``ValueError`` naming the package when its library is not installed."""
    backend = str(tracking.get("backend", DEFAULT_BACKEND))
    if backend not in BACKENDS:
        raise ValueError(f"config key {key}: unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    package = BACKEND_PACKAGES.get(backend)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ValueError(
            f"config key {key}: {backend!r} needs the Python package {package!r}, which is not installed "
            f"(pip install {PIP_NAMES[backend]}, or choose another backend)"
        )
    return backend


def resolve_tracking(
    tracking: Mapping[str, Any], dataset: str, condition: str, seed: int | str, run_folder: str
) -> dict[str, Any]:
    """One run's tracking spec (JSON-serialisable): backend, options, run name, group and folders."""
    return {
        "backend": str(tracking.get("backend", DEFAULT_BACKEND)),
        "options": {k: v for k, v in tracking.items() if k != "backend"},
        "name": run_name(dataset, condition, seed),
        "group": condition,
        "run_folder": run_folder,
        "tensorboard_dir": str(Path(run_folder) / TENSORBOARD_DIR),
    }


def dev_metrics(entry: Mapping[str, Any]) -> dict[str, float]:
    """The dev metrics of one curve entry (every field but step, epoch, train_loss and checkpoint)."""
    return {
        key: float("nan") if value is None else float(value)
        for key, value in entry.items()
        if key not in CURVE_BOOKKEEPING
    }


def flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"a.b": value}`` (lists as JSON text), for MLflow params."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(list(value))
        else:
            flat[name] = value
    return flat


class Backend:
    """A tracker: ``logged_through`` is the last step it already holds (0 on a fresh run)."""

    logged_through = 0

    def last_logged(self, tag: str) -> int:
        """The last step of ``tag`` the tracker already holds. A job killed mid-run may have written the loss
        of a step but not the dev metrics of its evaluation, so each tag counts on its own where the backend
        can tell (TensorBoard, MLflow). W&B resumes a run at one step for all tags (its ``starting_step``):
        a kill in that gap leaves that one evaluation out of the W&B run (never out of train_log.json)."""
        return self.logged_through

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Write ``values`` at ``step``."""

    def flush(self) -> None:
        """Make what was written visible to readers."""

    def close(self) -> None:
        """Finish the run."""


class TensorBoardBackend(Backend):
    """``torch.utils.tensorboard.SummaryWriter`` event files in the run's ``tensorboard/`` folder."""

    def __init__(self, spec: Mapping[str, Any], fingerprint: str, resumed: bool, settings: Mapping) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = Path(spec["tensorboard_dir"])
        marker = folder / FINGERPRINT_FILE
        same_run = resumed and marker.is_file() and marker.read_text().strip() == fingerprint
        if not same_run and folder.exists():
            shutil.rmtree(folder)  # a fresh start: the old run's points are not this run's
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(fingerprint + "\n")
        self.last_steps = last_logged_steps(folder) if same_run else {}
        self.logged_through = self.last_steps.get(LOSS_TAG, 0)
        self.writer = SummaryWriter(log_dir=str(folder), flush_secs=30)
        if not same_run:
            text = json.dumps(settings, indent=2, default=str)
            self.writer.add_text("config", "```\n" + text + "\n```", global_step=0)

    def last_logged(self, tag: str) -> int:
        return self.last_steps.get(tag, 0)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, global_step=step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def last_logged_steps(folder: Path) -> dict[str, int]:
    """The highest step of every scalar tag in the event files of ``folder`` (TensorBoard's reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {
        tag: max((event.step for event in accumulator.Scalars(tag)), default=0)
        for tag in accumulator.Tags().get("scalars", [])
    }


def tracker_run_id(spec: Mapping[str, Any], fingerprint: str) -> str:
    """A stable id of one training run (name and fingerprint): a resumed job finds its tracker run by it."""
    return hashlib.sha256(f"{spec['name']}@{fingerprint}".encode()).hexdigest()[:16]


class WandbBackend(Backend):
    """A W&B run (``project``, ``entity``, ``mode``: ``offline`` by default: compute nodes are offline)."""

    def __init__(self, spec: Mapping[str, Any], fingerprint: str, resumed: bool, settings: Mapping) -> None:
        import wandb

        options = spec["options"]
        self.run = wandb.init(
            project=options.get("project", "divpref"),
            entity=options.get("entity"),
            mode=options.get("mode", "offline"),
            dir=options.get("dir", spec["run_folder"]),
            name=spec["name"],
            group=spec["group"],
            id=tracker_run_id(spec, fingerprint),
            resume="allow",
            config=dict(settings),
        )
        # Online, a resumed run starts after its last step; offline, W&B's sync keeps a step's first point.
        self.logged_through = max(int(getattr(self.run, "starting_step", 0) or 0) - 1, 0)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log(dict(values), step=step)

    def close(self) -> None:
        self.run.finish()


class MlflowBackend(Backend):
    """An MLflow run (``tracking_uri``, default ``mlruns``: a local file store; ``experiment``)."""

    def __init__(self, spec: Mapping[str, Any], fingerprint: str, resumed: bool, settings: Mapping) -> None:
        import os

        options = spec["options"]
        uri = str(options.get("tracking_uri", "mlruns"))
        if "://" not in uri or uri.startswith("file:"):
            # MLflow 3 keeps the local file store but asks for this opt-in; it needs no database.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            if "://" not in uri:
                uri = Path(uri).resolve().as_uri()
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        self.last_steps: dict[str, int] = {}
        name = str(options.get("experiment", "divpref"))
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id if experiment is not None else self.client.create_experiment(name)
        )
        key = tracker_run_id(spec, fingerprint)
        found = self.client.search_runs([experiment_id], filter_string=f"tags.divpref_run = '{key}'")
        self.continued = bool(found)
        if found:
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            self.logged_through = self.last_logged(LOSS_TAG)
        else:
            tags = {"divpref_run": key, "condition": spec["group"], "mlflow.runName": spec["name"]}
            self.run_id = self.client.create_run(experiment_id, run_name=spec["name"], tags=tags).info.run_id
            for param, value in flatten(settings).items():
                self.client.log_param(self.run_id, param, str(value)[:6000])

    def last_logged(self, tag: str) -> int:
        if not self.continued:
            return 0
        if tag not in self.last_steps:
            history = self.client.get_metric_history(self.run_id, tag)
            self.last_steps[tag] = max((metric.step for metric in history), default=0)
        return self.last_steps[tag]

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        stamp = int(time.time() * 1000)
        from mlflow.entities import Metric

        metrics = [Metric(key, float(value), stamp, step) for key, value in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


BACKEND_CLASSES = {"tensorboard": TensorBoardBackend, "wandb": WandbBackend, "mlflow": MlflowBackend}


def open_backend(
    spec: Mapping[str, Any] | None, fingerprint: str, resumed: bool, settings: Mapping[str, Any]
) -> Backend:
    """The backend of ``spec`` (``None`` or ``backend: none``: nothing is tracked)."""
    if not spec or spec.get("backend", DEFAULT_BACKEND) == "none":
        return Backend()
    backend = check_backend_installed(spec)
    return BACKEND_CLASSES[backend](spec, fingerprint, resumed, settings)


def format_duration(seconds: float) -> str:
    """``1h02m03s`` / ``2m03s`` / ``3s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress_line(
    step: int,
    total_steps: int,
    epoch: float,
    metric: str,
    value: float,
    tokens_per_second: float,
    eta_seconds: float,
) -> str:
    """The job log's line at an evaluation: step, epoch, dev metric, tokens/s and the run's ETA."""
    return (
        f"progress step {step}/{total_steps} epoch {epoch:.2f} dev {metric} {value:.4f} "
        f"{tokens_per_second:,.0f} tokens/s ETA {format_duration(eta_seconds)}"
    )


@dataclass
class RunMonitor:
    """What the training loop reports to: the tracker (rank 0) and the progress line at each evaluation.

    ``row_tokens`` holds each training row's token count (both responses), for tokens/s.
    """

    backend: Backend
    selection_metric: str
    total_steps: int
    row_tokens: Sequence[int]
    started: float = field(default_factory=time.perf_counter)
    start_step: int = 0
    tokens: int = 0

    def on_step(self, step: int, loss: float, lr: float, rows: Sequence[int]) -> None:
        """After optimisation step ``step`` (1-based): its loss and learning rate, and the rows it used."""
        self.tokens += int(sum(self.row_tokens[row] for row in rows))
        self.write_new(step, {LOSS_TAG: loss, LR_TAG: lr})

    def write_new(self, step: int, values: Mapping[str, float]) -> None:
        """Write the values of ``step`` that the tracker does not hold yet (a resumed job redoes steps)."""
        new = {tag: value for tag, value in values.items() if step > self.backend.last_logged(tag)}
        if new:
            self.backend.scalars(step, new)

    def on_eval(self, entry: Mapping[str, Any]) -> None:
        """After an evaluation (its checkpoint written): the dev metrics, and the progress line."""
        step = int(entry["step"])
        self.write_new(step, dev_metrics(entry))
        self.backend.flush()
        elapsed = time.perf_counter() - self.started
        done = step - self.start_step
        rate = self.tokens / elapsed if elapsed > 0 else 0.0
        eta = elapsed / done * (self.total_steps - step) if done > 0 else 0.0
        value = entry.get(self.selection_metric)
        log.info(
            progress_line(
                step,
                self.total_steps,
                float(entry["epoch"]),
                self.selection_metric,
                float("nan") if value is None else float(value),
                rate,
                eta,
            )
        )

    def close(self) -> None:
        self.backend.close()


def open_monitor(
    spec: Mapping[str, Any] | None,
    *,
    is_main: bool,
    fingerprint: str,
    resumed_from: int | None,
    settings: Mapping[str, Any],
    selection_metric: str,
    total_steps: int,
    ids_a: Sequence[Sequence[int]],
    ids_b: Sequence[Sequence[int]],
) -> RunMonitor:
    """The loop's :class:`RunMonitor`; only rank 0 tracks (other ranks get a backend that writes nothing)."""
    backend = open_backend(spec, fingerprint, resumed_from is not None, settings) if is_main else Backend()
    tokens = [len(a) + len(b) for a, b in zip(ids_a, ids_b, strict=True)]
    return RunMonitor(backend, selection_metric, total_steps, tokens, start_step=resumed_from or 0)
