"""Off-the-shelf reward models (``method: pretrained``): score pairs with an existing model, no training.

Where the reward comes from is the condition's ``model.reward_from`` (:data:`REWARD_FROM`):

- ``sequence_classification`` (default): a sequence-classification reward model with one output (e.g.
  ``Skywork/Skywork-Reward-Gemma-2-27B`` or a local folder); the scalar output is the reward.
- ``first_token_logit``: a causal LM whose reward is one logit of its next-token prediction, as
  ``nvidia/Llama-3.1-Nemotron-70B-Reward-HF``'s model card computes it (generate one token after the
  conversation and read ``scores[0][0][0]``): the logit of vocabulary index ``model.token_index`` (default 0)
  at the first generated position, i.e. at the last position of the rendered conversation. Batches are
  left-padded and only that position goes through the LM head (``logits_to_keep=1``), as ``generate`` does.

Each response is rendered with the model's OWN chat template (user: prompt, assistant: response, no
generation prompt; :func:`divpref.models.tokenization.encode_text`). Batching and length-sorting are
:mod:`divpref.models.inference`'s. The score file has ``reward_a``/``reward_b``; the other columns are null (a
single-value model).

Padding: a sequence-classification head scores the rightmost token that is not ``config.pad_token_id``. A
tokenizer without a pad token would pad with EOS, and a chat template that ends in EOS would then be scored
one token early. :func:`pooling_pad_id` therefore pads with an id that occurs in none of the scored sequences,
so every response is scored at its own last token, exactly as unpadded one-at-a-time scoring does (tested).

torch and transformers are imported inside the functions only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from divpref.common.constants import BT
from divpref.models.inference import head_outputs, length_sorted_batches, unique_texts
from divpref.models.methods import get_method, scores_frame
from divpref.models.tokenization import encode_text

log = logging.getLogger(__name__)

SEQUENCE_CLASSIFICATION, FIRST_TOKEN_LOGIT = "sequence_classification", "first_token_logit"
REWARD_FROM = (SEQUENCE_CLASSIFICATION, FIRST_TOKEN_LOGIT)
"""Values of a pretrained condition's ``model.reward_from``; the first is the default."""

SCALAR_METHOD = BT
"""The registered method whose score columns a scalar reward model writes (reward_a, reward_b; rest null)."""


def pooling_pad_id(encoded: Sequence[Sequence[int]], preferred: int | None, vocab_size: int) -> int:
    """A pad id that no sequence contains: ``preferred`` if possible, else the smallest unused id."""
    used = {token for sequence in encoded for token in sequence}
    if preferred is not None and preferred not in used:
        return int(preferred)
    for candidate in range(vocab_size):
        if candidate not in used:
            return candidate
    raise ValueError(f"every one of the {vocab_size} token ids occurs in the texts: no id left for padding")


def load_kwargs(model_cfg: Mapping[str, Any], device: str) -> dict[str, Any]:
    """``from_pretrained`` kwargs: on GPU bf16, or 8 bits when ``load_in_8bit``, spread over visible GPUs.

    On CPU the model loads in fp32 (bitsandbytes' 8-bit kernels need CUDA; ``load_in_8bit`` is then ignored
    with a warning).
    """
    kwargs: dict[str, Any] = {
        "revision": model_cfg.get("revision") or None,
        "trust_remote_code": bool(model_cfg.get("trust_remote_code", False)),
    }
    if device != "cuda":
        if model_cfg.get("load_in_8bit"):
            log.warning("load_in_8bit needs CUDA; loading %s in fp32 on CPU", model_cfg["name_or_path"])
        return kwargs
    import torch

    kwargs["device_map"] = "auto"
    if model_cfg.get("load_in_8bit"):
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    else:
        kwargs["dtype"] = torch.bfloat16
    return kwargs


def reward_kind(model_cfg: Mapping[str, Any]) -> str:
    """The condition's ``reward_from`` (default ``sequence_classification``); ValueError on other values."""
    value = model_cfg.get("reward_from") or SEQUENCE_CLASSIFICATION
    if value not in REWARD_FROM:
        raise ValueError(f"model.reward_from: {value!r} is not one of {list(REWARD_FROM)}")
    return value


def check_reward_model(source: str, config: Any) -> None:
    """Refuse a checkpoint that is not a one-output sequence-classifier (its head would be random)."""
    architectures = list(getattr(config, "architectures", None) or [])
    if any(name.endswith("ForCausalLM") for name in architectures):
        raise ValueError(
            f"{source}: not a sequence-classification reward model but a causal LM (architectures "
            f"{architectures}); if its reward is a next-token logit (as Nemotron-70B-Reward-HF's), set "
            f"`reward_from: {FIRST_TOKEN_LOGIT}` (and `token_index`) in the condition's `model`"
        )
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        raise ValueError(
            f"{source}: not a sequence-classification reward model (architectures {architectures}); "
            f"loading it would add a randomly initialised head"
        )
    if int(getattr(config, "num_labels", 1)) != 1:
        raise ValueError(f"{source}: the head has {config.num_labels} outputs; a scalar reward model has 1")


def check_causal_lm(source: str, config: Any, token_index: int) -> None:
    """Refuse a ``first_token_logit`` checkpoint that is not a causal LM, or an index outside its vocab."""
    architectures = list(getattr(config, "architectures", None) or [])
    if not any(name.endswith("ForCausalLM") for name in architectures):
        raise ValueError(
            f"{source}: `reward_from: {FIRST_TOKEN_LOGIT}` needs a causal LM (architectures "
            f"{architectures}); a sequence-classification reward model uses `reward_from: "
            f"{SEQUENCE_CLASSIFICATION}`"
        )
    vocab_size = getattr(config, "vocab_size", None)
    if vocab_size is not None and not 0 <= token_index < int(vocab_size):
        raise ValueError(
            f"{source}: model.token_index {token_index} is outside its vocabulary of {vocab_size}"
        )


