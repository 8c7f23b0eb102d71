"""Our training loop: step arithmetic, batching, learning a planted signal, determinism, fingerprints."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reward_fixtures import model_cfg, write_trainset

from divpref.models.loading import load_backbone
from divpref.models.methods import get_method
from divpref.training.batching import EncodedPairs, batch_at_step, collate, epoch_batches
from divpref.training.checkpoints import run_fingerprint
from divpref.training.loop import train_reward_model
from divpref.training.params import TrainingParams, linear_schedule, make_schedule


def test_schedule_evaluates_every_quarter_of_an_epoch_not_of_all_steps():
    # 100 rows / batch 16 -> 7 steps per epoch; 10 epochs -> 70 steps; 0.25 epoch -> round(1.75) = 2 steps
    schedule = make_schedule(100, TrainingParams(batch_size=16, max_epochs=10, eval_every_epochs=0.25))
    assert (schedule.steps_per_epoch, schedule.total_steps, schedule.eval_every_steps) == (7, 70, 2)
    assert schedule.eval_steps() == list(
        range(2, 71, 2)
    )  # 35 evaluations, not 4 (HF's fraction of ALL steps)


def test_schedule_max_steps_and_final_step_always_evaluated():
    schedule = make_schedule(
        100, TrainingParams(batch_size=10, max_epochs=2, eval_every_epochs=0.25, max_steps=7)
    )
    # 10 steps/epoch, eval every round(2.5) = 2 steps, stopped at 7: the last step is evaluated too
    assert schedule.total_steps == 7 and schedule.eval_steps() == [2, 4, 6, 7]
    with pytest.raises(ValueError, match="no training rows"):
        make_schedule(0, TrainingParams())


def test_linear_schedule_warms_up_then_decays_to_zero():
    factor = linear_schedule(total_steps=10, warmup_ratio=0.2)  # 2 warm-up steps, then 8 decaying ones
    assert [factor(step) for step in range(5)] == [0.5, 1.0, 1.0, 0.875, 0.75]
    assert factor(9) == 0.125 and factor(10) == 0.0
    assert linear_schedule(4, 0.0)(0) == 1.0


def test_training_params_reject_unknown_keys_and_ignore_seeds():
    assert TrainingParams.from_mapping({"seeds": [0, 1], "batch_size": 4}).batch_size == 4
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['learning_rte'\]"):
        TrainingParams.from_mapping({"learning_rte": 1e-4})


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 500), min_size=1, max_size=300),
    batch_size=st.integers(1, 17),
    seed=st.integers(0, 3),
    epoch=st.integers(0, 3),
)
def test_epoch_batches_partition_rows_and_are_reproducible(lengths, batch_size, seed, epoch):
    batches = epoch_batches(lengths, batch_size, seed, epoch)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))  # every row exactly once
    assert len(batches) == -(-len(lengths) // batch_size)  # ceil: one step per batch
    assert all(1 <= len(b) <= batch_size for b in batches)
    again = epoch_batches(lengths, batch_size, seed, epoch)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    steps_per_epoch = len(batches)
    for within in {0, steps_per_epoch - 1}:
        step = epoch * steps_per_epoch + within
        assert np.array_equal(
            batch_at_step(lengths, batch_size, seed, step, steps_per_epoch), batches[within]
        )


def test_length_grouping_reduces_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 400, size=800)

    def padded_tokens(batches):
        return sum(len(b) * lengths[b].max() for b in batches)

    grouped = epoch_batches(lengths, 16, seed=0, epoch=0)
    shuffled = np.array_split(rng.permutation(800), 50)
    assert padded_tokens(grouped) < 0.7 * padded_tokens(shuffled)
    assert not np.array_equal(np.concatenate(grouped), np.concatenate(epoch_batches(lengths, 16, 0, 1)))


def test_collate_puts_a_rows_then_b_rows_right_padded():
    encoded = EncodedPairs(ids_a=[[1, 2, 3], [4]], ids_b=[[5], [6, 7]])
    targets = {"a_preferred": np.array([1.0, 0.0], dtype=np.float32)}
    inputs, batch_targets = collate(encoded, np.array([1, 0]), targets, pad_id=0)
    assert inputs["input_ids"].tolist() == [[4, 0, 0], [1, 2, 3], [6, 7, 0], [5, 0, 0]]
    assert inputs["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1], [1, 1, 0], [1, 0, 0]]
    assert batch_targets["a_preferred"].tolist() == [0.0, 1.0]


def test_fingerprint_changes_with_anything_that_determines_the_run(tmp_path):
    train, dev = write_trainset(tmp_path, 8, 4)
    cfg = model_cfg()
    base = run_fingerprint(TrainingParams(), cfg, "bt", [train, dev])
    assert base == run_fingerprint(TrainingParams(), dict(cfg), "bt", [train, dev])
    assert base != run_fingerprint(TrainingParams(learning_rate=1e-4), cfg, "bt", [train, dev])
    assert base != run_fingerprint(TrainingParams(seed=1), cfg, "bt", [train, dev])
    assert base != run_fingerprint(
        TrainingParams(), {**cfg, "lora": {**cfg["lora"], "r": 4}}, "bt", [train, dev]
    )
    assert base != run_fingerprint(TrainingParams(), cfg, "mse", [train, dev])
    write_trainset(tmp_path, 9, 4)  # changed training data
    assert base != run_fingerprint(TrainingParams(), cfg, "bt", [train, dev])


PARAMS = TrainingParams(
    seed=3, learning_rate=2e-3, batch_size=8, max_epochs=2, eval_every_epochs=0.5, max_length=64
)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    train, dev = write_trainset(folder / "data", n_train=96, n_dev=32)
    result = train_reward_model(
        train, dev, get_method("bt"), model_cfg(), PARAMS, folder / "ckpt", progress=False
    )
    return folder, train, dev, result


def test_trainer_learns_a_planted_signal(planted_run):
    _, _, _, result = planted_run
    curve = result["curve"]
    assert [entry["step"] for entry in curve] == [6, 12, 18, 24]  # 12 steps/epoch, every half epoch
    assert curve[-1]["train_loss"] < curve[0]["train_loss"] < np.log(2) + 0.05
    assert curve[-1]["loss"] < 0.5 * curve[0]["loss"]
    assert curve[-1]["accuracy"] >= 0.9 and curve[-1]["mean_margin"] > curve[0]["mean_margin"]


def test_trainer_changes_only_trainable_parameters(planted_run):
    from safetensors.torch import load_file

    _, _, _, result = planted_run
    torch.manual_seed(PARAMS.seed)
    initial, _ = load_backbone(model_cfg(), num_labels=1, for_training=True)
    trained = load_file(f"{result['checkpoint_dir']}/step00000024/adapter/adapter_model.safetensors")
    initial_trainable = {n: p.detach().clone() for n, p in initial.named_parameters() if p.requires_grad}
    assert any("lora_B" in n for n in initial_trainable) and any("score" in n for n in initial_trainable)
    assert all("lora" in n or "score" in n for n in initial_trainable)
    # lora_B starts at zero and the head is seeded; both moved
    b_names = [n for n in trained if "lora_B" in n]
    assert b_names and all(trained[n].abs().sum() > 0 for n in b_names)
    head = next(n for n in trained if "score" in n)
    initial_head = next(p for n, p in initial_trainable.items() if "score" in n and "modules_to_save" in n)
    assert not torch.equal(trained[head], initial_head)


def test_same_seed_is_bit_identical_and_other_seed_differs(planted_run, tmp_path):
    _, train, dev, first = planted_run
    cfg = model_cfg()
    again = train_reward_model(train, dev, get_method("bt"), cfg, PARAMS, tmp_path / "a", progress=False)
    assert json.dumps(again["curve"]) == json.dumps(first["curve"])
    other = TrainingParams(**{**PARAMS.__dict__, "seed": 4})
    different = train_reward_model(train, dev, get_method("bt"), cfg, other, tmp_path / "b", progress=False)
    assert different["curve"][0]["loss"] != first["curve"][0]["loss"]


def test_mse_trainer_fits_planted_scores(tmp_path):
    train, dev = write_trainset(tmp_path / "data", n_train=64, n_dev=16, method="mse")
    params = TrainingParams(
        seed=0, learning_rate=3e-3, batch_size=8, max_epochs=3, eval_every_epochs=1, max_length=64
    )
    result = train_reward_model(
        train, dev, get_method("mse"), model_cfg(), params, tmp_path / "ckpt", progress=False
    )
    first, last = result["curve"][0], result["curve"][-1]
    assert last["mse"] < first["mse"] and last["accuracy"] >= 0.9


def test_bad_trainset_value_is_reported_with_file_and_pair(tmp_path):
    import polars as pl

    train, dev = write_trainset(tmp_path / "data", n_train=8, n_dev=4)
    frame = pl.read_parquet(train)
    frame.with_columns(
        pl.when(pl.col("pair_id") == "p0-3").then(pl.lit("x")).otherwise("chosen").alias("chosen")
    ).write_parquet(train)
    with pytest.raises(ValueError, match=r"train\.parquet: pair_id 'p0-3': chosen='x'"):
        train_reward_model(train, dev, get_method("bt"), model_cfg(), PARAMS, tmp_path / "c", progress=False)
