"""Shared fixtures, each computed once per test session.

- `ci_run`: one completed local run of the whole DAG on the CI-size config, read-only. Every test that reads
  DAG outputs (tables, plots, flags, scores, logs) reads them here; a test that changes files or runs
  snakemake again works on `copy_of_ci_run` (a private copy, modification times kept), never on `ci_run`.
- `rule_inventory`: every rule of the workflow on the CI config (tests/rule_inventory.py), read-only.
"""

import json
import shutil
import subprocess
import sys
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


def copy_of_ci_run(ci_run: Path, dest: Path) -> Path:
    """A private copy of the completed CI run at `dest` (modification times and symlinks kept), for a test
    that changes files or runs snakemake in it. Snakemake's locks are left out: they belong to processes
    in `ci_run`'s directory, never to the copy."""
    shutil.copytree(ci_run, dest, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    return dest


@pytest.fixture(scope="session")
def rule_inventory() -> list[dict]:
    """Every rule of the workflow on the CI config: name, conda env and script (absolute paths), local."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "rule_inventory.py"), "--configfile", CI_CONFIG],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


@pytest.fixture
def ci_run_copy(ci_run: Path, tmp_path: Path) -> Path:
    """A private, writable copy of `ci_run` for one test (see `copy_of_ci_run`)."""
    return copy_of_ci_run(ci_run, tmp_path / "run")


# Fixtures that run the whole DAG (once per session): a test that uses one runs snakemake, so it is `slow`
# (pyproject's markers) whether or not its module says so, and `make test-fast` leaves it out.
DAG_RUN_FIXTURES = {"ci_run", "ci_run_copy"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if DAG_RUN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
