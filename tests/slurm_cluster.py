"""Helpers of the SLURM tests (test_slurm.py, test_slurm_accounting.py): the one-node cluster of
tests/slurm/cluster.sh, the test profile and site file, and parsers of what SLURM and the executor plugin
print."""

import contextlib
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import CI_CONFIG
from snakemake_jobs import (
    Job,
    deep_merge,
    run_snakemake,
)

REPO = Path(__file__).resolve().parents[1]
SLURM_DIR = REPO / "tests" / "slurm"
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
TEST_PROFILE = "profiles/slurm-testcluster"
GPU_RULES = ("gpu_check", "train", "score", "score_dev", "judge", "flag_score")
FAKE_GPUS = 2
# Every partition's MaxTime on the test cluster (2 days, a common GPU partition limit).
MAX_TIME = "2-00:00:00"
# The site settings of the test cluster, as a user writes them in site.yaml (config `cluster:`); no account:
# without slurmdbd there are none.
TEST_SITE = {
    "cpu_partition": "cpu",
    "gpu_partition": "gpu",
    "gpu_model": "a6000",
    "max_runtime_minutes": 2880,
    "gpu_request": "gpus",
}
SITE_FILE = "site.yaml"
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


def cluster_overrides(cpus: int) -> dict:
    """What differs between the clusters the profile is written for and the one-node test cluster, and
    nothing else: the node has `cpus` CPUs and a few GB of memory, and test jobs take seconds, not hours."""
    overrides: dict = {
        "cores": cpus,  # caps each job's threads and the total CPUs requested at once
        "slurm-init-seconds-before-status-checks": 2,
        "set-resources": {},
    }
    for rule in GPU_RULES:
        overrides["set-resources"][rule] = {
            # One CPU per fake GPU, so that both fake GPUs take a job at once. A job's threads do not follow
            # it: the jobstep runs each job with `--cores all`, as a local run with the node's cores.
            "cpus_per_gpu": 1,
            "mem_mb": "4000 * attempt",  # still scaled by attempt, as the scoring rules' own memory
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


@contextlib.contextmanager
def running_cluster(
    state_dir: Path, gpu_model: str = TEST_SITE["gpu_model"], accounting: bool = False
) -> Iterator[dict]:
    """A one-node cluster started by cluster.sh (with slurmdbd if `accounting`) whose fake GPUs carry
    `gpu_model` and whose partitions allow MAX_TIME; stopped by PID on exit. Only one such cluster can run at
    a time."""
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
    env = {
        **os.environ,
        **accounting_env,
        "GPU_TYPE": gpu_model,
        "GPU_COUNT": str(FAKE_GPUS),
        "MAX_TIME": MAX_TIME,
    }
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
    """The cluster profile with the test cluster's overrides, as a profile folder inside `workdir`, and the
    test cluster's site file (TEST_SITE) as `workdir`/site.yaml."""
    test_profile = deep_merge(profile, cluster_overrides(os.cpu_count() or 1))
    (workdir / TEST_PROFILE).mkdir(parents=True, exist_ok=True)
    (workdir / TEST_PROFILE / "config.yaml").write_text(yaml.safe_dump(test_profile, sort_keys=False))
    write_site(workdir)
    return test_profile


def write_site(workdir: Path, name: str = SITE_FILE, **changes) -> str:
    """TEST_SITE with `changes` as the site file `workdir`/`name`; its path relative to `workdir`."""
    (workdir / name).write_text(yaml.safe_dump({"cluster": {**TEST_SITE, **changes}}))
    return name


def run_on_cluster(
    workdir: Path,
    cluster: dict,
    *targets: str,
    configfiles: tuple[str, ...] = (CI_CONFIG,),
    site: str = SITE_FILE,
    forcerun: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """`snakemake [--forcerun <forcerun>] --profile <test profile> --configfile <configfiles> <site>` on the
    test cluster (under `timeout -k`)."""
    return run_snakemake(
        workdir,
        *(("--forcerun", *forcerun) if forcerun else ()),
        "--profile",
        TEST_PROFILE,
        "--configfile",
        *configfiles,
        site,
        "--",
        *targets,
        timeout=RUN_TIMEOUT,
        env=cluster["env"],
    )
