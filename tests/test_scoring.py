"""Scoring: batching helpers, and a real tiny adapter scored in batches equals scoring one text at a time."""

import numpy as np
import polars as pl
import pytest
from reward_fixtures import model_cfg, tiny_backbone  # noqa: F401 - tiny_backbone is a fixture

from divpref.evaluation.scoring import check_test_pairs, score_test_pairs
from divpref.models.inference import length_sorted_batches, unique_texts
from divpref.models.tokenization import pad_right


def test_length_sorted_batches_cover_every_index_once_longest_first():
    lengths = [3, 9, 1, 9, 5, 2, 7]
    batches = length_sorted_batches(lengths, 3)
    assert [len(b) for b in batches] == [3, 3, 1]
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in np.concatenate(batches)] == sorted(lengths, reverse=True)
    with pytest.raises(ValueError, match="batch_size"):
        length_sorted_batches(lengths, 0)


def test_pad_right():
    ids, mask = pad_right([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_unique_texts_share_repeated_responses():
    test = pl.DataFrame(
        {"pair_id": ["x", "y"], "prompt": ["p", "p"], "response_a": ["r1", "r2"], "response_b": ["r2", "r3"]}
    )
    texts, index_a, index_b = unique_texts(test)
    assert texts == [("p", "r1"), ("p", "r2"), ("p", "r3")]
    assert index_a.tolist() == [0, 1] and index_b.tolist() == [1, 2]


def test_check_test_pairs_names_the_problem():
    good = pl.DataFrame({"pair_id": ["x"], "prompt": ["p"], "response_a": ["a"], "response_b": ["b"]})
    check_test_pairs(good, "test.parquet")
    with pytest.raises(ValueError, match=r"test.parquet: pair_id 'x' appears more than once"):
        check_test_pairs(pl.concat([good, good]), "test.parquet")
    with pytest.raises(ValueError, match=r"test.parquet: pair_id 'x' has a null response_b"):
        check_test_pairs(good.with_columns(pl.lit(None, dtype=pl.String).alias("response_b")), "test.parquet")
    with pytest.raises(ValueError, match="missing column"):
        check_test_pairs(good.drop("prompt"), "test.parquet")


@pytest.fixture(scope="module")
def exported_adapter(tiny_backbone, tmp_path_factory):  # noqa: F811
    """A LoRA adapter on the tiny backbone (randomly initialised head), exported as select_checkpoint does."""
    import torch

    from divpref.models.loading import load_backbone, write_head_info
    from divpref.models.tokenization import encode_text

    torch.manual_seed(0)
    model, tokenizer = load_backbone(model_cfg(tiny_backbone), num_labels=1, for_training=True)
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_head_info(out, 1, tokenizer.pad_token_id)
    # The in-memory model's reward of one text, to check that the exported folder restores the same model.
    ids = torch.tensor([encode_text(tokenizer, "a prompt", "a reply here", 64)])
    with torch.inference_mode():
        reference = float(model.eval()(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, 0])
    return out, reference


@pytest.mark.slow
def test_batched_scores_equal_one_at_a_time(exported_adapter):
    import torch

    from divpref.models.loading import load_for_inference
    from divpref.models.tokenization import encode_text

    adapter_dir, reference_reward = exported_adapter
    model, tokenizer = load_for_inference(adapter_dir, "cpu")
    words = "the model answer reply text some more words here and there".split()
    rng = np.random.default_rng(0)
    test = pl.DataFrame(
        {
            "pair_id": [f"q{i}" for i in range(7)],
            "prompt": [" ".join(rng.choice(words, 4)) for _ in range(7)],
            "response_a": [" ".join(rng.choice(words, int(rng.integers(1, 20)))) for _ in range(7)],
            "response_b": [" ".join(rng.choice(words, int(rng.integers(1, 20)))) for _ in range(7)],
        }
    )
    scores = score_test_pairs(model, tokenizer, test, method="bt", max_length=64, batch_size=3, device="cpu")
    assert scores["pair_id"].to_list() == test["pair_id"].to_list()
    assert scores["sigma_a"].null_count() == 7 and scores["label_probs"].null_count() == 7

    def alone(prompt, response):
        ids = torch.tensor([encode_text(tokenizer, prompt, response, 64)])
        with torch.inference_mode():
            return float(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, 0])

    expected_a = [alone(p, r) for p, r in zip(test["prompt"], test["response_a"], strict=True)]
    expected_b = [alone(p, r) for p, r in zip(test["prompt"], test["response_b"], strict=True)]
    assert scores["reward_a"].to_list() == pytest.approx(expected_a, abs=1e-5)
    assert scores["reward_b"].to_list() == pytest.approx(expected_b, abs=1e-5)
    # The head is not constant, so the comparisons mean something.
    assert len(set(np.round(expected_a, 6))) > 1
    assert alone("a prompt", "a reply here") == pytest.approx(reference_reward, abs=1e-5)
    with pytest.raises(ValueError, match="expects 2"):
        score_test_pairs(model, tokenizer, test, method="mean_var", max_length=64, batch_size=3, device="cpu")
