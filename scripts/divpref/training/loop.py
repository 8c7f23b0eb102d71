"""Our reward-model training loop: seeded, resumable, evaluated and checkpointed every fraction of an epoch.

Speed levers over a generic trainer: every distinct (prompt, response) is tokenized once; batches are grouped
by length and padded only to their own longest sequence; both responses of a batch go through ONE forward
pass; bf16 autocast on GPUs that support it.

Memory and scale: an optimisation step of ``batch_size`` pairs runs as micro-batches of ``micro_batch_size``
pairs whose gradients accumulate, optionally with activation checkpointing, over ``data_parallel`` processes
(:mod:`divpref.training.distributed`). The loss of a step is the weighted mean over ALL its rows (the contract of
:class:`divpref.models.methods.RewardMethod`), so none of the three settings changes the gradient, only the
floating-point summation order; they are left out of the fingerprint, so a retry with a smaller
``micro_batch_size`` resumes from the checkpoints of the failed attempt.

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

from divpref.common.atomic_io import atomic_path
from divpref.models.methods import ROW_WEIGHT, RewardMethod, weighted_loss_sum
from divpref.training import distributed
from divpref.training.distributed import Parallel

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
                f"training config: early_stopping_patience={params.early_stopping_patience!r} must be >= 1 or null"
            )
        if params.bf16 not in (True, False, "auto"):
            raise ValueError(f"training config: bf16={params.bf16!r} must be true, false or auto")
        return params

    @property
    def pairs_per_micro_batch(self) -> int:
        """``micro_batch_size``, or the whole ``batch_size`` when unset."""
        return self.micro_batch_size or self.batch_size


EXECUTION_ONLY = ("micro_batch_size", "gradient_checkpointing", "data_parallel")
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
    """Token ids of one (prompt, response), at most ``max_length``, keeping the END of the response.

    The head scores the last token, so truncation never cuts the response's end: the prompt is cut from the
    left first (its last tokens, nearest the response, stay); only a response that alone exceeds the limit
    loses its beginning too. A tokenizer with a chat template gets a user/assistant conversation; others get
    the pair encoding (e.g. ``[CLS] prompt [SEP] response [SEP]``). Shared by training and scoring.
    """
    if getattr(tokenizer, "chat_template", None):

        def render(prompt_text: str, response_text: str) -> list[int]:
            messages = [
                {"role": "user", "content": prompt_text},
                {"role": "assistant", "content": response_text},
            ]
            return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False))

    else:

        def render(prompt_text: str, response_text: str) -> list[int]:
            return list(tokenizer(prompt_text, response_text)["input_ids"])

    ids = full = render(prompt, response)
    if len(ids) <= max_length:
        return ids
    for field in ("prompt", "response"):  # drop leading prompt tokens, then leading response tokens
        tokens = tokenizer(prompt if field == "prompt" else response, add_special_tokens=False)["input_ids"]
        dropped = 0
        while len(ids) > max_length and dropped < len(tokens):
            dropped = min(len(tokens), dropped + len(ids) - max_length)
            kept = tokenizer.decode(tokens[dropped:])
            prompt, response = (kept, response) if field == "prompt" else (prompt, kept)
            ids = render(prompt, response)
        if len(ids) <= max_length:
            return ids
    return full[-max_length:]  # the template's own tokens exceed max_length: keep the end of the whole


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
    parallel: Parallel = Parallel(),
) -> dict[str, float]:
    """The method's dev metrics over the whole dev set (fixed, length-sorted batch order).

    With several processes each evaluates every ``world_size``-th batch and the outputs are gathered, so
    every process computes the same metrics from the same outputs.
    """
    import torch

    order = np.argsort(data.lengths, kind="stable")
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    mine: list[tuple[int, np.ndarray, np.ndarray]] = []
    model.eval()
    with torch.no_grad():
        for index in range(parallel.rank, len(batches), parallel.world_size):
            inputs, _ = collate(data, batches[index], {}, pad_id)
            out_a, out_b = forward_pairs(model, {k: v.to(device) for k, v in inputs.items()}, bf16)
            mine.append((index, out_a.cpu().numpy(), out_b.cpu().numpy()))
    model.train()
    results = sorted(
        (entry for share in distributed.gather_objects(mine, parallel) for entry in share), key=lambda e: e[0]
    )
    outputs_a = torch.from_numpy(np.concatenate([entry[1] for entry in results]))
    outputs_b = torch.from_numpy(np.concatenate([entry[2] for entry in results]))
    ordered_targets = {name: torch.from_numpy(values[order]) for name, values in targets.items()}
    return method.dev_metrics(outputs_a, outputs_b, ordered_targets)


def trainable_parameters(model: Any) -> list[Any]:
    """Parameters with ``requires_grad`` (LoRA matrices and the head)."""
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


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
    states = torch.load(checkpoint / OPTIMIZER_FILE, weights_only=False)
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])
    rng_path = checkpoint / rng_file(rank)
    restore_rng_state(
        torch.load(rng_path if rng_path.exists() else checkpoint / RNG_FILE, weights_only=False)
    )
    return json.loads((checkpoint / STATE_FILE).read_text())


def evaluations_without_improvement(curve: Sequence[Mapping[str, Any]], method: RewardMethod) -> int:
    """Evaluations since the best one of ``curve`` (by the method's selection metric; 0 if the last is best)."""
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


def row_weight_array(targets: Mapping[str, np.ndarray], n_rows: int) -> np.ndarray:
    """Per-row weights of a trainset (the :data:`ROW_WEIGHT` target, or ones)."""
    if ROW_WEIGHT in targets:
        return np.asarray(targets[ROW_WEIGHT], dtype=np.float64)
    return np.ones(n_rows, dtype=np.float64)


def accumulate_step_gradients(
    model: Any,
    method: RewardMethod,
    data: EncodedPairs,
    targets: Mapping[str, np.ndarray],
    rows: np.ndarray,
    micro_batch_size: int,
    pad_id: int,
    device: Any,
    bf16: bool,
    parallel: Parallel = Parallel(),
) -> float:
    """Backpropagate one optimisation step over ``rows``; return its loss (weighted mean over ALL rows).

    This process takes its share of ``rows`` (:func:`divpref.training.distributed.step_share`) in micro-batches of
    ``micro_batch_size`` pairs; each micro-batch backpropagates ``world_size * sum(w * loss) / W``, ``W``
    being the total weight of the step's rows on every process, so after DDP's gradient averaging the
    accumulated gradient is that of the whole batch. A process whose share is empty (a short last batch
    over many processes) runs one row with weight 0, because DDP needs every process's backward.
    """

    total_weight = float(row_weight_array(targets, len(data.ids_a))[rows].sum())
    if not total_weight > 0:
        raise ValueError(f"the rows of a step have total weight {total_weight}; weights must not all be 0")
    share = distributed.step_share(rows, parallel)
    chunks = distributed.micro_batches(share, micro_batch_size) or [rows[:1]]
    loss_sum = 0.0
    for index, chunk in enumerate(chunks):
        batch, batch_targets = collate(data, chunk, targets, pad_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        batch_targets = {k: v.to(device) for k, v in batch_targets.items()}
        with distributed.gradient_sync(model, sync=index == len(chunks) - 1):
            out_a, out_b = forward_pairs(model, batch, bf16)
            weighted_sum, _ = weighted_loss_sum(method, out_a, out_b, batch_targets)
            if len(share) == 0:
                weighted_sum = weighted_sum * 0.0
            (weighted_sum * parallel.world_size / total_weight).backward()  # 1 process: the batch mean
        loss_sum += float(weighted_sum.detach())
    return distributed.all_reduce_sum(loss_sum, parallel) / total_weight


def train_loop(
    model: Any,
    method: RewardMethod,
    inputs: TrainInputs,
    params: TrainingParams,
    run_dir: Path,
    pad_id: int,
    progress: bool = True,
    parallel: Parallel = Parallel(),
    bf16: bool | None = None,
) -> dict[str, Any]:
    """Train ``model`` (already seeded and wrapped) and return the log: schedule, curve, checkpoint folder.

    Resumes from the latest complete checkpoint in ``run_dir``. The curve holds one entry per evaluation:
    step, epoch, mean train loss since the previous evaluation, the dev metrics, and the checkpoint folder.
    With ``params.early_stopping_patience`` the run stops after that many evaluations without improvement.
    Only rank 0 writes checkpoints; every process returns the same log.
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
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += loss
        loss_count += 1
        pairs_done += len(rows)
        bar.update(1)
        done = step + 1
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


def default_device(parallel: Parallel = Parallel()) -> str:
    """``cuda:<local rank>`` when a GPU is visible, else ``cpu``."""
    import torch

    return f"cuda:{parallel.local_rank}" if torch.cuda.is_available() else "cpu"


def read_trainset(path: str | Path, method: RewardMethod) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    """A trainset parquet and its encoded targets; ``ValueError`` names the file on missing columns/empty."""
    import polars as pl

    from divpref.models.methods import require_columns

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
    """Everything between the trainset files and the training log (see :func:`train_loop`).

    Under torchrun (``WORLD_SIZE > 1``) this process joins the process group and trains its share; only
    rank 0 writes into the run folder.
    """
    import torch

    from divpref.models.loading import load_backbone

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
    seed_everything(params.seed)
    device = default_device(parallel)
    model, tokenizer = load_backbone(
        model_cfg,
        method.head_outputs,
        for_training=True,
        gradient_checkpointing=params.gradient_checkpointing,
        device=device,
    )
    if not model_cfg.get("load_in_8bit", False):
        model.to(device)
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
    result = train_loop(
        model, method, inputs, params, run_dir, tokenizer.pad_token_id, progress=progress, parallel=parallel
    )
    result["fingerprint"] = fingerprint
    result["tokenizer_dir"] = str(run_dir / TOKENIZER_DIR)
    result["base_model"] = str(model_cfg["name_or_path"])
    result["head_outputs"] = method.head_outputs
    result["pad_token_id"] = tokenizer.pad_token_id
    return result
