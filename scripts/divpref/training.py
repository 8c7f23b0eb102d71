"""Our reward-model training loop: seeded, resumable, evaluated and checkpointed every fraction of an epoch.

Speed levers over a generic trainer: every distinct (prompt, response) is tokenized once; batches are grouped
by length and padded only to their own longest sequence; both responses of a batch go through ONE forward
pass; optional bf16 autocast.

Checkpoints live in ``<checkpoint_root>/<fingerprint>/step<NNNNNNNN>/`` (``adapter/`` in PEFT format, plus the
trainer state); the fingerprint hashes everything that determines the run, so a changed condition starts
afresh, while a rerun of an interrupted job resumes from its latest complete checkpoint and ends
bit-identically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from divpref.io_utils import atomic_path
from divpref.methods import RewardMethod

if TYPE_CHECKING:
    import polars as pl
    import torch

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng_state.pt"
ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
MEGABATCH_FACTOR = 50
"""Length grouping sorts windows of ``MEGABATCH_FACTOR * batch_size`` shuffled rows by length."""


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
    bf16: bool = False  # bf16 autocast for forward passes
    warmup_ratio: float = 0.0  # linear warm-up share of all steps, then linear decay to 0
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: float = 1.0  # gradient clipping (0 disables)
    eval_batch_size: int | None = None  # pairs per dev batch (default 2 * batch_size)

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
        return params


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


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Row indices of every batch of ``epoch``: a seeded shuffle, grouped by length within megabatch windows.

    Each batch then holds rows of similar length (little padding); batch order is shuffled again so long and
    short batches alternate. A pure function of ``(lengths, batch_size, seed, epoch)``, which makes resuming
    at any step exact.
    """
    rng = np.random.default_rng([seed, epoch])
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    window = batch_size * MEGABATCH_FACTOR
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def batch_at_step(
    lengths: Sequence[int], batch_size: int, seed: int, step: int, steps_per_epoch: int
) -> np.ndarray:
    """Row indices of the batch consumed by optimisation step ``step`` (0-based)."""
    epoch, within = divmod(step, steps_per_epoch)
    return epoch_batches(lengths, batch_size, seed, epoch)[within]


# ---------------------------------------------------------------------------------------------------------
# Tokenization (once per distinct text) and batching


def encode_text(tokenizer: Any, prompt: str, response: str, max_length: int) -> list[int]:
    """Token ids of one (prompt, response), truncated on the right to ``max_length``.

    A tokenizer with a chat template gets a user/assistant conversation; others get the pair encoding
    (e.g. ``[CLS] prompt [SEP] response [SEP]``).
    """
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
        return list(ids)[:max_length]
    return list(tokenizer(prompt, response, truncation=True, max_length=max_length)["input_ids"])


@dataclass
class EncodedPairs:
    """Token ids of responses A and B for every row (texts shared between rows are encoded once)."""

    ids_a: list[list[int]]
    ids_b: list[list[int]]

    @property
    def lengths(self) -> np.ndarray:
        return np.array([max(len(a), len(b)) for a, b in zip(self.ids_a, self.ids_b, strict=True)])


def encode_pairs(frame: pl.DataFrame, tokenizer: Any, max_length: int) -> EncodedPairs:
    """Encode both responses of every row of a trainset frame."""
    cache: dict[tuple[str, str], list[int]] = {}

    def encoded(prompt: str, response: str) -> list[int]:
        key = (prompt, response)
        if key not in cache:
            cache[key] = encode_text(tokenizer, prompt, response, max_length)
        return cache[key]

    prompts = frame["prompt"].to_list()
    ids_a = [encoded(p, r) for p, r in zip(prompts, frame["response_a"].to_list(), strict=True)]
    ids_b = [encoded(p, r) for p, r in zip(prompts, frame["response_b"].to_list(), strict=True)]
    return EncodedPairs(ids_a=ids_a, ids_b=ids_b)


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists to a rectangle: ``(input_ids, attention_mask)`` as int64 arrays."""
    width = max((len(sequence) for sequence in sequences), default=0)
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(sequences), width), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = sequence
        attention[row, : len(sequence)] = 1
    return input_ids, attention


def collate(
    encoded: EncodedPairs, rows: np.ndarray, targets: Mapping[str, np.ndarray], pad_id: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One batch: A rows then B rows, right-padded to the batch's longest sequence, plus the row targets."""
    import torch

    sequences = [encoded.ids_a[i] for i in rows] + [encoded.ids_b[i] for i in rows]
    input_ids, attention = pad_right(sequences, pad_id)
    batch_targets = {name: torch.from_numpy(values[rows]) for name, values in targets.items()}
    inputs = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention)}
    return inputs, batch_targets


