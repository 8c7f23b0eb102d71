"""Scoring loads a model with the dtypes training used, so a checkpoint scores as it was evaluated on dev.

The backbone here is the tiny Llama saved in bf16 (as hub Llama-3 checkpoints are): training casts its
trained parameters (without 8 bit) or every non-int8 parameter (with 8 bit) to fp32; scoring must do the same.
"""

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from reward_fixtures import model_cfg, planted_frame, shared_backbone

from divpref.evaluation.scoring import inference_load_kwargs, score_test_pairs
from divpref.models.loading import load_backbone, load_for_inference, write_head_info
from divpref.training.batching import collate, encode_pairs
from divpref.training.steps import forward_pairs


@pytest.fixture(scope="module")
def bf16_backbone(tmp_path_factory) -> Path:
    """The shared tiny backbone's weights saved in bf16, with its tokenizer."""
    from transformers import AutoModelForCausalLM

    source = shared_backbone()
    folder = tmp_path_factory.mktemp("bf16") / "tiny-llama-bf16"
    AutoModelForCausalLM.from_pretrained(source).to(torch.bfloat16).save_pretrained(folder)
    for item in source.iterdir():
        if item.is_file() and item.name.startswith(("tokenizer", "special_tokens", "vocab")):
            shutil.copy2(item, folder / item.name)
    assert '"bfloat16"' in (folder / "config.json").read_text()
    return folder


def trained_stand_in(cfg: dict):
    """The training load with its trained parameters moved off their initial values (zero LoRA B, ...)."""
    torch.manual_seed(0)
    model, tokenizer = load_backbone(cfg, num_labels=1, for_training=True)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn_like(param))
    return model, tokenizer


@pytest.mark.parametrize("load_in_8bit", [False, True], ids=["full", "8bit"])
def test_training_and_scoring_load_the_same_dtypes_and_rewards(bf16_backbone, tmp_path, load_in_8bit):
    cfg = model_cfg(bf16_backbone, load_in_8bit=load_in_8bit)
    model, tokenizer = trained_stand_in(cfg)
    trained = {name: p.dtype for name, p in model.named_parameters() if p.requires_grad}
    assert trained and set(trained.values()) == {torch.float32}
    if load_in_8bit:
        assert not any(p.dtype == torch.bfloat16 for p in model.parameters())
    else:  # the frozen backbone keeps the checkpoint's bf16
        assert any(p.dtype == torch.bfloat16 for p in model.parameters())
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    write_head_info(adapter, 1, tokenizer.pad_token_id)

    scorer, _ = load_for_inference(adapter, "cpu", **inference_load_kwargs(cfg, "cpu"))
    training_dtypes = {name: p.dtype for name, p in model.named_parameters()}
    scoring_dtypes = {name: p.dtype for name, p in scorer.named_parameters()}
    assert scoring_dtypes == training_dtypes

    # The same inputs through both: the dev evaluation's forward pass (divpref.training.steps).
    dev = planted_frame(12, seed=3)
    encoded = encode_pairs(dev, tokenizer, 48)
    model.eval()
    with torch.inference_mode():
        batch, _ = collate(encoded, np.arange(dev.height), {}, tokenizer.pad_token_id)
        train_a, train_b = forward_pairs(model, batch, bf16=False)
        score_a, score_b = forward_pairs(scorer, batch, bf16=False)
    assert score_a.numpy() == pytest.approx(train_a.numpy(), abs=1e-5)
    assert score_b.numpy() == pytest.approx(train_b.numpy(), abs=1e-5)
    assert np.std(train_a.numpy()) > 1e-3  # the rewards differ between pairs

    # score_dev's own path (scoring.score_test_pairs: distinct texts, length-sorted batches) against the dev
    # evaluation's pair batches. With 8 bit every float weight is fp32 and the int8 matmul quantizes row by
    # row, so batching does not matter; a bf16 backbone rounds differently for different batch shapes, so
    # there both sides score each text alone.
    frame = dev.select(pl.exclude("chosen"))
    if load_in_8bit:
        scores = score_test_pairs(
            scorer, tokenizer, frame, method="bt", max_length=48, batch_size=5, device="cpu"
        )
        expected_a, expected_b = train_a[:, 0].numpy(), train_b[:, 0].numpy()
    else:
        scores = score_test_pairs(
            scorer, tokenizer, frame, method="bt", max_length=48, batch_size=1, device="cpu"
        )
        with torch.inference_mode():
            alone = [
                [float(model(input_ids=torch.tensor([ids])).logits[0, 0]) for ids in side]
                for side in (encoded.ids_a, encoded.ids_b)
            ]
        expected_a, expected_b = np.array(alone[0]), np.array(alone[1])
    assert scores["reward_a"].to_numpy() == pytest.approx(expected_a, abs=1e-5)
    assert scores["reward_b"].to_numpy() == pytest.approx(expected_b, abs=1e-5)


def test_a_bf16_head_moves_at_a_small_learning_rate_once_trained_in_fp32(bf16_backbone):
    """Every trained weight takes AdamW's first step (about lr): in bf16 most of them would round it away."""
    model, _ = load_backbone(model_cfg(bf16_backbone), num_labels=1, for_training=True)
    head = next(p for name, p in model.named_parameters() if "modules_to_save" in name and p.requires_grad)
    before = head.detach().clone()
    optimizer = torch.optim.AdamW([head], lr=5e-5, weight_decay=0.0)
    head.grad = torch.randn_like(head)
    optimizer.step()
    assert head.dtype == torch.float32
    assert float((head.detach() != before).float().mean()) == 1.0
