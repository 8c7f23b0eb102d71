"""Checkpoint selection on hand-made logs, and the exported adapter loading back through plain peft."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from reward_fixtures import model_cfg, shared_backbone, write_trainset

from divpref.models.loading import load_for_inference
from divpref.models.methods import get_method
from divpref.training.batching import collate, encode_pairs
from divpref.training.loop import train_reward_model
from divpref.training.params import TrainingParams
from divpref.training.selection import best_record, export_adapter, select_best
from divpref.training.steps import forward_pairs

NAN = float("nan")


def curve(*values):
    return [
        {"step": 10 * (i + 1), "epoch": 0.25 * (i + 1), "accuracy": v, "mse": v} for i, v in enumerate(values)
    ]


def test_picks_the_best_step():
    assert select_best(curve(0.5, 0.7, 0.6), "accuracy", True)["step"] == 20
    assert select_best(curve(0.5, 0.7, 0.6), "mse", False)["step"] == 10


def test_ties_go_to_the_earliest_step_even_if_listed_out_of_order():
    entries = curve(0.6, 0.8, 0.8, 0.8)
    assert select_best(entries[::-1], "accuracy", True)["step"] == 20
    assert select_best(curve(0.3, 0.2, 0.2), "mse", False)["step"] == 20


def test_nan_never_wins_and_all_nan_is_a_clear_error():
    assert select_best(curve(NAN, 0.1, NAN), "accuracy", True)["step"] == 20
    assert select_best(curve(NAN, 0.9, 0.1), "mse", False)["step"] == 30
    assert (
        select_best([{**curve(0.4)[0], "accuracy": None}, *curve(0.4, 0.3)[1:]], "accuracy", True)["step"]
        == 20
    )
    with pytest.raises(
        ValueError, match=r"run\.json: metric 'accuracy' is NaN at every one of 2 evaluations"
    ):
        select_best(curve(NAN, NAN), "accuracy", True, source="run.json")
    with pytest.raises(ValueError, match="empty"):
        select_best([], "accuracy", True)
    with pytest.raises(ValueError, match="has no metric 'auroc'"):
        select_best(curve(0.1), "auroc", True)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 1), st.just(NAN)), min_size=1, max_size=20), st.booleans())
def test_matches_a_reference_selector(values, greater):
    finite = [(v if greater else -v, -i) for i, v in enumerate(values) if not math.isnan(v)]
    if not finite:
        with pytest.raises(ValueError):
            select_best(curve(*values), "accuracy", greater)
        return
    expected_index = -max(finite)[1]  # best value, then the smallest index
    assert select_best(curve(*values), "accuracy", greater)["step"] == 10 * (expected_index + 1)


def test_best_record_holds_epoch_step_metric_and_curve():
    log = {
        "method": "bt",
        "selection_metric": "accuracy",
        "greater_is_better": True,
        "checkpoint_dir": "ck/abc",
        "fingerprint": "abc",
        "curve": [{**e, "checkpoint": f"step{e['step']:08d}"} for e in curve(0.5, 0.9)],
    }
    record = best_record(log)
    assert (record["epoch"], record["step"], record["metric"], record["value"]) == (0.5, 20, "accuracy", 0.9)
    assert record["checkpoint"] == "ck/abc/step00000020" and record["curve"] == log["curve"]


@pytest.mark.slow
def test_exported_adapter_loads_with_plain_peft_and_scores_like_the_checkpoint(tmp_path):
    from peft import AutoPeftModelForSequenceClassification

    train, dev = write_trainset(tmp_path / "data", n_train=48, n_dev=16)
    params = TrainingParams(
        seed=1, learning_rate=2e-3, batch_size=8, max_epochs=1, eval_every_epochs=0.5, max_length=64
    )
    log = train_reward_model(
        train, dev, get_method("bt"), model_cfg(), params, tmp_path / "ck", progress=False
    )
    record = best_record(log)
    out = export_adapter(
        record["checkpoint"],
        log["tokenizer_dir"],
        tmp_path / "adapter",
        log["head_outputs"],
        log["pad_token_id"],
    )
    assert (out / "adapter_model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        shared_backbone()
    )

    model, tokenizer = load_for_inference(out)
    plain = AutoPeftModelForSequenceClassification.from_pretrained(
        str(out), num_labels=1, pad_token_id=tokenizer.pad_token_id
    ).eval()
    import polars as pl

    encoded = encode_pairs(pl.read_parquet(dev), tokenizer, 64)
    inputs, _ = collate(encoded, list(range(16)), {}, tokenizer.pad_token_id)
    with torch.no_grad():
        out_a, out_b = forward_pairs(model, inputs, bf16=False)
        plain_a, _ = forward_pairs(plain, inputs, bf16=False)
    from divpref.training.batching import read_trainset

    _, targets = read_trainset(dev, get_method("bt"))
    metrics = get_method("bt").dev_metrics(
        out_a, out_b, {"a_preferred": torch.from_numpy(targets["a_preferred"])}
    )
    assert metrics["accuracy"] == pytest.approx(record["value"])  # the selected checkpoint, reloaded
    assert metrics["mean_margin"] == pytest.approx(record["mean_margin"], rel=1e-4)
    assert torch.allclose(out_a, plain_a)


def ci_training_runs(workdir: Path) -> list[tuple[str, str]]:
    """(dataset, condition) of every training run of the CI config (seed 0), from the merged config."""
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    overlay = yaml.safe_load((workdir / "tests/config/ci.yaml").read_text())
    conditions = overlay.get("conditions", config["conditions"])
    datasets = list(overlay.get("datasets", config["datasets"]))
    return [(d, name) for name, spec in conditions.items() for d in spec.get("datasets", datasets)]


@pytest.mark.slow
def test_ci_run_selects_and_exports_a_loadable_adapter_for_every_condition(ci_run, monkeypatch):
    monkeypatch.chdir(ci_run)  # adapters name their base model relative to the workflow's working directory
    runs = ci_training_runs(ci_run)
    assert {"bt-agg", "bt-all", "mse-agg", "mse-all"} <= {condition for _, condition in runs}
    for dataset, condition in runs:
        folder = ci_run / "results/models" / dataset / condition / "seed0"
        best = json.loads((folder / "best.json").read_text())
        train_log = json.loads(
            (ci_run / "results/train" / dataset / condition / "seed0/train_log.json").read_text()
        )
        assert best["curve"] == train_log["curve"] and len(best["curve"]) >= 4  # every quarter epoch
        assert best == {**best_record(train_log), "checkpoint": best["checkpoint"]}
        assert (ci_run / best["checkpoint"] / "adapter/adapter_model.safetensors").is_file()
        model, tokenizer = load_for_inference(folder / "adapter")
        assert model.config.num_labels == get_method(train_log["method"]).head_outputs
        with torch.no_grad():
            logits = model(
                **tokenizer(["a prompt", "another"], ["a reply", "x"], padding=True, return_tensors="pt")
            )
        assert torch.isfinite(logits.logits).all()
