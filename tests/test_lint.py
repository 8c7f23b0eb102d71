"""The repository passes its linters as `make lint` runs them: snakemake's linter, snakefmt, ruff check and
ruff format (the project's config in pyproject.toml); the pre-commit hooks pin the same versions."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_envs import parse_requirements

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# pre-commit hook repository -> the requirements.txt package it runs
HOOK_PACKAGES = {
    "https://github.com/astral-sh/ruff-pre-commit": "ruff",
    "https://github.com/snakemake/snakefmt": "snakefmt",
}


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_snakemake_lint_is_clean():
    proc = run(str(BIN / "snakemake"), "--lint")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_snakefmt_check_is_clean():
    proc = run(str(BIN / "snakefmt"), "--check", ".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def test_ruff_check_is_clean():
    proc = run(str(BIN / "ruff"), "check", ".")
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]


def test_ruff_format_check_is_clean():
    proc = run(str(BIN / "ruff"), "format", "--check", ".")
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]


def test_pre_commit_hooks_pin_the_requirements_versions():
    pins = parse_requirements((REPO / "requirements.txt").read_text())
    repos = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())["repos"]
    revs = {HOOK_PACKAGES[repo["repo"]]: repo["rev"] for repo in repos}
    assert revs == {package: f"v{pins[package]}" for package in HOOK_PACKAGES.values()}
    hooks = {hook["id"] for repo in repos for hook in repo["hooks"]}
    assert hooks == {"ruff-check", "ruff-format", "snakefmt"}


def test_installed_linters_are_the_pinned_versions():
    pins = parse_requirements((REPO / "requirements.txt").read_text())
    assert run(str(BIN / "ruff"), "--version").stdout.split() == ["ruff", pins["ruff"]]
    assert pins["snakefmt"] in run(str(BIN / "snakefmt"), "--version").stdout
