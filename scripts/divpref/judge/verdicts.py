"""LLM-as-judge on test pairs: a pairwise prompt with a tie option, verdicts from next-token probabilities.

Each pair is judged twice, with the responses in both orders. In each order the verdict is the option label
(``A``, ``B`` or ``tie``) with the highest next-token probability after the answer prefix: nothing is parsed
from generated text, so every pair gets a verdict and a tiny model works as well as a large one. Mapped back
to the pair's own sides, the two verdicts agree (order-consistent) or not; a verdict that changes with the
order counts as a tie. The prompt's wording follows common pairwise-judge practice (MT-Bench: Zheng et al.
2023, "Judging LLM-as-a-judge with MT-Bench and Chatbot Arena", its default pairwise prompt; Arena-Hard-Auto:
Li et al. 2024, its pairwise judge system prompt), rewritten for a single-word answer. torch/transformers are
imported inside the functions only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from divpref.models.inference import length_sorted_batches

log = logging.getLogger(__name__)

LABELS = ("A", "B", "tie")
"""The option labels, in the column order of every label-probability array."""
ORDERS = ("ab", "ba")
"""``ab``: response_a shown as A; ``ba``: response_b shown as A."""
VERDICTS = ("a", "b", "tie")
"""A verdict on the pair's own sides."""

SYSTEM_PROMPT = (
    "You are an impartial judge of AI assistants. "
    "You compare two responses to the same user prompt and decide "
    "which one is better, or whether neither is better than the other."
)
USER_TEMPLATE = (
    "Compare the two responses below to the user's prompt. Consider which response follows the prompt's "
    "instructions and answers it more helpfully, correctly and appropriately. "
    "The order in which the responses appear is arbitrary and must not influence you; "
    "neither should their length.\n\n"
    "[User prompt]\n{prompt}\n[End of user prompt]\n\n"
    "[Response A]\n{response_a}\n[End of response A]\n\n"
    "[Response B]\n{response_b}\n[End of response B]\n\n"
    'Answer with a single word: "A" if response A is better, "B" if response B is better, or "tie" if they '
    "are about equally good."
)
ANSWER_PREFIX = "Verdict:"
"""Text the assistant turn starts with; the next token is one of :data:`LABELS` (after a space)."""
TRUNCATION_MARGIN = 8
"""Tokens left free when budgeting truncated fields (re-tokenizing joined text can differ by a few tokens)."""


# ---------------------------------------------------------------------------------------------------------
# Verdicts (pure)


def order_verdicts(label_logprobs: np.ndarray) -> np.ndarray:
    """Per row of ``[n, 3]`` log-probabilities (A, B, tie): the most probable label; a shared max: tie."""
    label_logprobs = np.asarray(label_logprobs, dtype=float)
    best = label_logprobs.max(axis=1, keepdims=True)
    winners = label_logprobs == best
    picked = np.argmax(label_logprobs, axis=1)
    return np.where(winners.sum(axis=1) > 1, "tie", np.asarray(LABELS, dtype=object)[picked]).astype(object)


def to_pair_sides(labels: np.ndarray, order: str) -> np.ndarray:
    """Option labels of one order mapped to the pair's sides: ``ab``: A->a, B->b; ``ba``: A->b, B->a."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    mapping = {"A": "a", "B": "b", "tie": "tie"} if order == "ab" else {"A": "b", "B": "a", "tie": "tie"}
    return np.array([mapping[label] for label in labels], dtype=object)


def combine_orders(side_ab: np.ndarray, side_ba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(final verdict, order-consistent) per pair: the common verdict when both orders agree, else ``tie``."""
    side_ab = np.asarray(side_ab, dtype=object)
    side_ba = np.asarray(side_ba, dtype=object)
    consistent = side_ab == side_ba
    return np.where(consistent, side_ab, "tie").astype(object), consistent


def verdict_frame(pair_ids: Sequence[str], logprobs_ab: np.ndarray, logprobs_ba: np.ndarray) -> pl.DataFrame:
    """The per-pair verdict file from both orders' ``[n, 3]`` label log-probabilities (ARCHITECTURE.md)."""
    columns: dict[str, Any] = {"pair_id": list(pair_ids)}
    sides = {}
    for order, logprobs in (("ab", logprobs_ab), ("ba", logprobs_ba)):
        logprobs = np.asarray(logprobs, dtype=float)
        for index, label in enumerate(LABELS):
            columns[f"logprob_{label.lower()}_{order}"] = logprobs[:, index]
        sides[order] = to_pair_sides(order_verdicts(logprobs), order)
        columns[f"verdict_{order}"] = sides[order].tolist()
    final, consistent = combine_orders(sides["ab"], sides["ba"])
    columns["verdict"] = final.tolist()
    columns["order_consistent"] = consistent.tolist()
    return pl.DataFrame(columns)