# ---------------------------------------------------------------------------------------------------------
# Fingerprint and checkpoint folders


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
    """16-hex hash of everything that determines a training run."""
    payload = {
        "params": dataclasses.asdict(params),
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


# ---------------------------------------------------------------------------------------------------------
# The loop


@dataclass
class TrainInputs:
    """Data of one run, already encoded."""

    train: EncodedPairs
    train_targets: dict[str, np.ndarray]
    dev: EncodedPairs
    dev_targets: dict[str, np.ndarray]


def linear_schedule(total_steps: int, warmup_ratio: float) -> Any:
    """LR multiplier: linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0."""
    warmup = int(round(warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def _autocast(device: torch.device, enabled: bool) -> Any:
    """bf16 autocast on ``device`` when ``enabled`` (a no-op context otherwise)."""
    import torch

    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def forward_pairs(
    model: Any, inputs: Mapping[str, torch.Tensor], bf16: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Head outputs for A and B rows of a collated batch, from one forward pass, in float32."""
    device = inputs["input_ids"].device
    with _autocast(device, bf16):
        logits = model(**inputs).logits
    logits = logits.float()
    half = logits.shape[0] // 2
    return logits[:half], logits[half:]


def evaluate(
    model: Any,
    method: RewardMethod,
    data: EncodedPairs,
    targets: Mapping[str, np.ndarray],
    batch_size: int,
    pad_id: int,
    device: torch.device,
    bf16: bool,
) -> dict[str, float]:
    """The method's dev metrics over the whole dev set (fixed, length-sorted batch order)."""
    import torch

    order = np.argsort(data.lengths, kind="stable")
    outputs_a, outputs_b = [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            inputs, _ = collate(data, rows, {}, pad_id)
            out_a, out_b = forward_pairs(model, {k: v.to(device) for k, v in inputs.items()}, bf16)
            outputs_a.append(out_a.cpu())
            outputs_b.append(out_b.cpu())
    model.train()
    ordered_targets = {name: torch.from_numpy(values[order]) for name, values in targets.items()}
    return method.dev_metrics(torch.cat(outputs_a), torch.cat(outputs_b), ordered_targets)


def trainable_parameters(model: Any) -> list[Any]:
    """Parameters with ``requires_grad`` (LoRA matrices and the head)."""
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


def save_checkpoint(
    run_dir: Path, step: int, model: Any, optimizer: Any, scheduler: Any, state: Mapping[str, Any]
) -> Path:
    """Write ``step<N>/`` atomically; drop optimizer states of older checkpoints (only the latest resumes)."""
    import torch

    target = run_dir / checkpoint_name(step)
    with atomic_path(target) as tmp:
        tmp.mkdir()
        model.save_pretrained(tmp / ADAPTER_DIR)
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / OPTIMIZER_FILE
        )
        torch.save(capture_rng_state(), tmp / RNG_FILE)
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    for older in run_dir.glob("step*"):
        if older != target and (older / OPTIMIZER_FILE).exists():
            (older / OPTIMIZER_FILE).unlink()
    return target


def load_checkpoint(checkpoint: Path, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore trainable weights, optimizer, scheduler and RNG states; return the saved trainer state."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint / ADAPTER_DIR / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, weights)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"{checkpoint}: adapter has unexpected keys {unexpected[:5]}")
    states = torch.load(checkpoint / OPTIMIZER_FILE, weights_only=False)
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])
    restore_rng_state(torch.load(checkpoint / RNG_FILE, weights_only=False))
    return json.loads((checkpoint / STATE_FILE).read_text())


def train_loop(
    model: Any,
    method: RewardMethod,
    inputs: TrainInputs,
    params: TrainingParams,
    run_dir: Path,
    pad_id: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` (already seeded and wrapped) and return the log: schedule, curve, checkpoint folder.

    Resumes from the latest complete checkpoint in ``run_dir``. The curve holds one entry per evaluation:
    step, epoch, mean train loss since the previous evaluation, the dev metrics, and the checkpoint folder.
    """
    import torch
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
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
    for leftover in run_dir.glob(".step*.tmp-*"):  # a checkpoint being written when the process was killed
        shutil.rmtree(leftover, ignore_errors=True)
    latest = latest_checkpoint(run_dir)
    if latest is not None:
        state = load_checkpoint(latest, model, optimizer, scheduler)
        resumed_from = state["step"]
        log.info("resuming from %s (step %d of %d)", latest, state["step"], schedule.total_steps)

    lengths = inputs.train.lengths
    loss_sum, loss_count, pairs_done = 0.0, 0, 0
    started = time.perf_counter()
    model.train()
    bar = tqdm(
        total=schedule.total_steps, initial=state["step"], desc="train", disable=not progress, mininterval=5
    )
    epoch_cache: dict[int, list[np.ndarray]] = {}
    for step in range(state["step"], schedule.total_steps):
        epoch, within = divmod(step, schedule.steps_per_epoch)
        if epoch not in epoch_cache:
            epoch_cache = {epoch: epoch_batches(lengths, params.batch_size, params.seed, epoch)}
        rows = epoch_cache[epoch][within]
        batch, targets = collate(inputs.train, rows, inputs.train_targets, pad_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        targets = {k: v.to(device) for k, v in targets.items()}
        out_a, out_b = forward_pairs(model, batch, params.bf16)
        loss = method.loss(out_a, out_b, targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss {float(loss)} at step {step + 1}")
        loss.backward()
        if params.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(trainable_parameters(model), params.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += float(loss.detach())
        loss_count += 1
        pairs_done += len(rows)
        bar.update(1)
        done = step + 1
        if done in eval_steps:
            metrics = evaluate(
                model, method, inputs.dev, inputs.dev_targets, eval_batch, pad_id, device, params.bf16
            )
            entry = {
                "step": done,
                "epoch": done / schedule.steps_per_epoch,
                "train_loss": loss_sum / loss_count,
                **metrics,
                "checkpoint": checkpoint_name(done),
            }
            state = {"step": done, "curve": [*state["curve"], entry]}
            save_checkpoint(run_dir, done, model, optimizer, scheduler, state)
            bar.set_postfix({method.selection_metric: f"{metrics[method.selection_metric]:.4f}"})
            log.info("eval %s", json.dumps(entry))
            loss_sum, loss_count = 0.0, 0
    bar.close()
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
        "timing": {"seconds": elapsed, "pairs_per_second": pairs_done / elapsed if elapsed > 0 else None},
    }


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def read_trainset(path: str | Path, method: RewardMethod) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    """A trainset parquet and its encoded targets; ``ValueError`` names the file on missing columns/empty."""
    import polars as pl

    from divpref.methods import require_columns

    frame = pl.read_parquet(path)
    require_columns(
        frame, ["pair_id", "prompt", "response_a", "response_b", *method.target_columns], str(path)
    )
    if frame.height == 0:
        raise ValueError(f"{path}: no rows")
    for column in ("prompt", "response_a", "response_b"):
        nulls = frame.filter(pl.col(column).is_null())
        if nulls.height:
            raise ValueError(f"{path}: pair_id {nulls['pair_id'][0]!r}: {column} is null")
    return frame, method.encode_targets(frame, str(path))


def train_reward_model(
    train_path: str | Path,
    dev_path: str | Path,
    method: RewardMethod,
    model_cfg: Mapping[str, Any],
    params: TrainingParams,
    checkpoint_root: str | Path,
    progress: bool = True,
) -> dict[str, Any]:
    """Everything between the trainset files and the training log (see :func:`train_loop`)."""
    import torch

    from divpref.modeling import load_backbone

    fingerprint = run_fingerprint(params, model_cfg, method.fingerprint_key, [train_path, dev_path])
    run_dir = Path(checkpoint_root) / fingerprint
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
    seed_everything(params.seed)
    model, tokenizer = load_backbone(model_cfg, method.head_outputs, for_training=True)
    if not model_cfg.get("load_in_8bit", False):
        model.to(default_device())
    if not (run_dir / TOKENIZER_DIR).is_dir():
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
        "device %s, threads %d, %d train rows, %d dev rows, run dir %s",
        next(model.parameters()).device,
        torch.get_num_threads(),
        train_frame.height,
        dev_frame.height,
        run_dir,
    )
    result = train_loop(model, method, inputs, params, run_dir, tokenizer.pad_token_id, progress=progress)
    result["fingerprint"] = fingerprint
    result["tokenizer_dir"] = str(run_dir / TOKENIZER_DIR)
    result["base_model"] = str(model_cfg["name_or_path"])
    result["head_outputs"] = method.head_outputs
    result["pad_token_id"] = tokenizer.pad_token_id
    return result
