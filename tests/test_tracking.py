"""Live tracking: TensorBoard event files (read back with its own reader), W&B offline, MLflow file store."""

import json
import logging
from pathlib import Path

import pytest
from reward_fixtures import model_cfg, write_trainset
from tracking_reader import assert_matches_curve, event_scalars

from divpref.models.methods import get_method
from divpref.training import tracking
from divpref.training.loop import train_reward_model
from divpref.training.params import TrainingParams

PARAMS = {
    "seed": 3,
    "learning_rate": 1e-3,
    "batch_size": 8,
    "max_epochs": 1,
    "eval_every_epochs": 0.25,
    "max_length": 64,
    "max_steps": None,
}


def spec(tmp_path: Path, backend: str = "tensorboard", **options) -> dict:
    return tracking.resolve_tracking(
        {"backend": backend, **options}, "multipref", "bt-agg", 3, str(tmp_path / "run")
    )


def test_tensorboard_event_files_hold_every_step_and_the_dev_curve(tmp_path, caplog):
    train, dev = write_trainset(tmp_path / "data", n_train=64, n_dev=16)
    tb_spec = spec(tmp_path)
    with caplog.at_level(logging.INFO, logger="divpref.training.tracking"):
        result = train_reward_model(
            train,
            dev,
            get_method("bt"),
            model_cfg(),
            TrainingParams.from_mapping(PARAMS),
            tmp_path / "ck",
            progress=False,
            tracking_spec=tb_spec,
        )
    folder = Path(tb_spec["tensorboard_dir"])
    assert folder == tmp_path / "run" / "tensorboard"
    scalars = event_scalars(folder)
    assert_matches_curve(scalars, result)
    # The learning rate is the schedule's: linear decay to 0 after the last step (no warmup here).
    lrs = [value for _, value in scalars[tracking.LR_TAG]]
    assert lrs[0] == pytest.approx(1e-3) and lrs == sorted(lrs, reverse=True)
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress ")]
    assert len(progress) == len(result["curve"])
    first = result["curve"][0]
    assert progress[0].startswith(
        f"progress step {first['step']}/{result['total_steps']} epoch {first['epoch']:.2f} "
        f"dev accuracy {first['accuracy']:.4f} "
    )
    assert "tokens/s ETA " in progress[0] and progress[-1].endswith("ETA 0s")

    # The resolved settings are there as text.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    text = accumulator.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`\n"))["fingerprint"] == result["fingerprint"]


def test_monitor_skips_steps_the_tracker_already_holds(tmp_path):
    """A resumed job re-does the steps after its last checkpoint: the tracker keeps its first points."""
    backend = tracking.Backend()
    backend.logged_through = 5
    written = []
    backend.scalars = lambda step, values: written.append((step, sorted(values)))
    monitor = tracking.RunMonitor(backend, "accuracy", total_steps=8, row_tokens=[3, 4], start_step=4)
    for step in range(5, 9):
        monitor.on_step(step, 0.5, 1e-3, [0, 1])
    monitor.on_eval({"step": 8, "epoch": 1.0, "train_loss": 0.5, "accuracy": 0.75, "checkpoint": "x"})
    assert written == [
        (6, [tracking.LOSS_TAG, tracking.LR_TAG]),
        (7, [tracking.LOSS_TAG, tracking.LR_TAG]),
        (8, [tracking.LOSS_TAG, tracking.LR_TAG]),
        (8, ["accuracy"]),
    ]
    assert monitor.tokens == 4 * 7


