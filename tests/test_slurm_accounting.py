"""profiles/slurm on a one-node SLURM cluster with slurmdbd (accounting, on MariaDB), polled by sacct.

test_slurm.py proves the profile on a cluster without slurmdbd (status polled with squeue). Here the same
profile, with the same one-node overrides, runs one non-local job of the CI config (building the tiny
backbone) with `--slurm-status-command sacct`: the job goes through sbatch, slurmdbd records it COMPLETED,
and snakemake sees that and exits 0 instead of waiting forever.
The two tests' clusters never overlap: test_slurm.py's cluster is module-scoped and stops at the end of
that module; this module starts its own. Needs root and apt, like test_slurm.py; skips elsewhere, fails
under CI=true.
"""

import os
import subprocess
import time

import pytest
import yaml
from conftest import CI_CONFIG, copy_workflow
from slurm_cluster import (
    PROFILE,
    SITE_FILE,
    TEST_PROFILE,
    run_records,
    running_cluster,
    submissions,
    write_test_profile,
)
from snakemake_jobs import describe_failure, parse_jobs, run_snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TARGET = "resources/backbones/tiny-llama"
RUN_TIMEOUT = 300


def sacct_records(cluster: dict) -> dict[str, dict[str, str]]:
    """Every job slurmdbd recorded (allocations, not steps) as {job id: {"JobName": ..., "State": ...}}."""
    proc = subprocess.run(
        ["sacct", "-a", "-X", "-n", "-P", "-S", "2000-01-01", "-o", "JobID,JobName,State"],
        env={**os.environ, **cluster["env"]},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, f"sacct failed: {proc.stderr}"
    rows = (line.split("|") for line in proc.stdout.splitlines() if line)
    return {job_id: {"JobName": name, "State": state} for job_id, name, state in rows}


@pytest.fixture(scope="module")
def accounting_cluster(tmp_path_factory):
    profile = yaml.safe_load(PROFILE.read_text())
    with running_cluster(tmp_path_factory.mktemp("slurm_accounting"), accounting=True) as cluster:
        cluster["profile"] = profile
        yield cluster


def test_a_job_polled_with_sacct_completes_on_a_cluster_with_slurmdbd(accounting_cluster, tmp_path):
    workdir = copy_workflow(tmp_path / "workflow")
    write_test_profile(workdir, accounting_cluster["profile"])
    started = time.monotonic()
    proc = run_snakemake(
        workdir,
        "--profile",
        TEST_PROFILE,
        "--configfile",
        CI_CONFIG,
        SITE_FILE,
        "--slurm-status-command",
        "sacct",
        "--",
        TARGET,
        timeout=RUN_TIMEOUT,
        env=accounting_cluster["env"],
    )
    print(f"sacct-polled cluster run of {TARGET}: {time.monotonic() - started:.0f} s")
    # Exit 0 within the timeout: snakemake saw the job finish through sacct (124/137 would mean it hung).
    assert proc.returncode == 0, describe_failure(proc)
    assert any((workdir / TARGET).iterdir()), f"{TARGET} is empty"

    jobs = parse_jobs(proc.stdout)
    submitted = submissions(proc.stdout)
    # The one job was not local: it went through sbatch...
    assert [job.rule for job in jobs] == ["build_backbone"]
    assert [jobid for jobid, _ in submitted] == [job.jobid for job in jobs]
    # ...and slurmdbd recorded exactly that job, under this run's name, as completed.
    records = run_records(sacct_records(accounting_cluster), proc.stdout)
    assert sorted(records) == sorted(slurm_id for _, slurm_id in submitted), records
    assert all(record["State"] == "COMPLETED" for record in records.values()), records
