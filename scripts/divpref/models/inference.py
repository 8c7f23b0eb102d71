"""Batched inference of a sequence-classification model: distinct texts once, length-sorted batches, logits.

Shared by test scoring (divpref.evaluation.scoring), pretrained reward models and the LLM judge. torch is
imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from divpref.models.tokenization import pad_right


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of at most ``batch_size``, longest first (little padding, early OOM)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def unique_texts(test: pl.DataFrame) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Distinct (prompt, response) texts of the test pairs and each pair's index into them for A and B."""
    index: dict[tuple[str, str], int] = {}
    texts: list[tuple[str, str]] = []

    def position(prompt: str, response: str) -> int:
        key = (prompt, response)
        if key not in index:
            index[key] = len(texts)
            texts.append(key)
        return index[key]

    prompts = test["prompt"].to_list()
    index_a = [position(p, r) for p, r in zip(prompts, test["response_a"].to_list(), strict=True)]
    index_b = [position(p, r) for p, r in zip(prompts, test["response_b"].to_list(), strict=True)]
    return texts, np.array(index_a, dtype=np.int64), np.array(index_b, dtype=np.int64)


def head_outputs(
    model: Any,
    encoded: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int,
    device: str,
    progress: bool = True,
    bf16: bool = False,
) -> np.ndarray:
    """The model's head output ``[len(encoded), num_labels]`` (float64) for every token sequence.

    ``bf16``: under bf16 autocast, the precision the model was trained and selected at.
    """
    import torch
    from tqdm.auto import tqdm

    batches = length_sorted_batches([len(sequence) for sequence in encoded], batch_size)
    outputs: np.ndarray | None = None
    with torch.inference_mode():
        for rows in tqdm(batches, desc="scoring", unit="batch", disable=not progress, mininterval=5.0):
            input_ids, attention = pad_right([encoded[i] for i in rows], pad_id)
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(
                    input_ids=torch.from_numpy(input_ids).to(device),
                    attention_mask=torch.from_numpy(attention).to(device),
                ).logits
            logits = logits.double().cpu().numpy()
            if outputs is None:
                outputs = np.empty((len(encoded), logits.shape[1]), dtype=np.float64)
            outputs[rows] = logits
    if outputs is None:
        raise ValueError("nothing to score: no token sequences")
    return outputs