# ---------------------------------------------------------------------------------------------------------
# Prompts and label tokens


def render_prompt(tokenizer: Any, prompt: str, first: str, second: str) -> str:
    """The judge input text, ending in the answer prefix: the tokenizer's chat template where it has one."""
    user = USER_TEMPLATE.format(prompt=prompt, response_a=first, response_b=second)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + ANSWER_PREFIX
    return f"{SYSTEM_PROMPT}\n\n{user}\n\n{ANSWER_PREFIX}"


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without added end tokens; BOS in front where the tokenizer has one (and the text
    lacks it)."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and (not ids or ids[0] != bos):
        ids = [bos, *ids]
    return ids


def label_token_ids(tokenizer: Any) -> list[int]:
    """The first token of each label as it continues the answer prefix (``"Verdict: A"``), in :data:`LABELS`
    order.

    ValueError when the prefix does not tokenize the same on its own, or two labels share a first token.
    """
    prefix = list(tokenizer(ANSWER_PREFIX, add_special_tokens=False)["input_ids"])
    ids = []
    for label in LABELS:
        full = list(tokenizer(f"{ANSWER_PREFIX} {label}", add_special_tokens=False)["input_ids"])
        if full[: len(prefix)] != prefix or len(full) == len(prefix):
            raise ValueError(
                f"judge tokenizer: {ANSWER_PREFIX!r} + {label!r} does not extend the prefix's tokens"
            )
        ids.append(full[len(prefix)])
    if len(set(ids)) != len(ids):
        raise ValueError(f"judge tokenizer: labels {LABELS} share a first token ({ids})")
    return ids


def truncation_caps(lengths: Sequence[int], budget: int) -> list[int]:
    """Token counts to keep per field so their sum fits ``budget``: the longest fields are cut first, to a
    common cap."""
    lengths = [int(length) for length in lengths]
    if budget < 0:
        raise ValueError(f"judge max_length leaves no room for the texts (budget {budget})")
    if sum(lengths) <= budget:
        return lengths
    cap, remaining = 0, budget
    for count, length in enumerate(sorted(lengths)):
        share = remaining // (len(lengths) - count)
        if length <= share:
            remaining -= length
        else:
            cap = share
            break
    kept = [min(length, cap) for length in lengths]
    # Hand the leftover tokens of the integer division to the cut fields, first ones first.
    spare = budget - sum(kept)
    for index, length in enumerate(lengths):
        if spare and kept[index] < length:
            kept[index] += 1
            spare -= 1
    return kept


