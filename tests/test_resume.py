"""Resume: a REAL training process killed with SIGKILL mid-run, rerun, ends like an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from reward_fixtures import model_cfg, write_trainset
from tracking_reader import assert_matches_curve, event_scalars

from divpref.training.selection import select_best

REPO = Path(__file__).resolve().parents[1]
PARAMS = {
    "seed": 5,
    "learning_rate": 1e-3,
    "batch_size": 4,
    "max_epochs": 1,
    "eval_every_epochs": 0.08,
    "max_length": 96,
    "max_steps": None,
}

DRIVER = textwrap.dedent("""
    import json, sys
    import torch
    from divpref.models.methods import get_method
    from divpref.training.loop import train_reward_model
    from divpref.training.params import TrainingParams

    torch.set_num_threads(1)
    from divpref.training.tracking import resolve_tracking

    train, dev, cfg, params, root, out = sys.argv[1:]
    spec = resolve_tracking({}, "multipref", "bt-agg", 5, root + "/run")  # TensorBoard, in <root>/run/
    result = train_reward_model(train, dev, get_method("bt"), json.loads(cfg),
                                TrainingParams.from_mapping(json.loads(params)), root, progress=False,
                                tracking_spec=spec)
    open(out, "w").write(json.dumps(result))
    """)


def start(tmp_path: Path, train: Path, dev: Path, cfg: dict, root: Path, out: Path) -> subprocess.Popen:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts"), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        str(driver),
        str(train),
        str(dev),
        json.dumps(cfg),
        json.dumps(PARAMS),
        str(root),
        str(out),
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]


def checkpoints(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/step*") if (p / "trainer_state.json").is_file())


@pytest.mark.slow
def test_sigkilled_run_resumes_to_identical_result(tmp_path):
    train, dev = write_trainset(tmp_path / "data", n_train=400, n_dev=48)
    cfg = model_cfg()

    reference_out = tmp_path / "reference.json"
    finish(start(tmp_path, train, dev, cfg, tmp_path / "reference", reference_out))
    reference = json.loads(reference_out.read_text())
    total = reference["total_steps"]

    root, out = tmp_path / "interrupted", tmp_path / "interrupted.json"
    process = start(tmp_path, train, dev, cfg, root, out)
    deadline = time.monotonic() + 120
    while not checkpoints(root) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    saved = checkpoints(root)
    assert saved, "no checkpoint was written before the kill"
    killed_at = int(saved[-1].name.removeprefix("step"))
    assert killed_at < total, "the run finished before it could be killed; make it longer"
    assert not out.exists()
    killed_logged = event_scalars(root / "run" / "tensorboard")["train/loss"]  # flushed at each evaluation
    assert killed_logged and killed_logged[-1][0] >= killed_at

    finish(start(tmp_path, train, dev, cfg, root, out))
    resumed = json.loads(out.read_text())
    assert resumed["resumed_from_step"] == killed_at
    assert json.dumps(resumed["curve"]) == json.dumps(reference["curve"])  # bit-identical dev metrics
    # The tracker continued the killed run: one loss point per step, the dev scalars equal the curve.
    assert_matches_curve(event_scalars(root / "run" / "tensorboard"), resumed)
    assert_matches_curve(event_scalars(tmp_path / "reference" / "run" / "tensorboard"), reference)
    best = select_best(resumed["curve"], "accuracy", True)
    assert best == select_best(reference["curve"], "accuracy", True)
