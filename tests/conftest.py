"""Shared fixtures, each computed once per test session.

- `ci_run`: one completed local run of the whole DAG on the CI-size config, read-only. Every test that reads
  DAG outputs (tables, plots, flags, scores, logs) reads them here; a test that changes files or runs
  snakemake again works on `copy_of_ci_run` (a private copy, modification times kept), never on `ci_run`.
- `rule_inventory`: every rule of the workflow on the CI config (tests/rule_inventory.py), read-only.
- `DerivedRun`: a snakemake run in a copy of the completed CI run (another config on top of it), started in
  the background as soon as the CI run is complete; the modules that read one run last, so that the other
  tests, the SLURM ones waiting on the cluster's status polls above all, run meanwhile.
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


CI_RUN_TIMEOUT = 1800


class BackgroundCiRun:
    """The CI-size DAG run behind `ci_run`: started once, in the background, as soon as collection shows
    that a selected test reads it, so that the tests that do not read it run while its jobs do (the DAG's
    `--cores 2` leave a 2-core machine partly idle between and during its jobs)."""

    def __init__(self) -> None:
        self.workdir: Path | None = None
        self.log: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.failure: str | None = None

    def start(self, tmp_path_factory) -> None:
        if self.proc is not None:
            return
        self.workdir = copy_workflow(tmp_path_factory.mktemp("ci_run"))
        # Beside the workdir, not in it: the run's folder holds exactly what snakemake wrote.
        self.log = tmp_path_factory.mktemp("ci_run_log") / "snakemake.log"
        self.proc = snakemake_jobs.start_snakemake(
            self.workdir, "--configfile", CI_CONFIG, "--cores", "2", log=self.log, timeout=CI_RUN_TIMEOUT
        )

    def finish(self) -> int | None:
        """Wait for a started run to end; its exit status (None: never started)."""
        return None if self.proc is None else self.proc.wait()

    def wait(self, tmp_path_factory) -> Path:
        """The completed run's workdir; fails (every caller, not only the first) if the run failed."""
        self.start(tmp_path_factory)
        returncode = self.finish()
        if returncode != 0 and self.failure is None:
            self.failure = (
                f"snakemake --cores 2 (the CI run) exited {returncode}\n{self.log.read_text()[-12000:]}"
            )
        if self.failure is not None:
            pytest.fail(self.failure)
        return self.workdir

    def stop(self) -> None:
        """End a run the session no longer waits for (an interrupted or `-x` session)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # `timeout` passes SIGTERM to snakemake, which cancels its jobs
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


CI_RUN = BackgroundCiRun()


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory) -> Path:
    """A workdir holding a completed local run of the whole DAG on the CI-size config (shared, read-only)."""
    return CI_RUN.wait(tmp_path_factory)


@pytest.fixture(scope="session")
def ci_run_output(ci_run) -> str:
    """What the `ci_run` snakemake run printed (its jobs, with rules, wildcards and outputs)."""
    return CI_RUN.log.read_text()


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


class DerivedRun:
    """A snakemake run in a private copy of the completed CI run, with `args` (e.g. another config file on
    top), after `prepare(workdir)` added what it needs. Started in the background once the CI run is complete
    (`pytest_runtest_setup`), if a selected test uses `fixture`; `wait` gives the workdir and what snakemake
    printed, and fails every caller if the run failed."""

    def __init__(self, fixture: str, prepare, *args: str, timeout: int = 1500) -> None:
        self.fixture, self.prepare, self.args, self.timeout = fixture, prepare, args, timeout
        self.workdir: Path | None = None
        self.log: Path | None = None
        self.proc: subprocess.Popen | None = None
        DERIVED_RUNS[fixture] = self

    def start(self, tmp_path_factory) -> None:
        if self.proc is not None or CI_RUN.finish() != 0:
            return  # a failed CI run fails the tests that read this run (`wait`)
        self.workdir = copy_of_ci_run(CI_RUN.workdir, tmp_path_factory.mktemp(self.fixture) / "run")
        self.prepare(self.workdir)
        self.log = tmp_path_factory.mktemp(f"{self.fixture}_log") / "snakemake.log"
        self.proc = snakemake_jobs.start_snakemake(
            self.workdir, "--configfile", CI_CONFIG, *self.args, log=self.log, timeout=self.timeout
        )

    def wait(self, tmp_path_factory) -> tuple[Path, str]:
        CI_RUN.wait(tmp_path_factory)
        self.start(tmp_path_factory)
        returncode = self.proc.wait()
        output = self.log.read_text()
        if returncode != 0:
            pytest.fail(f"snakemake {' '.join(self.args)} exited {returncode}\n{output[-12000:]}")
        return self.workdir, output

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


DERIVED_RUNS: dict[str, DerivedRun] = {}


# Fixtures that run the whole DAG (once per session): a test that uses one runs snakemake, so it is `slow`
# (pyproject's markers) whether or not its module says so, and `make test-fast` leaves it out.
DAG_RUN_FIXTURES = {"ci_run", "ci_run_copy"}


def reads_ci_run(item) -> bool:
    return bool(DAG_RUN_FIXTURES & set(getattr(item, "fixturenames", ())))


def derived_runs_of(item) -> set[str]:
    return set(DERIVED_RUNS) & set(getattr(item, "fixturenames", ()))


def module_of(item) -> str:
    return item.nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if reads_ci_run(item):
            item.add_marker(pytest.mark.slow)


LATE_MODULES: set[str] = set()
LAST_MODULES: set[str] = set()
NEEDED_DERIVED_RUNS: set[str] = set()


def pytest_collection_finish(session):
    """Order the selected tests, and start the CI run in the background if one of them reads it."""
    LATE_MODULES.clear()
    LAST_MODULES.clear()
    NEEDED_DERIVED_RUNS.clear()
    for item in session.items:
        NEEDED_DERIVED_RUNS.update(derived_runs_of(item))
        if derived_runs_of(item):
            LAST_MODULES.add(module_of(item))
        if reads_ci_run(item):
            LATE_MODULES.add(module_of(item))
    # Modules with no test that reads the run first, then those that read it, then those that read a derived
    # run: each module stays whole and in order (a stable sort), so module fixtures are set up once.
    session.items.sort(key=lambda item: (module_of(item) in LATE_MODULES, module_of(item) in LAST_MODULES))
    if LATE_MODULES and not session.config.option.collectonly:
        CI_RUN.start(session.config._tmp_path_factory)


def pytest_runtest_setup(item):
    """A module that reads the CI run starts after the run is complete, so that no other DAG run of that
    module (its own snakemake runs, a cluster run) competes with the CI run for the 2 cores; then the derived
    runs that selected tests read start in the background."""
    if module_of(item) in LATE_MODULES:
        CI_RUN.finish()  # a failed run fails the tests that read it (`ci_run`), not the others
        for fixture in sorted(NEEDED_DERIVED_RUNS):
            DERIVED_RUNS[fixture].start(item.config._tmp_path_factory)


def pytest_sessionfinish(session):
    for run in DERIVED_RUNS.values():
        run.stop()
    CI_RUN.stop()
