"""Data-parallel and micro-batched training give the run of whole batches on one process; 2 processes resume.

Every run here is a REAL training run of the tiny backbone; data-parallel runs really start two gloo processes
through torchrun (divpref.training.job), in a subprocess so that the test process is not torchrun's agent.
"""

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

from divpref.models.methods import get_method
from divpref.training.job import TrainJob
from divpref.training.loop import train_reward_model
from divpref.training.params import TrainingParams

REPO = Path(__file__).resolve().parents[1]
# 97 rows: 6 batches of 16, then a last batch of ONE row, whose second data-parallel share is empty.
N_TRAIN, N_DEV = 97, 40
TRAINING = {
    "seed": 3,
    "learning_rate": 2e-3,
    "batch_size": 16,
    "max_epochs": 2,
    "eval_every_epochs": 0.3,
    "max_length": 48,
}
CURVE_METRICS = ("loss", "accuracy", "mean_margin", "train_loss")

DRIVER = textwrap.dedent("""
    import json, sys
    from divpref.training.job import TrainJob, run_job
    run_job(TrainJob(**json.loads(open(sys.argv[1]).read())))
    """)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_trainset(tmp_path_factory.mktemp("dp-data"), n_train=N_TRAIN, n_dev=N_DEV)


def job_spec(folder: Path, data, **training) -> TrainJob:
    train, dev = data
    return TrainJob(
        train=str(train),
        dev=str(dev),
        method="bt",
        model=model_cfg(),
        training={**TRAINING, **training},
        checkpoint_root=str(folder / "checkpoints"),
        train_log=str(folder / "train_log.json"),
        log_file=str(folder / "train.log"),
        threads=int(training.get("data_parallel", 1)),
    )


def start(job: TrainJob) -> subprocess.Popen:
    folder = Path(job.train_log).parent
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps(job.__dict__))
    (folder / "driver.py").write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(folder / "driver.py"), str(folder / "job.json")]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run(job: TrainJob) -> dict:
    process = start(job)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-4000:]
    return json.loads(Path(job.train_log).read_text())


def single_process_log(folder: Path, data, **training) -> dict:
    train, dev = data
    params = TrainingParams.from_mapping({**TRAINING, **training})
    return train_reward_model(train, dev, get_method("bt"), model_cfg(), params, folder, progress=False)


def assert_same_curve(got: dict, want: dict) -> None:
    assert [e["step"] for e in got["curve"]] == [e["step"] for e in want["curve"]]
    for mine, theirs in zip(got["curve"], want["curve"], strict=True):
        for metric in CURVE_METRICS:
            assert mine[metric] == pytest.approx(theirs[metric], rel=1e-4, abs=1e-6), (mine["step"], metric)


@pytest.fixture(scope="module")
def whole_batches(tmp_path_factory, data):
    return single_process_log(tmp_path_factory.mktemp("whole"), data)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, data):
    return run(job_spec(tmp_path_factory.mktemp("dp2"), data, data_parallel=2))


@pytest.mark.slow
def test_micro_batches_of_4_give_the_curve_of_whole_batches_of_16(tmp_path, data, whole_batches):
    micro = single_process_log(tmp_path, data, micro_batch_size=4)
    assert micro["total_steps"] == whole_batches["total_steps"] == 14  # 7 steps per epoch, the last of 1 row
    assert_same_curve(micro, whole_batches)


@pytest.mark.slow
def test_two_data_parallel_processes_give_the_curve_of_one(two_processes, whole_batches):
    assert two_processes["data_parallel"] == 2
    assert_same_curve(two_processes, whole_batches)


@pytest.mark.slow
def test_only_rank_0_writes_and_the_log_names_both_processes(two_processes):
    run_dir = Path(two_processes["checkpoint_dir"])
    checkpoint = run_dir / two_processes["curve"][-1]["checkpoint"]
    assert (checkpoint / "rng_state.pt").is_file() and (checkpoint / "rng_state_rank1.pt").is_file()
    log = (run_dir.parents[1] / "train.log").read_text()
    assert "process 1 of 2" in log and "process 2 of 2" not in log  # rank 1 logs nothing below WARNING


@pytest.mark.slow
def test_two_process_run_killed_by_sigkill_resumes_to_the_same_result(tmp_path, data, two_processes):
    job = job_spec(tmp_path, data, data_parallel=2)
    process = start(job)
    root = Path(job.checkpoint_root)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if any((step / "trainer_state.json").is_file() for step in root.glob("*/step*")):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # torchrun's agent; its workers die with it (PR_SET_PDEATHSIG)
    process.wait()
    saved = sorted(p for p in root.glob("*/step*") if (p / "trainer_state.json").is_file())
    assert process.returncode == -signal.SIGKILL and saved
    killed_at = int(saved[-1].name.removeprefix("step"))
    assert killed_at < two_processes["total_steps"] and not Path(job.train_log).exists()
    time.sleep(1)
    assert not workers_alive(job.train_log), "a worker outlived its killed launcher"

    resumed = run(job)
    assert resumed["resumed_from_step"] >= killed_at
    assert json.dumps(resumed["curve"]) == json.dumps(two_processes["curve"])  # bit-identical, 2 processes


def workers_alive(train_log: str) -> list[str]:
    """Command lines of live processes training towards ``train_log`` (the workers name its spec file)."""
    spec = str(Path(train_log).with_name(".train_job.json"))
    alive = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if spec in command:
            alive.append(command)
    return alive
