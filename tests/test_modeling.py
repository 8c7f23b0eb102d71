"""Backbone building and loading: pad handling, last-token scoring, LoRA wiring, offline tokenizer."""

import numpy as np
import pytest
import torch
from reward_fixtures import model_cfg, shared_backbone
from safetensors.torch import load_file

from divpref.models.loading import head_module_name, load_backbone, lora_config, prepare_tokenizer
from divpref.models.tiny_backbone import build_backbone, build_tokenizer, resolved_build
from divpref.models.tokenization import encode_text
from divpref.training.batching import EncodedPairs, collate


def test_offline_tokenizer_is_llama_like_without_pad():
    tokenizer = build_tokenizer()
    assert tokenizer.pad_token is None and tokenizer.eos_token == "[SEP]" and tokenizer.bos_token == "[CLS]"
    prepared = prepare_tokenizer(tokenizer)
    assert prepared.pad_token_id == prepared.eos_token_id and prepared.padding_side == "right"


def test_prepare_tokenizer_without_pad_or_eos_is_an_error():
    tokenizer = build_tokenizer()
    tokenizer.eos_token = None
    with pytest.raises(ValueError, match="neither a pad nor an eos token"):
        prepare_tokenizer(tokenizer)


def test_build_is_seeded(tmp_path):
    again = load_file(str(build_backbone({"seed": 0}, tmp_path / "same") / "model.safetensors"))
    other = load_file(str(build_backbone({"seed": 1}, tmp_path / "other") / "model.safetensors"))
    reference = load_file(str(shared_backbone() / "model.safetensors"))
    assert all(torch.equal(reference[k], again[k]) for k in reference)
    assert not all(torch.equal(reference[k], other[k]) for k in reference)


def test_build_config_is_validated():
    assert resolved_build(None)["hidden_size"] == 128
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['hiden_size'\]"):
        resolved_build({"hiden_size": 64})
    with pytest.raises(ValueError, match="architecture='gpt2'"):
        resolved_build({"architecture": "gpt2"})


def test_lora_model_trains_adapters_and_the_head_only():
    torch.manual_seed(0)
    model, tokenizer = load_backbone(model_cfg(), num_labels=1, for_training=True)
    assert model.config.pad_token_id == tokenizer.eos_token_id
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert any("q_proj.lora_A" in n for n in trainable) and any("o_proj.lora_B" in n for n in trainable)
    assert any("score.modules_to_save" in n for n in trainable)
    assert not any("embed_tokens" in n or "mlp" in n for n in trainable)
    config = lora_config(model_cfg(), "score")
    assert config.task_type == "SEQ_CLS" and set(config.modules_to_save) >= {"score"}


def test_head_module_name_and_trust_remote_code_default():
    model, _ = load_backbone(model_cfg(), num_labels=5, for_training=False)
    assert head_module_name(model) == "score" and model.score.out_features == 5
    with pytest.raises(ValueError, match="no classification head"):
        head_module_name(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_padding_does_not_change_a_response_reward():
    """The head scores the last non-pad token: a sequence scores the same alone and in a padded batch."""
    torch.manual_seed(0)
    model, tokenizer = load_backbone(model_cfg(), num_labels=1, for_training=False)
    model.eval()
    short = encode_text(tokenizer, "hello there", "short answer", 64)
    long = encode_text(tokenizer, "hello there", "a much longer answer with many more words in it", 64)
    assert len(short) < len(long) and short[-1] == tokenizer.eos_token_id
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([short])).logits
        inputs, _ = collate(
            EncodedPairs(ids_a=[short], ids_b=[long]), np.array([0]), {}, tokenizer.pad_token_id
        )
        batched = model(**inputs).logits
        # sanity: the score does depend on the tokens (a different response scores differently)
        other = model(
            input_ids=torch.tensor([encode_text(tokenizer, "hello there", "other words", 64)])
        ).logits
    assert torch.allclose(alone[0], batched[0], atol=1e-5)
    assert not torch.allclose(alone[0], other[0])


def test_encode_text_truncates_to_max_length():
    tokenizer = prepare_tokenizer(build_tokenizer())
    ids = encode_text(tokenizer, "prompt " * 50, "response " * 50, 32)
    assert len(ids) == 32 and ids[0] == tokenizer.bos_token_id


def test_encode_text_uses_the_chat_template_when_there_is_one():
    tokenizer = prepare_tokenizer(build_tokenizer())
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}"
    )
    ids = encode_text(tokenizer, "what is up", "not much", 64)
    expected = tokenizer("user: what is up[SEP]assistant: not much[SEP]", add_special_tokens=False)[
        "input_ids"
    ]
    assert ids == expected and all(isinstance(i, int) for i in ids)
    # Truncation keeps the end: the prompt loses its first words, then the response; the template stays.
    cut = tokenizer("user: up[SEP]assistant: not much[SEP]", add_special_tokens=False)["input_ids"]
    assert encode_text(tokenizer, "what is up", "not much", len(expected) - 2) == cut
    cut = tokenizer("user: [SEP]assistant: much[SEP]", add_special_tokens=False)["input_ids"]
    assert encode_text(tokenizer, "what is up", "not much", len(cut)) == cut
    assert encode_text(tokenizer, "what is up", "not much", 5) == expected[-5:]
