"""Paper-scale settings: memory prediction and pre-flight, GPU checks, retries, early stopping, log noise."""

import logging
import math

import pytest
import torch
from reward_fixtures import model_cfg, shared_backbone, write_trainset

from divpref.common.devices import ALLOW_NO_VISIBLE_GPU, NoVisibleGpuError, require_visible_gpus
from divpref.models.loading import BITSANDBYTES_CAST_LOGGER, quiet_bitsandbytes_casts
from divpref.models.methods import get_method
from divpref.training import memory
from divpref.training.batching import encode_pairs
from divpref.training.checkpoints import run_fingerprint
from divpref.training.job import TrainJob
from divpref.training.loop import evaluations_without_improvement, should_stop_early, train_reward_model
from divpref.training.params import TrainingParams

BT, MSE = get_method("bt"), get_method("mse")


# --- memory model ---


def test_fit_predicts_its_linear_model_hand_worked():
    fit = memory.MemoryFit(10.0, 2.0, 5.0, 1.0, 0.5, 0.25)
    # 10 + 3 + 3*2 + 5 + 3*1 + 100 * (0.5 + 3*0.25) = 27 + 125
    assert fit.predict(layers=3, tokens=100, extra_static=3.0) == pytest.approx(152.0)
    assert memory.step_tokens(micro_batch_size=4, max_length=1024) == 8192  # both responses of 4 pairs


def test_scaling_to_llama3_8b_itself_changes_nothing_and_smaller_models_need_less():
    fit = memory.LLAMA3_8B_FIT[True]
    assert memory.scaled_fit(fit, memory.LLAMA3_8B_CONFIG) == fit
    small = {**memory.LLAMA3_8B_CONFIG, "hidden_size": 2048, "intermediate_size": 8192}
    assert memory.scaled_fit(fit, small).per_token_per_layer < fit.per_token_per_layer


def test_prediction_grows_with_micro_batch_and_checkpointing_saves_memory():
    arch = memory.LLAMA3_8B_CONFIG
    peaks = [memory.predict_training_peak(arch, m, 1024, True) for m in (1, 2, 4, 8)]
    assert peaks == sorted(peaks) and len(set(peaks)) == 4
    assert memory.predict_training_peak(arch, 4, 1024, False) > memory.predict_training_peak(
        arch, 4, 1024, True
    )
    # the paper config on the 48 GB card: the worst case of CUDA's int8 kernel (fp32 outputs) fits, tightly
    assert 40 * memory.GIB < memory.predict_training_peak(arch, 4, 1024, True) <= 48 * memory.GIB


def test_a_run_that_does_not_fit_names_the_config_keys_to_change():
    with pytest.raises(
        memory.GpuMemoryError, match=r"training\.gradient_checkpointing: true.*micro_batch_size"
    ):
        memory.check_fits(90 * memory.GIB, 48 * memory.GIB, micro_batch_size=4, gradient_checkpointing=False)
    with pytest.raises(memory.GpuMemoryError, match=r"lower training\.max_length"):
        memory.check_fits(50 * memory.GIB, 48 * memory.GIB, micro_batch_size=1, gradient_checkpointing=True)
    memory.check_fits(33 * memory.GIB, 48 * memory.GIB, micro_batch_size=4, gradient_checkpointing=True)


def test_architecture_falls_back_to_the_published_llama3_config_offline(tmp_path):
    arch, source = memory.architecture_config({"name_or_path": "meta-llama/Meta-Llama-3-8B-Instruct"})
    assert (arch["hidden_size"], arch["intermediate_size"], arch["num_hidden_layers"]) == (4096, 14336, 32)
    assert (arch["num_attention_heads"], arch["num_key_value_heads"], arch["vocab_size"]) == (32, 8, 128256)
    assert "embedded" in source
    arch, source = memory.architecture_config({"name_or_path": str(shared_backbone())})
    assert arch["hidden_size"] == 128 and source.endswith("config.json")


