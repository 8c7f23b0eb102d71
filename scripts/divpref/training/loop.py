"""Our reward-model training loop: seeded, resumable, evaluated and checkpointed every fraction of an epoch.

Speed levers over a generic trainer: every distinct (prompt, response) is tokenized once; batches are grouped
by length and padded only to their own longest sequence (:mod:`divpref.training.batching`); both responses of
a batch go through ONE forward pass; bf16 autocast on GPUs that support it (:mod:`divpref.training.steps`).

Memory and scale: an optimisation step of ``batch_size`` pairs runs as micro-batches of ``micro_batch_size``
pairs whose gradients accumulate, optionally with activation checkpointing, over ``data_parallel`` processes
(:mod:`divpref.training.distributed`). None of the three settings changes the gradient, only the
floating-point summation order; they are left out of the fingerprint, so a retry with a smaller
``micro_batch_size`` resumes from the checkpoints of the failed attempt.

A run's checkpoints live in a folder named by its fingerprint (:mod:`divpref.training.checkpoints`): a changed
condition starts afresh, while a rerun of an interrupted job resumes from its latest complete checkpoint and
ends bit-identically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from divpref.common.atomic_io import atomic_path
from divpref.common.devices import compute_device
from divpref.models.methods import RewardMethod
from divpref.training import distributed, tracking
from divpref.training.batching import TrainInputs, encode_pairs, epoch_batches, read_trainset
from divpref.training.checkpoints import (
    TOKENIZER_DIR,
    capture_rng_state,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    run_fingerprint,
    save_checkpoint,
    seed_everything,
)
from divpref.training.distributed import SINGLE_PROCESS, Parallel
from divpref.training.params import TrainingParams, linear_schedule, make_schedule, resolve_bf16
from divpref.training.steps import accumulate_step_gradients, evaluate, trainable_parameters

log = logging.getLogger(__name__)


def load_training_model(model_cfg: dict, head_outputs: int, params, device):
    """The seeded backbone with its reward head, loaded for training (8-bit + LoRA as configured) on
    `device`: what a training run and the GPU check train."""
    from divpref.models.loading import load_backbone

    seed_everything(params.seed)
    model, tokenizer = load_backbone(
        model_cfg,
        head_outputs,
        for_training=True,
        gradient_checkpointing=params.gradient_checkpointing,
        device=device,
    )
    if not model_cfg.get("load_in_8bit", False):
        model.to(device)
    return model, tokenizer


def evaluations_without_improvement(curve: Sequence[Mapping[str, Any]], method: RewardMethod) -> int:
    """Evaluations since the best of ``curve`` (by the method's selection metric; 0 if the last is best)."""
    best_index, best_value = None, math.nan
    for index, entry in enumerate(curve):
        value = entry.get(method.selection_metric)
        value = math.nan if value is None else float(value)
        if best_index is None or method.is_better(value, best_value):
            best_index, best_value = index, value
    return 0 if best_index is None else len(curve) - 1 - best_index


def should_stop_early(curve: Sequence[Mapping[str, Any]], method: RewardMethod, patience: int | None) -> bool:
    """True once ``patience`` evaluations in a row did not improve on the best (``None``: never)."""
    return patience is not None and evaluations_without_improvement(curve, method) >= patience


def train_loop(
    model: Any,
    method: RewardMethod,
    inputs: TrainInputs,
    params: TrainingParams,
    run_dir: Path,
    pad_id: int,
    progress: bool = True,
    parallel: Parallel = SINGLE_PROCESS,
    bf16: bool | None = None,
    tracking_spec: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` (already seeded and wrapped) and return the log: schedule, curve, checkpoint folder.

    Resumes from the latest complete checkpoint in ``run_dir``. The curve holds one entry per evaluation:
    step, epoch, mean train loss since the previous evaluation, the dev metrics, and the checkpoint folder.
    With ``params.early_stopping_patience`` the run stops after that many evaluations without improvement.
    Only rank 0 writes checkpoints and logs to the tracker (``tracking_spec``, with the run's ``settings``;
    :mod:`divpref.training.tracking`); every process returns the same log.
    """
    import torch
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    bf16 = resolve_bf16(params.bf16, device.type) if bf16 is None else bf16
    schedule = make_schedule(len(inputs.train.ids_a), params)
    optimizer = torch.optim.AdamW(
        trainable_parameters(model), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_schedule(schedule.total_steps, params.warmup_ratio)
    )
    eval_steps = set(schedule.eval_steps())
    eval_batch = params.eval_batch_size or 2 * params.batch_size

    state: dict[str, Any] = {"step": 0, "curve": []}
    resumed_from = None
    if parallel.is_main:
        for leftover in run_dir.glob(
            ".step*.tmp-*"
        ):  # a checkpoint being written when the process was killed
            shutil.rmtree(leftover, ignore_errors=True)
    latest = latest_checkpoint(run_dir)
    distributed.barrier(parallel)
    if latest is not None:
        state = load_checkpoint(latest, model, optimizer, scheduler, parallel.rank)
        resumed_from = state["step"]
        log.info("resuming from %s (step %d of %d)", latest, state["step"], schedule.total_steps)
    trained = distributed.wrap_model(model, parallel)
    monitor = tracking.open_monitor(
        tracking_spec,
        is_main=parallel.is_main,
        fingerprint=run_dir.name,
        resumed_from=resumed_from,
        settings=settings or {"params": dataclasses.asdict(params), "method": method.name},
        selection_metric=method.selection_metric,
        total_steps=schedule.total_steps,
        ids_a=inputs.train.ids_a,
        ids_b=inputs.train.ids_b,
    )

    lengths = inputs.train.lengths
    loss_sum, loss_count, pairs_done = 0.0, 0, 0
    stopped_early = should_stop_early(state["curve"], method, params.early_stopping_patience)
    started = time.perf_counter()
    model.train()
    bar = tqdm(
        total=schedule.total_steps,
        initial=state["step"],
        desc="train",
        disable=not (progress and parallel.is_main),
        mininterval=5,
    )
    epoch_cache: dict[int, list[np.ndarray]] = {}
    for step in range(state["step"], schedule.total_steps):
        if stopped_early:
            break
        epoch, within = divmod(step, schedule.steps_per_epoch)
        if epoch not in epoch_cache:
            epoch_cache = {epoch: epoch_batches(lengths, params.batch_size, params.seed, epoch)}
        rows = epoch_cache[epoch][within]
        loss = accumulate_step_gradients(
            trained,
            method,
            inputs.train,
            inputs.train_targets,
            rows,
            params.pairs_per_micro_batch,
            pad_id,
            device,
            bf16,
            parallel,
        )
        if not math.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss {loss} at step {step + 1}")
        if params.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(trainable_parameters(model), params.max_grad_norm)
        optimizer.step()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += loss
        loss_count += 1
        pairs_done += len(rows)
        bar.update(1)
        done = step + 1
        monitor.on_step(done, loss, lr, rows)
        if done in eval_steps:
            metrics = evaluate(
                model, method, inputs.dev, inputs.dev_targets, eval_batch, pad_id, device, bf16, parallel
            )
            entry = {
                "step": done,
                "epoch": done / schedule.steps_per_epoch,
                "train_loss": loss_sum / loss_count,
                **metrics,
                "checkpoint": checkpoint_name(done),
            }
            state = {"step": done, "curve": [*state["curve"], entry]}
            rng_states = distributed.gather_objects(capture_rng_state(), parallel)
            if parallel.is_main:
                save_checkpoint(run_dir, done, model, optimizer, scheduler, state, rng_states)
                log.info("eval %s", json.dumps(entry))
                monitor.on_eval(entry)
            distributed.barrier(parallel)
            bar.set_postfix({method.selection_metric: f"{metrics[method.selection_metric]:.4f}"})
            loss_sum, loss_count = 0.0, 0
            stopped_early = should_stop_early(state["curve"], method, params.early_stopping_patience)
            if stopped_early:
                log.info(
                    "early stopping at step %d: %d evaluations without improvement of %s",
                    done,
                    params.early_stopping_patience,
                    method.selection_metric,
                )
    bar.close()
    monitor.close()
    elapsed = time.perf_counter() - started
    return {
        "method": method.name,
        "selection_metric": method.selection_metric,
        "greater_is_better": method.greater_is_better,
        "params": dataclasses.asdict(params),
        "steps_per_epoch": schedule.steps_per_epoch,
        "total_steps": schedule.total_steps,
        "eval_every_steps": schedule.eval_every_steps,
        "n_train_rows": len(inputs.train.ids_a),
        "n_dev_rows": len(inputs.dev.ids_a),
        "checkpoint_dir": str(run_dir),
        "curve": state["curve"],
        "resumed_from_step": resumed_from,
        "stopped_early": stopped_early,
        "compute_dtype": "bfloat16" if bf16 else "float32",
        "data_parallel": parallel.world_size,
        "timing": {"seconds": elapsed, "pairs_per_second": pairs_done / elapsed if elapsed > 0 else None},
    }


def train_reward_model(
    train_path: str | Path,
    dev_path: str | Path,
    method: RewardMethod,
    model_cfg: Mapping[str, Any],
    params: TrainingParams,
    checkpoint_root: str | Path,
    progress: bool = True,
    tracking_spec: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything between the trainset files and the training log (see :func:`train_loop`).

    Under torchrun (``WORLD_SIZE > 1``) this process joins the process group and trains its share; only
    rank 0 writes into the run folder. ``tracking_spec`` (:func:`divpref.training.tracking.resolve_tracking`)
    names the run's tracker; without it nothing is tracked.
    """
    import torch

    parallel = distributed.from_environment()
    distributed.init_process_group(parallel)
    fingerprint = run_fingerprint(params, model_cfg, method.fingerprint_key, [train_path, dev_path])
    run_dir = Path(checkpoint_root) / fingerprint
    if parallel.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.json").write_text(
            json.dumps(
                {
                    "params": dataclasses.asdict(params),
                    "model": model_cfg,
                    "method": method.name,
                    "method_options": dict(method.options),
                    "data": [str(train_path), str(dev_path)],
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
    distributed.barrier(parallel)
    model, tokenizer = load_training_model(
        model_cfg, method.head_outputs, params, compute_device(parallel.local_rank)
    )
    if parallel.is_main and not (run_dir / TOKENIZER_DIR).is_dir():
        with atomic_path(run_dir / TOKENIZER_DIR) as tmp:
            tokenizer.save_pretrained(tmp)
    train_frame, train_targets = read_trainset(train_path, method)
    dev_frame, dev_targets = read_trainset(dev_path, method)
    inputs = TrainInputs(
        train=encode_pairs(train_frame, tokenizer, params.max_length),
        train_targets=train_targets,
        dev=encode_pairs(dev_frame, tokenizer, params.max_length),
        dev_targets=dev_targets,
    )
    log.info(
        "device %s, threads %d, process %d of %d, micro-batch %d of %d pairs, %d train rows, %d dev rows, "
        "run dir %s",
        next(model.parameters()).device,
        torch.get_num_threads(),
        parallel.rank + 1,
        parallel.world_size,
        params.pairs_per_micro_batch,
        params.batch_size,
        train_frame.height,
        dev_frame.height,
        run_dir,
    )
    settings = {
        "method": method.name,
        "method_options": dict(method.options),
        "model": dict(model_cfg),
        "params": dataclasses.asdict(params),
        "data": [str(train_path), str(dev_path)],
        "fingerprint": fingerprint,
    }
    result = train_loop(
        model,
        method,
        inputs,
        params,
        run_dir,
        tokenizer.pad_token_id,
        progress=progress,
        parallel=parallel,
        tracking_spec=tracking_spec,
        settings=settings,
    )
    result["fingerprint"] = fingerprint
    result["tokenizer_dir"] = str(run_dir / TOKENIZER_DIR)
    result["base_model"] = str(model_cfg["name_or_path"])
    result["head_outputs"] = method.head_outputs
    result["pad_token_id"] = tokenizer.pad_token_id
    return result
