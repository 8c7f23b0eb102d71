"""Rule gpu_check's code on CPU: the record's fields, the failure messages, the grid hours, the memory model.

No GPU can be lent here: the CUDA-only parts (int8 on CUDA, NCCL, GPU memory) are covered by their messages
and by the CPU forms of the same calls; results/gpu_check.json of a real GPU run is not faked.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from reward_fixtures import model_cfg, write_trainset

from divpref.common.devices import ALLOW_NO_VISIBLE_GPU
from divpref.training import gpu_check, memory
from divpref.training.gpu_hours import CHECKPOINTING_COST, EVAL_COST
from divpref.training.params import TrainingParams

REPO = Path(__file__).resolve().parents[1]
FIELDS = (
    "device",
    "gpu_name",
    "gpu_memory_gib",
    "torch_cuda",
    "driver",
    "int8_ok",
    "nccl_ok",
    "peak_memory_gib",
    "predicted_peak_gib",
    "tokens_per_second",
    "grid_gpu_hours",
)


def test_driver_too_old_names_both_versions_and_the_cuda12_option():
    message = gpu_check.no_gpu_message(1, "2.13.0", "13.0", "535.104.05")
    assert "driver 535.104.05 is too old" in message and "CUDA 13.0 build" in message
    assert "driver 580 or newer" in message and "cuda_build: cu126" in message
    assert "download.pytorch.org/whl/cu126" in message


def test_no_gpu_messages_name_the_cause():
    assert "CPU-only build" in gpu_check.no_gpu_message(2, "2.13.0+cpu", None, None)
    assert "nvidia-smi was not found" in gpu_check.no_gpu_message(1, "2.13.0", "13.0", None)
    # A recent driver that still shows no GPU: no version claim, but the same pointers.
    recent = gpu_check.no_gpu_message(1, "2.13.0", "13.0", "580.65.06")
    assert "too old" not in recent and "cuda_build: cu126" in recent


def test_memory_advice_names_the_keys_in_order():
    advice = gpu_check.memory_advice(TrainingParams(micro_batch_size=4, gradient_checkpointing=False))
    assert advice.index("training.gradient_checkpointing") < advice.index("training.micro_batch_size")
    assert advice.endswith("lower training.max_length")
    assert gpu_check.memory_advice(TrainingParams(micro_batch_size=1, gradient_checkpointing=True)) == (
        "lower training.max_length"
    )


def test_a_job_given_gpus_without_one_fails_before_loading(monkeypatch):
    monkeypatch.delenv(ALLOW_NO_VISIBLE_GPU, raising=False)
    with pytest.raises(gpu_check.GpuCheckError, match=r"gpu_check: .*given 1 GPU"):
        gpu_check.run_gpu_check({"name_or_path": "/nonexistent"}, {}, gpus_requested=1)


def test_gpu_check_on_cpu_records_every_field_and_the_grid_hours(tmp_path):
    train, dev = write_trainset(tmp_path, n_train=6, n_dev=4)
    training = {"batch_size": 8, "max_length": 32, "learning_rate": 1e-3, "max_epochs": 2, "seed": 0}
    runs = [{"train": str(train), "dev": str(dev), "training": training, "seeds": 3}]
    result = gpu_check.run_gpu_check(model_cfg(), training, runs=runs, steps=2)
    assert set(FIELDS) <= set(result)
    assert result["device"] == "cpu"
    for field in gpu_check.GPU_ONLY_FIELDS:
        assert result[field] is None, field
    assert result["predicted_peak_gib"] is None  # the memory model covers 8-bit backbones only
    assert result["tokens_per_second"] > 0
    assert (result["micro_batch_size"], result["max_length"], result["steps"]) == (8, 32, 2)
    # Hand-worked: every set fits one batch (train: 8 pairs, dev: 16), padded to its longest response.
    import polars as pl
    from transformers import AutoTokenizer

    from divpref.models.loading import prepare_tokenizer
    from divpref.training.batching import encode_pairs

    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(model_cfg()["name_or_path"]))
    lengths = {
        part: encode_pairs(pl.read_parquet(path), tokenizer, 32).lengths
        for part, path in (("t", train), ("d", dev))
    }
    train_tokens = 2 * 6 * int(lengths["t"].max())
    dev_tokens = 2 * 4 * int(lengths["d"].max())
    per_epoch = train_tokens + dev_tokens * EVAL_COST / 0.25  # eval_every_epochs default 0.25
    expected = 3 * 2 * per_epoch / result["tokens_per_second"] / 3600
    assert result["grid_gpu_hours"] == pytest.approx(expected, rel=1e-9)
    json.dumps(result)  # the record is JSON


def test_throughput_with_checkpointing_counts_the_recomputed_forward():
    from divpref.training.gpu_hours import plain_tokens_per_second

    assert plain_tokens_per_second(300.0, True) == pytest.approx(300.0 * CHECKPOINTING_COST)
    assert plain_tokens_per_second(300.0, False) == 300.0


def write_check(path: Path, **fields) -> Path:
    record = {
        "device": "cuda",
        "model": "m/x",
        "load_in_8bit": True,
        "micro_batch_size": 4,
        "max_length": 1024,
        "gradient_checkpointing": True,
        "peak_memory_gib": {"allocated": 30.0, "reserved": 50.0},
        **fields,
    }
    path.write_text(json.dumps(record))
    return path


def test_the_memory_model_takes_a_higher_gpu_measurement_of_the_same_setup(tmp_path):
    cfg = {"name_or_path": "m/x", "load_in_8bit": True}
    params = TrainingParams(micro_batch_size=4, max_length=1024, gradient_checkpointing=True)
    predicted = memory.predicted_peak(cfg, params)
    assert predicted is not None and predicted < 50 * memory.GIB
    missing = tmp_path / "none.json"
    assert memory.training_peak(cfg, params, missing) == (
        predicted,
        "memory model (worst case of the int8 kernels)",
    )
    higher = write_check(tmp_path / "higher.json")
    assert memory.training_peak(cfg, params, higher)[0] == 50 * memory.GIB
    lower = write_check(tmp_path / "lower.json", peak_memory_gib={"allocated": 1.0, "reserved": 2.0})
    assert memory.training_peak(cfg, params, lower)[0] == predicted
    for other in (
        {"max_length": 512},
        {"device": "cpu"},
        {"model": "m/y"},
        {"gradient_checkpointing": False},
    ):
        path = write_check(tmp_path / "other.json", **other)
        assert memory.training_peak(cfg, params, path)[0] == predicted, other


def dry_run(*config: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", "tests/config/ci.yaml", "--config", *config]
        if config
        else [sys.executable, "-m", "snakemake", "-n", "--configfile", "tests/config/ci.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr  # snakemake prints the plan on stderr


def test_gpu_check_is_planned_beside_the_grid_unless_it_is_off():
    plan = dry_run()
    assert "rule gpu_check:" in plan and "output: results/gpu_check.json" in plan
    train_jobs = [block for block in plan.split("\n\n") if "rule train:" in block]
    # Not an input of training (README, The GPU check): a rerun check must neither hide nor force retraining.
    assert train_jobs and not any("results/gpu_check.json" in block for block in train_jobs)
    off = dry_run("gpu_check=False")
    assert "rule gpu_check:" not in off and "results/gpu_check.json" not in off


def test_deterministic_is_off_on_cpu_and_sets_both_settings_where_a_gpu_is_visible(monkeypatch):
    import torch

    from divpref.common import devices
    from divpref.training.checkpoints import run_fingerprint

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert devices.set_deterministic(True) is False  # CPU: nothing to set
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    # Where a GPU is visible (faked here: none can be lent), the real torch settings are switched on.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.set_deterministic(False) is False
    try:
        assert devices.set_deterministic(True) is True
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    # Not part of the run fingerprint: switching it resumes the same run.
    cfg = {"name_or_path": "m/x"}
    on, off = TrainingParams(deterministic=True), TrainingParams(deterministic=False)
    assert run_fingerprint(on, cfg, "bt", []) == run_fingerprint(off, cfg, "bt", [])


def test_optimizer_state_resumes_onto_the_models_own_device(tmp_path, monkeypatch):
    """torch.load gets map_location = the device of the rank's model (a spy around the real torch.load)."""
    import torch

    from divpref.models.loading import load_backbone
    from divpref.training import checkpoints
    from divpref.training.params import linear_schedule

    model, _ = load_backbone(model_cfg(), 1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(10, 0.0))
    folder = checkpoints.save_checkpoint(tmp_path, 1, model, optimizer, scheduler, {"step": 1, "curve": []})
    seen = []
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.append((Path(args[0]).name, kwargs.get("map_location")))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    assert checkpoints.load_checkpoint(folder, model, optimizer, scheduler)["step"] == 1
    assert dict(seen) == {checkpoints.OPTIMIZER_FILE: torch.device("cpu"), checkpoints.RNG_FILE: "cpu"}


@pytest.mark.slow
def test_the_all_reduce_check_passes_over_two_processes():
    """check_all_reduce's NCCL form needs GPUs; its gloo form spawns the same processes on CPU."""
    assert gpu_check.check_all_reduce(2, backend="gloo") is True