def test_preflight_is_skipped_without_cuda():
    assert memory.preflight({"name_or_path": "x/y", "load_in_8bit": True}, TrainingParams(), "bt") is None


# --- GPU checks and retries ---


def test_a_gpu_job_without_a_visible_gpu_fails_at_once(monkeypatch):
    monkeypatch.delenv(ALLOW_NO_VISIBLE_GPU, raising=False)
    assert require_visible_gpus(0) == 0  # a CPU job
    with pytest.raises(NoVisibleGpuError, match=r"given 1 GPU.*sees none"):
        require_visible_gpus(1)
    monkeypatch.setenv(ALLOW_NO_VISIBLE_GPU, "1")  # placeholder GPUs of the test cluster
    assert require_visible_gpus(1) == 0


def test_train_job_with_a_gpu_and_none_visible_fails_before_loading(monkeypatch, tmp_path):
    from divpref.training.job import run_job

    monkeypatch.delenv(ALLOW_NO_VISIBLE_GPU, raising=False)
    job = TrainJob(
        "missing.parquet", "missing.parquet", "bt", {}, {}, str(tmp_path), str(tmp_path / "l.json")
    )
    with pytest.raises(NoVisibleGpuError):
        run_job(TrainJob(**{**job.__dict__, "gpus_requested": 1}))


def test_retries_halve_the_micro_batch_on_cuda_only(monkeypatch):
    job = TrainJob(
        "t", "d", "bt", {}, {"batch_size": 16, "micro_batch_size": 4}, "c", "l", micro_batch_halvings=1
    )
    assert job.params().pairs_per_micro_batch == 4  # CPU: a retry resumes bit-identically
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert job.params().pairs_per_micro_batch == 2 and job.params().batch_size == 16
    third = TrainJob(**{**job.__dict__, "micro_batch_halvings": 2, "training": {"batch_size": 16}})
    assert third.params().pairs_per_micro_batch == 4  # 16 -> 8 -> 4 on the third attempt
    last = TrainJob(**{**job.__dict__, "micro_batch_halvings": 5})
    assert last.params().pairs_per_micro_batch == 1


def test_execution_settings_do_not_change_the_fingerprint_so_retries_resume(tmp_path):
    train, dev = write_trainset(tmp_path, n_train=8, n_dev=4)
    base = TrainingParams(batch_size=16)
    other = TrainingParams(batch_size=16, micro_batch_size=2, gradient_checkpointing=True, data_parallel=4)
    changed = TrainingParams(batch_size=8)
    fingerprint = run_fingerprint(base, model_cfg(), "bt", [train, dev])
    assert run_fingerprint(other, model_cfg(), "bt", [train, dev]) == fingerprint
    assert run_fingerprint(changed, model_cfg(), "bt", [train, dev]) != fingerprint


