"""Token ids once per distinct (prompt, response), shared by training, test scoring and pretrained scoring.

Both read the same token sequences, so a model is scored on exactly the inputs it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists to a rectangle: ``(input_ids, attention_mask)`` as int64 arrays."""
    width = max((len(sequence) for sequence in sequences), default=0)
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(sequences), width), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = sequence
        attention[row, : len(sequence)] = 1
    return input_ids, attention
