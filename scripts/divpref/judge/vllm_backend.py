"""Optional vLLM backend of the judge (``judges.<name>.backend: vllm``) for large judges on GPUs.

vLLM is not a dependency of this workflow and cannot be installed here, so :func:`label_logprobs_vllm` is not
exercised by the test suite; :func:`choose_backend`, :func:`label_prompts` and :func:`read_prompt_logprobs`
are (the last with a stand-in for vLLM's output objects). Where vLLM is missing, or 8 bits are asked for, or
there is no GPU, rule judge uses transformers, which always works.

Each judge input is sent three times, ending in each label token, with ``prompt_logprobs=0``: vLLM then
returns the log-probability of every prompt token given the tokens before it, so the last one is the label's
next-token log-probability over the whole vocabulary, the quantity the transformers path reads.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from divpref.judge.verdicts import encode_pairs, label_token_ids, verdict_frame

log = logging.getLogger(__name__)

BACKENDS = ("transformers", "vllm")


def choose_backend(judge_cfg: Mapping[str, Any], device: str, vllm_installed: bool | None = None) -> str:
    """``vllm`` when asked for, installed, on CUDA and not in 8 bits; otherwise ``transformers`` (with a
    warning)."""
    wanted = judge_cfg.get("backend", "transformers")
    if wanted not in BACKENDS:
        raise ValueError(f"judge backend {wanted!r}; known: {BACKENDS}")
    if wanted == "transformers":
        return wanted
    if vllm_installed is None:
        vllm_installed = importlib.util.find_spec("vllm") is not None
    reason = None
    if not vllm_installed:
        reason = "vllm is not installed"
    elif device != "cuda":
        reason = "vllm needs CUDA"
    elif judge_cfg.get("load_in_8bit"):
        reason = "load_in_8bit is a transformers option here"
    if reason:
        log.warning(
            "judge %s: backend vllm requested, but %s; using transformers", judge_cfg["name_or_path"], reason
        )
        return "transformers"
    return "vllm"


def label_prompts(encoded: Sequence[Sequence[int]], label_ids: Sequence[int]) -> list[dict[str, list[int]]]:
    """vLLM token prompts: each input once per label, the label token appended (input-major order)."""
    return [{"prompt_token_ids": [*ids, label]} for ids in encoded for label in label_ids]


def read_prompt_logprobs(outputs: Sequence[Any], label_ids: Sequence[int]) -> np.ndarray:
    """``[n_inputs, n_labels]`` log-probabilities of the appended label tokens from vLLM's request outputs."""
    n_labels = len(label_ids)
    if len(outputs) % n_labels:
        raise ValueError(f"{len(outputs)} vLLM outputs for {n_labels} labels per input")
    values = [
        output.prompt_logprobs[-1][label_ids[index % n_labels]].logprob
        for index, output in enumerate(outputs)
    ]
    return np.asarray(values, dtype=np.float64).reshape(-1, n_labels)


def label_logprobs_vllm(
    judge_cfg: Mapping[str, Any], encoded: Sequence[Sequence[int]], label_ids: Sequence[int], max_length: int
) -> np.ndarray:
    """The judge's label log-probabilities (as :func:`divpref.judge.verdicts.label_logprobs`) computed by vLLM
    in bf16."""
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=judge_cfg["name_or_path"],
        revision=judge_cfg.get("revision"),
        dtype="bfloat16",
        max_model_len=max_length + 1,
        seed=0,
    )
    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    outputs = llm.generate(label_prompts(encoded, label_ids), params, use_tqdm=True)
    return read_prompt_logprobs(outputs, label_ids)


def judge_pairs_vllm(
    judge_cfg: Mapping[str, Any], tokenizer: Any, test: pl.DataFrame, *, max_length: int
) -> pl.DataFrame:
    """:func:`divpref.judge.verdicts.judge_pairs` with vLLM computing the label log-probabilities."""
    label_ids = label_token_ids(tokenizer)
    encoded = encode_pairs(tokenizer, test, max_length)
    logprobs = label_logprobs_vllm(judge_cfg, encoded, label_ids, max_length)
    return verdict_frame(test["pair_id"].to_list(), logprobs[: test.height], logprobs[test.height :])