def test_training_params_validate_the_new_keys():
    assert TrainingParams.from_mapping({"batch_size": 16}).pairs_per_micro_batch == 16
    for bad in (
        {"micro_batch_size": 0},
        {"data_parallel": 0},
        {"early_stopping_patience": 0},
        {"bf16": "yes"},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainingParams.from_mapping(bad)


# --- early stopping ---


def curve(values, metric="accuracy"):
    return [{"step": i + 1, metric: value} for i, value in enumerate(values)]


def test_evaluations_without_improvement_hand_worked():
    assert (
        evaluations_without_improvement(curve([0.5, 0.7, 0.6, 0.7, 0.65]), BT) == 3
    )  # 0.7 at index 1; ties lose
    assert evaluations_without_improvement(curve([0.5, math.nan, 0.8]), BT) == 0
    assert evaluations_without_improvement(curve([3.0, 2.0, 2.5], "mse"), MSE) == 1  # lower is better
    assert evaluations_without_improvement([], BT) == 0
    assert should_stop_early(curve([0.5, 0.7, 0.6, 0.6]), BT, 2)
    assert not should_stop_early(curve([0.5, 0.7, 0.6]), BT, 2)
    assert not should_stop_early(curve([0.9] + [0.1] * 50), BT, None)  # off


@pytest.mark.slow
def test_early_stopping_ends_the_run_after_patience_evaluations_without_improvement(tmp_path):
    train, dev = write_trainset(tmp_path / "data", n_train=64, n_dev=16)
    # lr 0: the dev metric never changes, so the first evaluation stays the best
    params = TrainingParams(
        learning_rate=1e-12,
        batch_size=8,
        max_epochs=4,
        eval_every_epochs=0.25,
        max_length=32,
        early_stopping_patience=2,
    )
    result = train_reward_model(train, dev, BT, model_cfg(), params, tmp_path / "ck", progress=False)
    assert result["stopped_early"] and [e["step"] for e in result["curve"]] == [2, 4, 6]
    assert result["total_steps"] == 32


# --- truncation and log noise ---


def test_a_prompt_longer_than_max_length_still_leaves_a_and_b_different():
    import polars as pl
    from transformers import AutoTokenizer

    from divpref.models.inference import unique_texts  # scoring encodes with the trainer's encode_text

    tokenizer = AutoTokenizer.from_pretrained(shared_backbone())
    long_prompt = " ".join(["context"] * 400)
    frame = pl.DataFrame(
        {
            "pair_id": ["p"],
            "prompt": [long_prompt],
            "response_a": ["excellent answer"],
            "response_b": ["terrible"],
        }
    )
    encoded = encode_pairs(frame, tokenizer, max_length=64)
    a, b = encoded.ids_a[0], encoded.ids_b[0]
    assert len(tokenizer(long_prompt)["input_ids"]) > 64 and len(a) <= 64 and len(b) <= 64
    assert a != b and a[-3:] == tokenizer("x", "excellent answer")["input_ids"][-3:]
    texts, _, _ = unique_texts(frame)
    assert len(texts) == 2


def test_bitsandbytes_cast_warnings_are_logged_once_per_dtype(caplog, monkeypatch):
    logger = logging.getLogger(BITSANDBYTES_CAST_LOGGER)
    monkeypatch.setattr(logger, "filters", [])  # a fresh filter: earlier tests' int8 runs saw these messages
    quiet_bitsandbytes_casts()
    quiet_bitsandbytes_casts()  # idempotent: one filter
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger=BITSANDBYTES_CAST_LOGGER):
        for _ in range(7 * 32):  # 7 per layer per forward pass on 32 layers
            logger.warning(
                "MatMul8bitLt: inputs will be cast from %s to float16 during quantization", "torch.float32"
            )
        logger.warning(
            "MatMul8bitLt: inputs will be cast from %s to float16 during quantization", "torch.bfloat16"
        )
    assert [r.getMessage()[-42:] for r in caplog.records] == [
        "from torch.float32 to float16 during quantization"[-42:],
        "rom torch.bfloat16 to float16 during quantization"[-42:],
    ]


@pytest.mark.slow
def test_int8_training_logs_the_cast_warning_at_most_once_per_dtype(tmp_path, caplog):
    pytest.importorskip("bitsandbytes")
    train, dev = write_trainset(tmp_path / "data", n_train=16, n_dev=8)
    params = TrainingParams(
        batch_size=8,
        max_epochs=1,
        eval_every_epochs=1,
        max_length=32,
        micro_batch_size=4,
        gradient_checkpointing=True,
    )
    quiet_bitsandbytes_casts()
    for once in logging.getLogger(BITSANDBYTES_CAST_LOGGER).filters:
        once.seen.clear()  # forget what earlier tests in this process logged
    with caplog.at_level(logging.WARNING):
        train_reward_model(
            train, dev, BT, model_cfg(load_in_8bit=True), params, tmp_path / "ck", progress=False
        )
    casts = [r for r in caplog.records if "MatMul8bitLt" in r.getMessage()]
    assert len(casts) == 1, len(casts)  # fp32 inputs on CPU: one line, not 7 per layer per forward
