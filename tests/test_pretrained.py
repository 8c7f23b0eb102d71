"""Off-the-shelf reward models (`method: pretrained`): loading, chat template, padding-proof scoring, and
causal-LM reward models whose reward is a next-token logit (`reward_from: first_token_logit`).

The pretrained condition's run through Snakemake (Table 2, detection, plots) is in tests/test_own_data.py."""

import polars as pl
import pytest
import torch
import yaml
from conftest import copy_workflow, run_snakemake

from divpref.models.pretrained import (
    FIRST_TOKEN_LOGIT,
    check_reward_model,
    load_pretrained,
    pooling_pad_id,
    score_pairs,
)
from divpref.models.tiny_backbone import CHAT_TEMPLATE, build_backbone
from divpref.models.tokenization import encode_text

TINY_BUILD = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "intermediate_size": 64,
    "seed": 3,
}


@pytest.fixture(scope="module")
def tiny_reward_model(tmp_path_factory):
    return build_backbone({**TINY_BUILD, "reward_model": True}, tmp_path_factory.mktemp("rm") / "model")


def pairs_frame() -> pl.DataFrame:
    prompts = ["Say hi.", "Is 7 prime?", "Name a colour.", "Say hi."]
    return pl.DataFrame(
        {
            "pair_id": ["a", "b", "c", "d"],
            "prompt": prompts,
            "response_a": ["Hi.", "Yes, seven is prime.", "Red.", "Hello there, how are you today?"],
            "response_b": ["Hello.", "No.", "A long answer: blue, or perhaps red, or green.", "Hi."],
        }
    )


def test_pooling_pad_id_avoids_every_token_in_use():
    assert pooling_pad_id([[0, 1], [2]], preferred=5, vocab_size=10) == 5
    assert pooling_pad_id([[0, 1], [2, 5]], preferred=5, vocab_size=10) == 3
    with pytest.raises(ValueError, match="no id left"):
        pooling_pad_id([[0, 1, 2]], preferred=None, vocab_size=3)


def test_batched_scores_equal_one_at_a_time_and_use_the_chat_template(tiny_reward_model):
    model, tokenizer = load_pretrained({"name_or_path": str(tiny_reward_model)}, "cpu")
    text = tokenizer.decode(encode_text(tokenizer, "Say hi.", "Hi.", 64))
    assert (
        text.startswith("[CLS] [ user ] say hi.") and "[ assistant ] hi." in text
    )  # the model's own template
    # The template ends every turn with EOS, which is also the pad fallback: naive padding would score the
    # token before it. Batched (padded) scoring must equal the model's output at each unpadded sequence's
    # last token (pad_token_id None: the head then reads position -1).
    pairs = pairs_frame()
    batched = score_pairs(model, tokenizer, pairs, max_length=64, batch_size=4, device="cpu")
    assert batched["pair_id"].to_list() == pairs["pair_id"].to_list()
    model.config.pad_token_id = None
    for column, response in (("reward_a", "response_a"), ("reward_b", "response_b")):
        expected = []
        for prompt, text in zip(pairs["prompt"], pairs[response], strict=True):
            ids = torch.tensor([encode_text(tokenizer, prompt, text, 64)])
            with torch.inference_mode():
                expected.append(float(model(input_ids=ids).logits[0, 0]))
        assert batched[column].to_list() == pytest.approx(expected, abs=1e-5)
    assert batched["reward_a"][0] == pytest.approx(batched["reward_b"][3], abs=1e-6)  # same text, same reward
    assert batched["sigma_a"].null_count() == 4 and batched["label_probs"].null_count() == 4
    assert batched["reward_a"].n_unique() > 1


def test_refuses_a_model_without_a_reward_head(tmp_path):
    causal = build_backbone(TINY_BUILD, tmp_path / "causal")
    with pytest.raises(
        ValueError, match=r"causal: not a sequence-classification reward model.*LlamaForCausalLM"
    ):
        load_pretrained({"name_or_path": str(causal)}, "cpu")

    class Config:
        architectures = ("GemmaForSequenceClassification",)
        num_labels = 5

    with pytest.raises(ValueError, match="head has 5 outputs"):
        check_reward_model("x", Config)


@pytest.fixture(scope="module")
def tiny_causal_reward_model(tmp_path_factory):
    """A seeded tiny causal LM with a chat template: the offline stand-in for Nemotron-70B-Reward-HF."""
    from transformers import AutoTokenizer

    folder = build_backbone(TINY_BUILD, tmp_path_factory.mktemp("causal_rm") / "model")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("token_index", [0, 7])
