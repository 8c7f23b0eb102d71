"""Shared fixtures. `ci_run` runs the whole DAG once per test session on the CI-size config."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "rules", "scripts", "schemas", "envs", "report", "profiles", "demo", "config.yaml"]
CI_CONFIG = "tests/config/ci.yaml"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def snakemake_bin() -> str:
    return str(Path(sys.executable).with_name("snakemake"))


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


def run_snakemake(workdir: Path, *args: str, timeout: int = 1800, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake in `workdir` under `timeout -k`, offline; on failure show the tail of its output."""
    cmd = ["timeout", "-k", "10", str(timeout), snakemake_bin(), "--configfile", CI_CONFIG, *args]
    proc = subprocess.run(
        cmd, cwd=workdir, env={**os.environ, **OFFLINE_ENV}, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-6000:]}"
            f"\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory) -> Path:
    """A workdir holding a completed local run of the whole DAG on the CI-size config (shared, read-only)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("ci_run"))
    run_snakemake(workdir, "--cores", "2")
    return workdir
