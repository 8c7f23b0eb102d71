"""Shared fixtures. `ci_run` runs the whole DAG once per test session on the CI-size config."""

import shutil
import subprocess
from pathlib import Path

import pytest
import snakemake_jobs

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = [
    "Snakefile",
    "rules",
    "scripts",
    "schemas",
    "envs",
    "report",
    "profiles",
    "demo",
    "config.yaml",
]
CI_CONFIG = "tests/config/ci.yaml"


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results) into `dest`, so a test can run or mutate it in isolation."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    (dest / "tests" / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / CI_CONFIG, dest / CI_CONFIG)
    return dest


def run_snakemake(
    workdir: Path, *args: str, timeout: int = 1800, check: bool = True
) -> subprocess.CompletedProcess:
    """Run snakemake on the CI config in `workdir` (offline, under `timeout -k`); fail the test on error."""
    proc = snakemake_jobs.run_snakemake(workdir, "--configfile", CI_CONFIG, *args, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-12000:]}")
    return proc


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory) -> Path:
    """A workdir holding a completed local run of the whole DAG on the CI-size config (shared, read-only)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("ci_run"))
    run_snakemake(workdir, "--cores", "2")
    return workdir
