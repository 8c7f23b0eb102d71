"""profiles/slurm on a real single-node SLURM cluster (tests/slurm/cluster.sh), with fake GPUs.

The CI-size config runs through the cluster profile, changed only where a one-node test cluster truly differs
(`cluster_overrides`). Then:
- every job that is not a localrule went through sbatch, and SLURM's own job records say so;
- the GPU rules asked for a GPU of the profile's model, in the profile's partition;
- the results equal those of a local run of the same config (`ci_run` in conftest.py);
- a rerun after one condition's learning rate changes submits exactly that condition's jobs;
- a training job cancelled mid-run is retried with memory and runtime scaled by `attempt`, resumes from its
  last checkpoint, and ends identical to the uninterrupted run.
Needs root and apt. Elsewhere these tests skip with the reason; under CI=true they fail instead.
"""

import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import CI_CONFIG, copy_workflow
from polars.testing import assert_frame_equal
from snakemake_jobs import (
    OFFLINE_ENV,
    Job,
    deep_merge,
    describe_failure,
    parse_jobs,
    run_snakemake,
    snakemake_command,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SLURM_DIR = REPO / "tests" / "slurm"
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
TEST_PROFILE = "profiles/slurm-testcluster"
GPU_RULES = ("train", "score", "score_dev", "judge", "flag_score")
FAKE_GPUS = 2
RUN_TIMEOUT = 1800
# How snakemake-executor-plugin-slurm reports a submission.
SUBMITTED = re.compile(r"Job (?P<jobid>\d+) has been submitted with SLURM jobid (?P<slurm_id>\S+) ")
# Results compared with the local run: tables and per-pair scores. Figures and logs carry timestamps.
COMPARED_SUFFIXES = (".parquet", ".csv")


def unavailable(reason: str):
    """Skip with `reason`; under CI (CI=true) the SLURM tests are mandatory, so fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"the SLURM tests must run under CI=true, but: {reason}")
    pytest.skip(reason)


def cluster_overrides(profile: dict, cpus: int) -> dict:
    """What differs between the clusters the profile is written for and the one-node test cluster, and
    nothing else: the node has `cpus` CPUs and a few GB of memory, and test jobs take seconds, not hours."""
    overrides: dict = {
        "cores": cpus,  # caps each job's threads and the total CPUs requested at once
        "slurm-init-seconds-before-status-checks": 2,
        "set-resources": {},
    }
    for rule in GPU_RULES:
        resources = profile["set-resources"][rule]
        overrides["set-resources"][rule] = {
            "cpus_per_gpu": min(resources["cpus_per_gpu"], cpus),
            "mem_mb": "4000 * attempt",  # still scaled by attempt, as in the profile
        }
    return overrides


def parse_job_records(scontrol_output: str) -> dict[str, dict[str, str]]:
    """`scontrol show job -o` lines as {job id: {field: value}} (values without spaces, which suffices)."""
    records = {}
    for line in scontrol_output.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" in fields:
            records[fields["JobId"]] = fields
    return records


def slurm_comment(job: Job) -> str:
    """The `--comment` the executor plugin gives a job: rule name, then wildcard values joined by `_`."""
    if not job.wildcards:
        return f"rule_{job.rule}"
    return f"rule_{job.rule}_wildcards_" + "_".join(value for _, value in job.wildcards).replace("/", "_")


def minutes(time_limit: str) -> int:
    """SLURM's TimeLimit ([days-]hours:minutes:seconds) in whole minutes."""
    days, _, clock = time_limit.rpartition("-")
    hours, mins, secs = (int(part) for part in clock.split(":"))
    return (int(days or 0) * 24 + hours) * 60 + mins + math.ceil(secs / 60)


def megabytes(memory: str) -> int:
    """SLURM's memory field (e.g. 4000M, 8G) in MB."""
    number, unit = re.fullmatch(r"(\d+)([MGT]?)", memory).groups()
    return int(number) * {"M": 1, "G": 1024, "T": 1024**2, "": 1}[unit]


def at_attempt(value: int | str, attempt: int) -> int:
    """A profile resource (an int, or a string `N * attempt`) evaluated for one attempt."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"(\d+)\s*\*\s*attempt", value.strip())
    if match is None:
        raise ValueError(f"resource expression {value!r} is not of the form `N * attempt`")
    return int(match[1]) * attempt


def run_records(records: dict[str, dict[str, str]], output: str) -> dict[str, dict[str, str]]:
    """The SLURM records of one snakemake run: the plugin names every job after the run's ID."""
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    assert run_id, "snakemake printed no SLURM run ID"
    return {job_id: record for job_id, record in records.items() if record.get("JobName") == run_id[1]}


def submissions(output: str) -> list[tuple[int, str]]:
    """(snakemake job id, SLURM job id) for every submission a snakemake run printed, in order."""
    return [(int(m["jobid"]), m["slurm_id"]) for m in SUBMITTED.finditer(output)]


# --- unit tests of the helpers, on hand-written inputs ---


def test_deep_merge_replaces_leaves_and_keeps_siblings():
    base = {
        "jobs": 50,
        "set-resources": {"train": {"gpu": 1, "mem_mb": "64000 * attempt"}, "score": {"gpu": 1}},
    }
    merged = deep_merge(base, {"set-resources": {"train": {"mem_mb": "4000 * attempt"}}, "cores": 2})
    assert merged == {
        "jobs": 50,
        "cores": 2,
        "set-resources": {"train": {"gpu": 1, "mem_mb": "4000 * attempt"}, "score": {"gpu": 1}},
    }
    assert base["set-resources"]["train"]["mem_mb"] == "64000 * attempt"


def test_slurm_comment_and_limits_parse_like_slurm_prints_them():
    job = Job(
        "score_dev",
        ("x",),
        wildcards=(("dataset", "multipref"), ("condition", "mean_var-all"), ("seed", "0")),
    )
    assert slurm_comment(job) == "rule_score_dev_wildcards_multipref_mean_var-all_0"
    assert slurm_comment(Job("table2", ("t",))) == "rule_table2"
    assert minutes("1-00:00:00") == 1440 and minutes("02:00:00") == 120 and minutes("00:00:30") == 1
    assert megabytes("4000M") == 4000 and megabytes("8G") == 8192
    assert at_attempt("1440 * attempt", 2) == 2880 and at_attempt(8, 3) == 8
    with pytest.raises(ValueError, match="not of the form"):
        at_attempt("max(1000, input.size_mb)", 1)
    line = "JobId=7 JobName=abc Comment=rule_train_wildcards_a_b_0 Partition=gpu TresPerJob=gres:gpu:a6000:1"
    assert parse_job_records(line)["7"]["TresPerJob"] == "gres:gpu:a6000:1"
    output = (
        "Job 12 has been submitted with SLURM jobid 5 (log: /w/.snakemake/slurm_logs/rule_a/5.log).\n"
        "Job 3 has been submitted with SLURM jobid 6 (log: /w/.snakemake/slurm_logs/rule_b/x/6.log).\n"
    )
    assert submissions(output) == [(12, "5"), (3, "6")]


def test_run_records_keeps_only_the_jobs_named_after_the_run():
    records = {"1": {"JobName": "run-a"}, "2": {"JobName": "run-b"}, "3": {"JobName": "run-a"}}
    assert set(run_records(records, "Building DAG of jobs...\nSLURM run ID: run-a\n")) == {"1", "3"}


# --- the cluster and the runs on it ---


@pytest.fixture(scope="session")
def slurm_profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


@contextlib.contextmanager
def running_cluster(state_dir: Path, gpu_model: str, accounting: bool = False) -> Iterator[dict]:
    """A one-node cluster started by cluster.sh (with slurmdbd if `accounting`) whose fake GPUs carry
    `gpu_model`; stopped by PID on exit. Only one such cluster can run at a time."""
    if os.geteuid() != 0:
        unavailable("starting SLURM daemons needs root")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        unavailable("SLURM is not installed and apt-get is not available to install it")
    accounting_env = {"WITH_ACCOUNTING": "1" if accounting else "0"}
    install = subprocess.run(
        ["bash", str(SLURM_DIR / "install.sh")],
        env={**os.environ, **accounting_env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if install.returncode != 0:
        unavailable(f"tests/slurm/install.sh failed: {install.stderr[-2000:]}")
    env = {**os.environ, **accounting_env, "GPU_TYPE": gpu_model, "GPU_COUNT": str(FAKE_GPUS)}
    start = subprocess.run(
        ["bash", str(SLURM_DIR / "cluster.sh"), "start", str(state_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if start.returncode == 3:
        unavailable(f"another SLURM cluster is configured on this machine: {start.stderr.strip()}")
    if start.returncode != 0:
        logs = "\n".join(p.read_text()[-1500:] for p in state_dir.glob("*.log"))
        pytest.fail(f"cluster.sh start failed:\n{start.stderr}\n{logs}")
    try:
        yield {
            "state_dir": state_dir,
            # The fake GPUs are placeholder devices: GPU jobs may run on CPU here (divpref.common.devices).
            "env": {"SLURM_CONF": str(state_dir / "slurm.conf"), "DIVPREF_ALLOW_NO_VISIBLE_GPU": "1"},
            "gpu_model": gpu_model,
        }
    finally:
        subprocess.run(
            ["bash", str(SLURM_DIR / "cluster.sh"), "stop", str(state_dir)], timeout=120, check=False
        )


# Module scope: this cluster stops when this module's tests end, before test_slurm_accounting.py starts its
# own (one cluster at a time: both use the same ports and /etc/slurm/slurm.conf).
@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory, slurm_profile):
    """A running one-node cluster without accounting, as most clusters the profile meets may be."""
    gpu_model = slurm_profile["set-resources"]["train"]["gpu_model"]
    with running_cluster(tmp_path_factory.mktemp("slurm"), gpu_model) as cluster:
        yield cluster


def job_records(cluster: dict) -> dict[str, dict[str, str]]:
    proc = subprocess.run(
        ["scontrol", "show", "job", "-o"],
        env={**os.environ, **cluster["env"]},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return parse_job_records(proc.stdout)


def write_test_profile(workdir: Path, profile: dict) -> dict:
    """The cluster profile with the test cluster's overrides, as a profile folder inside `workdir`."""
    test_profile = deep_merge(profile, cluster_overrides(profile, os.cpu_count() or 1))
    (workdir / TEST_PROFILE).mkdir(parents=True, exist_ok=True)
    (workdir / TEST_PROFILE / "config.yaml").write_text(yaml.safe_dump(test_profile, sort_keys=False))
    return test_profile


def run_on_cluster(
    workdir: Path, cluster: dict, *targets: str, configfiles: tuple[str, ...] = (CI_CONFIG,)
) -> subprocess.CompletedProcess:
    """`snakemake --profile <test profile>` on the test cluster (under `timeout -k`)."""
    return run_snakemake(
        workdir,
        "--profile",
        TEST_PROFILE,
        "--configfile",
        *configfiles,
        "--",
        *targets,
        timeout=RUN_TIMEOUT,
        env=cluster["env"],
    )


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory, slurm_cluster, slurm_profile):
    """The whole CI-size DAG run through the cluster profile: workdir, output, parsed jobs, SLURM records."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm_run"))
    test_profile = write_test_profile(workdir, slurm_profile)
    started = time.monotonic()
    proc = run_on_cluster(workdir, slurm_cluster)
    wall = time.monotonic() - started
    assert proc.returncode == 0, describe_failure(proc)
    print(f"cluster run of the CI config: {wall:.0f} s")
    return {
        "workdir": workdir,
        "output": proc.stdout,
        "jobs": parse_jobs(proc.stdout),
        "records": run_records(job_records(slurm_cluster), proc.stdout),
        "profile": test_profile,
        "wall_s": wall,
    }


def local_rule_names(workdir: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "rule_inventory.py"), "--configfile", CI_CONFIG],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {rule["name"] for rule in json.loads(proc.stdout) if rule["local"]}


def test_every_job_that_is_not_a_localrule_went_through_sbatch(cluster_run):
    jobs, records = cluster_run["jobs"], cluster_run["records"]
    submitted = dict(submissions(cluster_run["output"]))
    remote = [job for job in jobs if not job.local]
    local = [job for job in jobs if job.local]
    assert remote, "no job was submitted"
    # Snakemake printed a SLURM job id for exactly its remote jobs...
    assert sorted(submitted) == sorted(job.jobid for job in remote)
    # ...SLURM ran each of them to completion, under the comment naming that job's rule and wildcards...
    for job in remote:
        record = records[submitted[job.jobid]]
        assert record["Comment"] == slurm_comment(job), record
        assert record["JobState"] == "COMPLETED", record
    # ...and the jobs that ran locally are exactly those of rules declared local.
    assert {job.rule for job in local} <= local_rule_names(cluster_run["workdir"])
    assert set(records) == set(submitted.values()), "SLURM ran jobs of this run that snakemake did not report"


def test_gpu_rules_asked_for_a_gpu_of_the_profile_model(cluster_run, slurm_cluster):
    profile = cluster_run["profile"]
    submitted = dict(submissions(cluster_run["output"]))
    gpu_jobs = [job for job in cluster_run["jobs"] if job.rule in GPU_RULES]
    assert {job.rule for job in gpu_jobs} >= {"train", "score"}
    for job in cluster_run["jobs"]:
        if job.local:
            continue
        record = cluster_run["records"][submitted[job.jobid]]
        gpu_request = record.get("TresPerJob", "") + record.get("TresPerNode", "")
        if job.rule in GPU_RULES:
            wanted = profile["set-resources"][job.rule]
            assert f"gpu:{slurm_cluster['gpu_model']}:1" in gpu_request, record
            assert record["Partition"] == wanted["slurm_partition"]
            assert minutes(record["TimeLimit"]) == at_attempt(wanted["runtime"], 1)
            assert megabytes(record["MinMemoryNode"]) == at_attempt(wanted["mem_mb"], 1)
            assert int(record["NumCPUs"]) == wanted["cpus_per_gpu"]
        else:
            assert "gpu" not in gpu_request, record
            assert record["Partition"] == profile["default-resources"]["slurm_partition"]


def result_files(workdir: Path) -> list[Path]:
    return sorted(
        path.relative_to(workdir)
        for path in (workdir / "results").rglob("*")
        if path.suffix in COMPARED_SUFFIXES and path.is_file()
    )


def read_table(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema_length=None)


def test_outputs_equal_a_local_run(cluster_run, ci_run):
    cluster_dir = cluster_run["workdir"]
    files = result_files(ci_run)
    assert files, "the local run produced no tables"
    assert result_files(cluster_dir) == files
    for relative in files:
        try:
            assert_frame_equal(
                read_table(cluster_dir / relative), read_table(ci_run / relative), check_exact=True
            )
        except AssertionError as error:
            raise AssertionError(
                f"{relative} differs between the cluster and the local run: {error}"
            ) from None
    for best in (ci_run / "results" / "models").rglob("best.json"):
        assert json.loads((cluster_dir / best.relative_to(ci_run)).read_text()) == json.loads(
            best.read_text()
        )


def condition_with_fewest_runs(config: dict) -> str:
    """The condition trained on the fewest datasets (first in config order): the cheapest one to rerun."""
    all_datasets = list(config["datasets"])
    return min(
        config["conditions"], key=lambda name: len(config["conditions"][name].get("datasets", all_datasets))
    )


def merged_config(workdir: Path) -> dict:
    return deep_merge(
        yaml.safe_load((workdir / "config.yaml").read_text()),
        yaml.safe_load((workdir / CI_CONFIG).read_text()),
    )


def test_rerun_after_one_condition_changes_submits_exactly_its_jobs(cluster_run, slurm_cluster, tmp_path):
    workdir = tmp_path / "rerun"
    shutil.copytree(cluster_run["workdir"], workdir, symlinks=True)
    config = merged_config(workdir)
    condition = condition_with_fewest_runs(config)
    learning_rate = config["training"]["learning_rate"] * 2
    overlay = workdir / "tests" / "config" / "changed_condition.yaml"
    overlay.write_text(
        yaml.safe_dump({"conditions": {condition: {"training": {"learning_rate": learning_rate}}}})
    )
    proc = run_on_cluster(workdir, slurm_cluster, configfiles=(CI_CONFIG, str(overlay.relative_to(workdir))))
    assert proc.returncode == 0, describe_failure(proc)

    jobs = parse_jobs(proc.stdout)
    remote = [job for job in jobs if not job.local]
    # Exactly that condition's training runs were retrained, and only its per-run jobs went to SLURM.
    datasets = config["conditions"][condition].get("datasets", list(config["datasets"]))
    trained = sorted((job.wildcard("dataset"), job.wildcard("seed")) for job in jobs if job.rule == "train")
    assert trained == sorted((d, str(s)) for d in datasets for s in config["training"]["seeds"])
    assert remote and all(job.wildcard("condition") == condition for job in remote), remote
    new_records = run_records(job_records(slurm_cluster), proc.stdout)
    assert sorted(record["Comment"] for record in new_records.values()) == sorted(map(slurm_comment, remote))
    assert all(record["JobState"] == "COMPLETED" for record in new_records.values())
    assert not any(
        job.rule in {"generate_sample", "normalize", "classify", "split", "trainset", "build_backbone"}
        for job in jobs
    )


def wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen, timeout: float) -> Path:
    """The first complete checkpoint (`step*/`, not a temporary) that appears under `run_dir`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = sorted(run_dir.glob("*/step*"))
        if steps:
            return steps[0]
        if proc.poll() is not None:
            pytest.fail(f"snakemake ended before the first checkpoint:\n{proc.stdout.read()[-4000:]}")
        time.sleep(0.1)
    pytest.fail(f"no checkpoint under {run_dir} after {timeout} s")


def running_job_id(cluster: dict, comment: str) -> str:
    proc = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"],
        env={**os.environ, **cluster["env"]},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    ids = [line.split()[0] for line in proc.stdout.splitlines() if line.split()[1:] == [comment]]
    assert len(ids) == 1, f"running jobs with comment {comment}: {proc.stdout}"
    return ids[0]


def test_cancelled_training_job_is_retried_with_more_resources_and_resumes_identically(
    cluster_run, slurm_cluster, tmp_path
):
    workdir = tmp_path / "cancel"
    shutil.copytree(cluster_run["workdir"], workdir, symlinks=True)
    train_job = next(job for job in cluster_run["jobs"] if job.rule == "train")
    dataset, condition, seed = (train_job.wildcard(name) for name in ("dataset", "condition", "seed"))
    train_log = Path(train_job.outputs[0])
    run_dir = workdir / "checkpoints" / dataset / condition / f"seed{seed}"
    # Start this training run from scratch: no output, no checkpoints.
    shutil.rmtree(run_dir)
    (workdir / train_log).unlink()

    command = [
        "timeout",
        "-k",
        "10",
        str(RUN_TIMEOUT),
        *snakemake_command(),
        "--profile",
        TEST_PROFILE,
        "--configfile",
        CI_CONFIG,
        "--",
        str(train_log),
    ]
    proc = subprocess.Popen(
        command,
        cwd=workdir,
        env={**os.environ, **OFFLINE_ENV, **slurm_cluster["env"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first_checkpoint = wait_for_checkpoint(run_dir, proc, timeout=RUN_TIMEOUT)
        slurm_id = running_job_id(slurm_cluster, slurm_comment(train_job))
        subprocess.run(
            ["scancel", slurm_id], env={**os.environ, **slurm_cluster["env"]}, check=True, timeout=30
        )
        output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-6000:]

    # SLURM saw the cancelled attempt and a second one asking for twice the memory and time.
    attempts = [slurm for _, slurm in submissions(output)]
    assert attempts[0] == slurm_id and len(attempts) == 2, output[-4000:]
    records = run_records(job_records(slurm_cluster), output)
    assert set(records) == set(attempts)
    first, second = records[attempts[0]], records[attempts[1]]
    assert (first["JobState"], second["JobState"]) == ("CANCELLED", "COMPLETED")
    assert megabytes(second["MinMemoryNode"]) == 2 * megabytes(first["MinMemoryNode"])
    assert minutes(second["TimeLimit"]) == 2 * minutes(first["TimeLimit"])

    # The retry resumed from a checkpoint of the cancelled attempt and ended where the uninterrupted run did.
    resumed = json.loads((workdir / train_log).read_text())
    uninterrupted = json.loads((cluster_run["workdir"] / train_log).read_text())
    assert resumed["resumed_from_step"] >= int(first_checkpoint.name.removeprefix("step"))
    assert resumed["curve"] == uninterrupted["curve"]
    # The killed attempt left no partial output behind (outputs and checkpoints are written atomically).
    leftovers = [
        path for folder in ("results", "checkpoints") for path in (workdir / folder).rglob(".*.tmp-*")
    ]
    assert not leftovers, leftovers
    final = max(run_dir.glob("*/step*"))
    reference = cluster_run["workdir"] / final.relative_to(workdir)
    for weights in sorted(final.rglob("*.safetensors")):
        assert weights.read_bytes() == (reference / weights.relative_to(final)).read_bytes(), weights
