"""Scoring the test pairs with a selected reward model: batched, length-sorted, on GPU where available.

Texts are encoded with :func:`divpref.models.tokenization.encode_text`, the trainer's own encoder, so scoring
sees exactly the token sequences training saw. torch is imported inside the functions only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import polars as pl

from divpref.models.inference import head_outputs, unique_texts
from divpref.models.methods import get_method, scores_frame
from divpref.models.tokenization import encode_text

log = logging.getLogger(__name__)

TEST_TEXT_COLUMNS = ("pair_id", "prompt", "response_a", "response_b")


def check_test_pairs(test: pl.DataFrame, source: str) -> None:
    """Refuse test pairs that cannot be scored: missing columns, null texts, duplicated pair ids."""
    missing = [column for column in TEST_TEXT_COLUMNS if column not in test.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; has {test.columns}")
    for column in TEST_TEXT_COLUMNS:
        nulls = test.filter(pl.col(column).is_null())
        if nulls.height:
            raise ValueError(f"{source}: pair_id {nulls['pair_id'][0]!r} has a null {column}")
    duplicated = test.filter(pl.col("pair_id").is_duplicated())
    if duplicated.height:
        raise ValueError(f"{source}: pair_id {duplicated['pair_id'][0]!r} appears more than once")


def score_test_pairs(
    model: Any,
    tokenizer: Any,
    test: pl.DataFrame,
    *,
    method: str,
    max_length: int,
    batch_size: int,
    device: str,
    method_options: Mapping[str, Any] | None = None,
    bf16: bool = False,
) -> pl.DataFrame:
    """The score-file frame (ARCHITECTURE.md) of every test pair, in test order.

    Each distinct (prompt, response) is encoded and scored once; the method's ``score_columns`` turns the two
    head outputs of a pair into ``reward_a``, ``reward_b``, ``sigma_*``, ``label_probs``. ``method_options``
    are the resolved settings the model was trained with (its training log's ``method_options``).
    """
    reward_method = get_method(method, method_options)
    texts, index_a, index_b = unique_texts(test)
    encoded = [encode_text(tokenizer, prompt, response, max_length) for prompt, response in texts]
    log.info(
        "scoring %d pairs (%d distinct texts) on %s, batch size %d",
        test.height,
        len(texts),
        device,
        batch_size,
    )
    outputs = head_outputs(model, encoded, tokenizer.pad_token_id, batch_size, device, bf16=bf16)
    if outputs.shape[1] != reward_method.head_outputs:
        raise ValueError(
            f"model head has {outputs.shape[1]} outputs; {method!r} expects {reward_method.head_outputs}"
        )
    return scores_frame(reward_method, test["pair_id"].to_list(), outputs[index_a], outputs[index_b])


def inference_load_kwargs(model_cfg: Mapping[str, Any], device: str) -> dict[str, Any]:
    """``from_pretrained`` kwargs for scoring: training's quantization, on the scoring device.

    bitsandbytes quantizes while loading, so an 8-bit backbone is placed by its device map (CPU or the first
    GPU), as in training; :func:`divpref.models.loading.load_for_inference` then casts training's dtypes.
    """
    from divpref.models.loading import quantization_config

    quantization = quantization_config(model_cfg)
    if quantization is None:
        return {}
    return {"quantization_config": quantization, "device_map": {"": 0 if device == "cuda" else device}}