def load_pretrained(model_cfg: Mapping[str, Any], device: str) -> tuple[Any, Any]:
    """``(model in eval mode, tokenizer)`` of a pretrained reward model; its tokenizer has a chat template.

    ``reward_from: first_token_logit`` loads a causal LM (AutoModelForCausalLM), otherwise a
    sequence-classification model (AutoModelForSequenceClassification).
    """
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    source = model_cfg["name_or_path"]
    kind = reward_kind(model_cfg)
    kwargs = load_kwargs(model_cfg, device)
    common = {"revision": kwargs["revision"], "trust_remote_code": kwargs["trust_remote_code"]}
    config = AutoConfig.from_pretrained(source, **common)
    if kind == FIRST_TOKEN_LOGIT:
        check_causal_lm(source, config, int(model_cfg.get("token_index", 0)))
    else:
        check_reward_model(source, config)
    tokenizer = AutoTokenizer.from_pretrained(source, **common)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"{source}: the tokenizer has no chat template; a pretrained reward model needs its own"
        )
    auto_class = AutoModelForCausalLM if kind == FIRST_TOKEN_LOGIT else AutoModelForSequenceClassification
    model = auto_class.from_pretrained(source, **kwargs)
    if "device_map" not in kwargs:
        model = model.to(device)
    return model.eval(), tokenizer


def pad_left(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left-pad token id lists: ``(input_ids, attention_mask, position_ids)`` as int64 arrays.

    Each sequence's last token sits in the last column, and its tokens keep the positions 0..n-1 they have
    unpadded (pads get position 0 and are masked), as ``generate`` pads a batch.
    """
    width = max((len(sequence) for sequence in sequences), default=0)
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(sequences), width), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        if len(sequence):
            input_ids[row, width - len(sequence) :] = sequence
            attention[row, width - len(sequence) :] = 1
    positions = np.clip(np.cumsum(attention, axis=1) - 1, 0, None)
    return input_ids, attention, positions


def first_token_logits(
    model: Any,
    encoded: Sequence[Sequence[int]],
    token_index: int,
    batch_size: int,
    device: str,
    progress: bool = True,
) -> np.ndarray:
    """Per token sequence, the causal LM's logit of ``token_index`` at its next (first generated) position.

    Batches are left-padded (:func:`pad_left`): every real token keeps its unpadded position and sees only the
    real tokens before it, so the result equals one unpadded forward pass per sequence. Only the last column
    goes through the LM head (``logits_to_keep=1``, as ``generate`` does), not the whole sequence times the
    vocabulary. Returns ``[len(encoded), 1]``.
    """
    import torch
    from tqdm.auto import tqdm

    if not encoded:
        raise ValueError("nothing to score: no token sequences")
    lengths = [len(sequence) for sequence in encoded]
    if min(lengths) < 1:
        raise ValueError("an empty token sequence has no next-token prediction")
    outputs = np.empty((len(encoded), 1), dtype=np.float64)
    with torch.inference_mode():
        batches = length_sorted_batches(lengths, batch_size)
        for rows in tqdm(batches, desc="scoring", unit="batch", disable=not progress, mininterval=5.0):
            input_ids, attention, positions = pad_left([encoded[i] for i in rows], 0)
            logits = model(
                input_ids=torch.from_numpy(input_ids).to(device),
                attention_mask=torch.from_numpy(attention).to(device),
                position_ids=torch.from_numpy(positions).to(device),
                logits_to_keep=1,
            ).logits  # [batch, 1, vocabulary]
            outputs[rows, 0] = logits[:, -1, token_index].double().cpu().numpy()
    return outputs


def score_pairs(
    model: Any,
    tokenizer: Any,
    pairs: pl.DataFrame,
    *,
    max_length: int,
    batch_size: int,
    device: str,
    reward_from: str = SEQUENCE_CLASSIFICATION,
    token_index: int = 0,
) -> pl.DataFrame:
    """The score-file frame of ``pairs`` (pair_id, prompt, response_a, response_b), in ``pairs`` order.

    ``reward_from``/``token_index``: where the reward comes from (module doc; the condition's ``model``).
    """
    texts, index_a, index_b = unique_texts(pairs)
    encoded = [encode_text(tokenizer, prompt, response, max_length) for prompt, response in texts]
    if reward_from == FIRST_TOKEN_LOGIT:
        log.info(
            "scoring %d pairs (%d distinct texts) on %s: logit of token %d at the first generated position",
            pairs.height,
            len(texts),
            device,
            token_index,
        )
        outputs = first_token_logits(model, encoded, token_index, batch_size, device)
        return scores_frame(
            get_method(SCALAR_METHOD), pairs["pair_id"].to_list(), outputs[index_a], outputs[index_b]
        )
    vocab_size = min(len(tokenizer), int(getattr(model.config, "vocab_size", None) or len(tokenizer)))
    pad_id = pooling_pad_id(encoded, tokenizer.pad_token_id, vocab_size)
    model.config.pad_token_id = pad_id
    log.info(
        "scoring %d pairs (%d distinct texts) on %s, pad id %d", pairs.height, len(texts), device, pad_id
    )
    outputs = head_outputs(model, encoded, pad_id, batch_size, device)
    if outputs.shape[1] != 1:
        raise ValueError(f"the reward model has {outputs.shape[1]} outputs; a scalar reward model has 1")
    return scores_frame(
        get_method(SCALAR_METHOD), pairs["pair_id"].to_list(), outputs[index_a], outputs[index_b]
    )