def test_first_token_logit_equals_a_direct_forward_pass_and_the_model_card_recipe(
    tiny_causal_reward_model, token_index
):
    spec = {"name_or_path": str(tiny_causal_reward_model), "reward_from": FIRST_TOKEN_LOGIT}
    model, tokenizer = load_pretrained(spec, "cpu")
    pairs = pairs_frame()
    batched = score_pairs(
        model,
        tokenizer,
        pairs,
        max_length=64,
        batch_size=3,  # mixed lengths in a batch: padding must not move any reward
        device="cpu",
        reward_from=FIRST_TOKEN_LOGIT,
        token_index=token_index,
    )
    assert batched["pair_id"].to_list() == pairs["pair_id"].to_list()
    for column, response in (("reward_a", "response_a"), ("reward_b", "response_b")):
        direct, generated = [], []
        for prompt, text in zip(pairs["prompt"], pairs[response], strict=True):
            ids = torch.tensor([encode_text(tokenizer, prompt, text, 64)])
            with torch.inference_mode():
                # one unpadded forward pass: the logit of token_index after the conversation's last token
                direct.append(float(model(input_ids=ids).logits[0, -1, token_index]))
                # the model card's recipe: generate one token and read its scores
                out = model.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=1,
                    do_sample=False,
                    return_dict_in_generate=True,
                    output_scores=True,
                    pad_token_id=tokenizer.eos_token_id,
                )
                generated.append(float(out["scores"][0][0][token_index]))
        assert batched[column].to_list() == pytest.approx(direct, abs=1e-5)
        assert batched[column].to_list() == pytest.approx(generated, abs=1e-5)
    assert batched["reward_a"][0] == pytest.approx(batched["reward_b"][3], abs=1e-6)  # same text, same reward
    assert batched["sigma_a"].null_count() == 4 and batched["reward_a"].n_unique() > 1


def test_reward_from_refuses_the_wrong_kind_of_checkpoint(tiny_reward_model, tiny_causal_reward_model):
    causal = str(tiny_causal_reward_model)
    with pytest.raises(ValueError, match="set `reward_from: first_token_logit`"):
        load_pretrained({"name_or_path": causal}, "cpu")
    with pytest.raises(ValueError, match=r"needs a causal LM.*LlamaForSequenceClassification"):
        load_pretrained({"name_or_path": str(tiny_reward_model), "reward_from": FIRST_TOKEN_LOGIT}, "cpu")
    with pytest.raises(ValueError, match="token_index 100000 is outside its vocabulary"):
        load_pretrained(
            {"name_or_path": causal, "reward_from": FIRST_TOKEN_LOGIT, "token_index": 100000}, "cpu"
        )
    with pytest.raises(ValueError, match=r"model\.reward_from: 'logits'"):
        load_pretrained({"name_or_path": causal, "reward_from": "logits"}, "cpu")


def test_score_pretrained_gets_as_many_gpus_as_model_gpus_on_a_cluster(tmp_path):
    """With site settings (`cluster:`), score_pretrained asks for the condition's `model.gpus` GPUs."""
    workdir = copy_workflow(tmp_path / "wf")
    overlay = workdir / "overlay.yaml"
    model = {
        "name_or_path": "nvidia/Llama-3.1-Nemotron-70B-Reward-HF",
        "reward_from": FIRST_TOKEN_LOGIT,
        "gpus": 2,
    }
    conditions = {
        "nemotron-70b": {"method": "pretrained", "datasets": ["multipref"], "model": model},
        "one-gpu": {"method": "pretrained", "datasets": ["multipref"], "model": {"name_or_path": "x/y"}},
    }
    cluster = {
        "cpu_partition": "mycpu",
        "gpu_partition": "mygpu",
        "gpu_model": "h100",
        "max_runtime_minutes": 600,
    }
    overlay.write_text(yaml.safe_dump({"conditions": conditions, "cluster": cluster}))
    proc = run_snakemake(
        workdir,
        "-n",
        "--cores",
        "4",
        "results/scores/multipref/nemotron-70b/seed0.parquet",
        "results/scores/multipref/one-gpu/seed0.parquet",
        "--configfile",
        str(overlay),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    jobs = {
        block.split("wildcards: dataset=multipref, condition=")[1].split()[0]: block
        for block in proc.stdout.split("rule score_pretrained:")[1:]
    }
    assert "gpu=2" in jobs["nemotron-70b"] and "gpu_model=h100" in jobs["nemotron-70b"]
    assert "gpu=1" in jobs["one-gpu"]
