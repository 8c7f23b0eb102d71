"""The workflow passes snakemake's linter and snakefmt's formatting check (as `make lint` runs them)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_snakemake_lint_is_clean():
    proc = run(str(BIN / "snakemake"), "--lint")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_snakefmt_check_is_clean():
    proc = run(str(BIN / "snakefmt"), "--check", ".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