def test_a_resumed_monitor_writes_each_tag_from_its_own_last_point(tmp_path):
    """A job killed after the loss of step 8 reached the event file, but before that step's dev metrics did:
    the resumed job writes no loss for step 8 and the dev metrics of step 8."""
    folder = tmp_path / "tensorboard"
    spec = {"backend": "tensorboard", "tensorboard_dir": str(folder)}
    killed = tracking.TensorBoardBackend(spec, "fp", resumed=False, settings={})
    monitor = tracking.RunMonitor(killed, "accuracy", total_steps=8, row_tokens=[3], start_step=0)
    for step in range(1, 9):
        monitor.on_step(step, 0.5, 1e-3, [0])
        if step == 4:
            monitor.on_eval({"step": 4, "epoch": 0.5, "accuracy": 0.5, "checkpoint": "step4"})
    killed.close()
    resumed = tracking.TensorBoardBackend(spec, "fp", resumed=True, settings={})
    assert (resumed.last_logged(tracking.LOSS_TAG), resumed.last_logged("accuracy")) == (8, 4)
    written = []
    resumed.scalars = lambda step, values: written.append((step, sorted(values)))
    monitor = tracking.RunMonitor(resumed, "accuracy", total_steps=8, row_tokens=[3], start_step=4)
    for step in range(5, 9):
        monitor.on_step(step, 0.5, 1e-3, [0])
    monitor.on_eval({"step": 8, "epoch": 1.0, "accuracy": 0.75, "checkpoint": "step8"})
    assert written == [(8, ["accuracy"])]


def test_a_backend_that_is_not_installed_is_a_config_error(monkeypatch):
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"tracking.backend.*'mlflow'.*Python package 'mlflow'"):
        tracking.check_backend_installed({"backend": "mlflow"})
    assert tracking.check_backend_installed({"backend": "none"}) == "none"
    with pytest.raises(ValueError, match="unknown backend 'comet'"):
        tracking.check_backend_installed({"backend": "comet"})


def tiny_run(tmp_path: Path, tracking_spec: dict) -> dict:
    train, dev = write_trainset(tmp_path / "data", n_train=32, n_dev=8)
    params = TrainingParams.from_mapping({**PARAMS, "eval_every_epochs": 0.5})
    return train_reward_model(
        train, dev, get_method("bt"), model_cfg(), params, tmp_path / "ck", False, tracking_spec
    )


def test_mlflow_local_file_store_on_one_tiny_run(tmp_path):
    pytest.importorskip("mlflow")
    store = tmp_path / "mlruns"
    mlflow_spec = spec(tmp_path, "mlflow", tracking_uri=str(store), experiment="ci")
    result = tiny_run(tmp_path, mlflow_spec)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("ci").experiment_id])
    assert run.info.run_name == "multipref/bt-agg/seed3" and run.data.tags["condition"] == "bt-agg"
    assert run.info.status == "FINISHED"
    loss = client.get_metric_history(run.info.run_id, tracking.LOSS_TAG)
    assert [m.step for m in loss] == list(range(1, result["total_steps"] + 1))
    accuracy = client.get_metric_history(run.info.run_id, "accuracy")
    assert [(m.step, m.value) for m in accuracy] == [
        (e["step"], pytest.approx(e["accuracy"])) for e in result["curve"]
    ]
    assert run.data.params["params.seed"] == "3"


def wandb_records(run_file: Path):
    """The protobuf records of an offline W&B run file (LevelDB-style log: 7-byte header, 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    position, block, payload = 7, 32768, b""
    while position + 7 <= len(data):
        room = block - position % block
        if room < 7:
            position += room
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        if kind == 0 and length == 0:
            break
        payload += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            yield record
            payload = b""


def test_wandb_offline_on_one_tiny_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    wandb_spec = spec(tmp_path, "wandb", mode="offline", project="ci")
    result = tiny_run(tmp_path, wandb_spec)
    (run_file,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    records = list(wandb_records(run_file))
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (run.display_name, run.run_group, run.project) == ("multipref/bt-agg/seed3", "bt-agg", "ci")
    history = [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    loss_steps = [row["_step"] for row in history if tracking.LOSS_TAG in row]
    assert loss_steps == list(range(1, result["total_steps"] + 1))
    dev = {row["_step"]: row["accuracy"] for row in history if "accuracy" in row}
    assert dev == {e["step"]: pytest.approx(e["accuracy"]) for e in result["curve"]}
