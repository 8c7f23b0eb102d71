"""The 8-bit (bitsandbytes LLM.int8) + LoRA path on the tiny backbone, on CPU."""

import pytest
import torch
from reward_fixtures import model_cfg, write_trainset

from divpref.models.loading import load_backbone, quantization_config
from divpref.models.methods import get_method
from divpref.training.loop import train_reward_model
from divpref.training.params import TrainingParams

bnb = pytest.importorskip("bitsandbytes")


def test_quantization_config_only_when_asked_and_skips_the_head():
    assert quantization_config({"load_in_8bit": False}) is None
    config = quantization_config({"load_in_8bit": True})
    assert config.load_in_8bit and {"score", "classifier"} <= set(config.llm_int8_skip_modules)


def test_int8_lora_model_quantizes_the_body_and_keeps_the_head_trainable():
    torch.manual_seed(0)
    model, _ = load_backbone(model_cfg(load_in_8bit=True), num_labels=1, for_training=True)
    int8_layers = [name for name, module in model.named_modules() if isinstance(module, bnb.nn.Linear8bitLt)]
    assert any("q_proj" in name for name in int8_layers) and any("mlp" in name for name in int8_layers)
    assert not any("score" in name for name in int8_layers)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name or "score" in name for name in trainable)


@pytest.mark.slow
def test_int8_lora_trains_on_cpu(tmp_path):
    train, dev = write_trainset(tmp_path / "data", n_train=48, n_dev=16)
    params = TrainingParams(
        seed=0, learning_rate=3e-3, batch_size=8, max_epochs=2, eval_every_epochs=1, max_length=48
    )
    cfg = model_cfg(load_in_8bit=True)
    result = train_reward_model(train, dev, get_method("bt"), cfg, params, tmp_path / "ck", progress=False)
    first, last = result["curve"][0], result["curve"][-1]
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in result["curve"])
    assert last["loss"] < 0.5 * first["loss"] and last["accuracy"] >= 0.9
