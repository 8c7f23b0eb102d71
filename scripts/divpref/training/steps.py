"""One optimisation step and one dev evaluation: forward passes, accumulated gradients, dev metrics.

An optimisation step of ``batch_size`` pairs runs as micro-batches of ``micro_batch_size`` pairs whose
gradients accumulate, over ``data_parallel`` processes (:mod:`divpref.training.distributed`). The loss of a
step is the weighted mean over ALL its rows (the contract of :class:`divpref.models.methods.RewardMethod`), so
neither setting changes the gradient, only the floating-point summation order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from divpref.models.methods import ROW_WEIGHT, RewardMethod, weighted_loss_sum
from divpref.training import distributed
from divpref.training.batching import EncodedPairs, collate
from divpref.training.distributed import SINGLE_PROCESS, Parallel

if TYPE_CHECKING:
    import torch


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
    parallel: Parallel = SINGLE_PROCESS,
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
    parallel: Parallel = SINGLE_PROCESS,
) -> float:
    """Backpropagate one optimisation step over ``rows``; return its loss (weighted mean over ALL rows).

    This process takes its share of ``rows`` (:func:`divpref.training.distributed.step_share`) in
    micro-batches of ``micro_batch_size`` pairs; each micro-batch backpropagates ``world_size * sum(w * loss)
    / W``, ``W`` being the total weight of the step's rows on every process, so after DDP's gradient averaging
    the accumulated gradient is that of the whole batch. A process whose share is empty (a short last batch
    over many processes) runs one row with weight 0, because DDP needs every process's backward.

    One process with the whole batch in one micro-batch (the default) is a plain step: one collate, one
    forward and backward of the batch mean, no gradient-sync context and no collective call.
    """

    total_weight = float(row_weight_array(targets, len(data.ids_a))[rows].sum())
    if not total_weight > 0:
        raise ValueError(f"the rows of a step have total weight {total_weight}; weights must not all be 0")
    if not parallel.distributed and len(rows) <= micro_batch_size:
        weighted_sum = _backward_chunk(model, method, data, targets, rows, pad_id, device, bf16, total_weight)
        return float(weighted_sum) / total_weight
    share = distributed.step_share(rows, parallel)
    chunks = distributed.micro_batches(share, micro_batch_size) or [rows[:1]]
    loss_sum = 0.0
    for index, chunk in enumerate(chunks):
        with distributed.gradient_sync(model, sync=index == len(chunks) - 1):
            weighted_sum = _backward_chunk(
                model,
                method,
                data,
                targets,
                chunk,
                pad_id,
                device,
                bf16,
                total_weight,
                parallel,
                len(share) == 0,
            )
        loss_sum += float(weighted_sum)
    return distributed.all_reduce_sum(loss_sum, parallel) / total_weight


def _backward_chunk(
    model: Any,
    method: RewardMethod,
    data: EncodedPairs,
    targets: Mapping[str, np.ndarray],
    chunk: np.ndarray,
    pad_id: int,
    device: Any,
    bf16: bool,
    total_weight: float,
    parallel: Parallel = SINGLE_PROCESS,
    empty_share: bool = False,
) -> torch.Tensor:
    """Backpropagate one micro-batch's ``world_size * sum(w * loss) / total_weight``; return its detached
    ``sum(w * loss)`` (0 for the stand-in row of an ``empty_share``)."""
    batch, batch_targets = collate(data, chunk, targets, pad_id)
    batch = {k: v.to(device) for k, v in batch.items()}
    batch_targets = {k: v.to(device) for k, v in batch_targets.items()}
    out_a, out_b = forward_pairs(model, batch, bf16)
    weighted_sum, _ = weighted_loss_sum(method, out_a, out_b, batch_targets)
    if empty_share:
        weighted_sum = weighted_sum * 0.0
    scaled = weighted_sum * parallel.world_size if parallel.distributed else weighted_sum
    (scaled / total_weight).backward()  # 1 process: the batch mean
    return weighted_sum.detach()