def _cut(tokenizer: Any, text: str, keep: int, from_left: bool) -> str:
    """``text`` shortened to its last (``from_left``) or first ``keep`` tokens, at token boundaries."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    if len(offsets) <= keep:
        return text
    if keep == 0:
        return ""
    return text[offsets[-keep][0] :] if from_left else text[: offsets[keep - 1][1]]


def build_inputs(
    tokenizer: Any, prompt: str, first: str, second: str, max_length: int
) -> tuple[list[int], bool]:
    """(token ids, truncated?) of one judge input of at most ``max_length`` tokens.

    When the texts do not fit, the prompt is cut from the left (its end, usually the question, stays) and the
    responses from the right, longest first; the template itself is never cut.
    """
    ids = encode_prompt(tokenizer, render_prompt(tokenizer, prompt, first, second))
    if len(ids) <= max_length:
        return ids, False
    fixed = len(encode_prompt(tokenizer, render_prompt(tokenizer, "", "", "")))
    fields = [prompt, first, second]
    lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in fields]
    keep = truncation_caps(lengths, max_length - fixed - TRUNCATION_MARGIN)
    cut = [
        _cut(tokenizer, text, n, from_left=index == 0)
        for index, (text, n) in enumerate(zip(fields, keep, strict=True))
    ]
    ids = encode_prompt(tokenizer, render_prompt(tokenizer, *cut))
    if len(ids) > max_length:
        raise ValueError(f"judge input still has {len(ids)} > {max_length} tokens after truncation")
    return ids, True


# ---------------------------------------------------------------------------------------------------------
# The model


def label_logprobs(
    model: Any,
    encoded: Sequence[Sequence[int]],
    label_ids: Sequence[int],
    pad_id: int,
    *,
    batch_size: int,
    device: str,
    progress: bool = True,
) -> np.ndarray:
    """``[len(encoded), 3]`` next-token log-probabilities (over the whole vocabulary) of the label tokens.

    Batches are length-sorted and left-padded, with position ids counted from each row's first real token, so
    a row's result does not depend on its batch; only the last position's logits are computed.
    """
    import torch
    from tqdm.auto import tqdm

    result = np.empty((len(encoded), len(label_ids)), dtype=np.float64)
    label_index = torch.tensor(list(label_ids), device=device)
    batches = length_sorted_batches([len(sequence) for sequence in encoded], batch_size)
    with torch.inference_mode():
        for rows in tqdm(batches, desc="judging", unit="batch", disable=not progress, mininterval=5.0):
            width = max(len(encoded[i]) for i in rows)
            input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
            attention = np.zeros((len(rows), width), dtype=np.int64)
            for row, index in enumerate(rows):
                sequence = encoded[index]
                input_ids[row, width - len(sequence) :] = sequence
                attention[row, width - len(sequence) :] = 1
            attention_t = torch.from_numpy(attention).to(device)
            positions = (attention_t.cumsum(dim=1) - 1).clamp(min=0)
            logits = model(
                input_ids=torch.from_numpy(input_ids).to(device),
                attention_mask=attention_t,
                position_ids=positions,
                logits_to_keep=1,
            ).logits[:, -1, :]
            logprobs = torch.log_softmax(logits.float(), dim=-1).index_select(1, label_index)
            result[rows] = logprobs.double().cpu().numpy()
    return result


def encode_pairs(tokenizer: Any, test: pl.DataFrame, max_length: int) -> list[list[int]]:
    """Judge inputs of every test pair: first all pairs in order ``ab``, then all in order ``ba``."""
    encoded: list[list[int]] = []
    truncated = 0
    texts = (test["prompt"].to_list(), test["response_a"].to_list(), test["response_b"].to_list())
    rows = list(zip(*texts, strict=True))
    for order in ORDERS:
        for prompt, response_a, response_b in rows:
            first, second = (response_a, response_b) if order == "ab" else (response_b, response_a)
            ids, cut = build_inputs(tokenizer, prompt, first, second, max_length)
            encoded.append(ids)
            truncated += cut
    log.info(
        "judging %d pairs in both orders: %d inputs, %d truncated to %d tokens",
        test.height,
        len(encoded),
        truncated,
        max_length,
    )
    return encoded


def judge_pairs(
    model: Any, tokenizer: Any, test: pl.DataFrame, *, max_length: int, batch_size: int, device: str
) -> pl.DataFrame:
    """Judge every test pair in both orders with a transformers model; the verdicts in test order."""
    label_ids = label_token_ids(tokenizer)
    encoded = encode_pairs(tokenizer, test, max_length)
    log.info("transformers on %s, batch size %d", device, batch_size)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    logprobs = label_logprobs(model, encoded, label_ids, pad_id, batch_size=batch_size, device=device)
    return verdict_frame(test["pair_id"].to_list(), logprobs[: test.height], logprobs[test.height :])


def judge_load_kwargs(judge_cfg: Mapping[str, Any], device: str) -> dict[str, Any]:
    """``from_pretrained`` kwargs: 8 bits (bitsandbytes; lm_head stays unquantized) on CUDA when asked, bf16
    on CUDA otherwise, fp32 on CPU (8 bits need CUDA: a warning, then full precision)."""
    if device != "cuda":
        if judge_cfg.get("load_in_8bit"):
            log.warning(
                "judge %s: load_in_8bit needs CUDA; loading in fp32 on %s", judge_cfg["name_or_path"], device
            )
        return {}
    if judge_cfg.get("load_in_8bit"):
        from transformers import BitsAndBytesConfig

        return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True), "device_map": {"": 0}}
    import torch

    return {"dtype": torch.bfloat16}


def load_judge(judge_cfg: Mapping[str, Any], device: str) -> tuple[Any, Any]:
    """A judge's causal LM (eval mode, on ``device``) and tokenizer; see :func:`judge_load_kwargs`."""
    from transformers import AutoModelForCausalLM

    kwargs = judge_load_kwargs(judge_cfg, device)
    model = AutoModelForCausalLM.from_pretrained(
        judge_cfg["name_or_path"], revision=judge_cfg.get("revision"), **kwargs
    )
    if "device_map" not in kwargs:
        model = model.to(device)
    return model.eval(), load_judge_tokenizer(judge_cfg)


def load_judge_tokenizer(judge_cfg: Mapping[str, Any]) -> Any:
    """The judge's tokenizer (hub id at its revision, or local folder)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(judge_cfg["name_or_path"], revision=judge_cfg.get("revision"))
