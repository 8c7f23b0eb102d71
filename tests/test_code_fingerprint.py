"""Library fingerprints (divpref.common.code_fingerprint): comments and docstrings do not count, code does.

tests/test_reruns.py checks the same with snakemake on a completed run; these are the fast unit checks.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from divpref.common.code_fingerprint import code_hash, library_fingerprint, used_modules

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
RULE_SCRIPTS = sorted(SCRIPTS.glob("*.py"))

SOURCE = '''"""A module."""

import math

RATE = 0.5
"""An attribute docstring."""


class Model:
    """A class."""

    def loss(self, x):
        """A method."""
        return math.log(x) * RATE  # a comment
'''


def test_comments_docstrings_and_blank_lines_do_not_change_the_hash():
    edited = (
        SOURCE.replace('"""A module."""', '"""A module, documented differently.\n\nAt length.\n"""')
        .replace('"""A method."""', "# no docstring now")
        .replace('"""An attribute docstring."""\n', "")
        .replace("# a comment", "# another comment")
        .replace("\n\nclass", "\n\n\n# a new comment line\nclass")
    )
    assert code_hash(edited) == code_hash(SOURCE)


@pytest.mark.parametrize(
    "edit",
    [("* RATE", "* RATE * 2"), ("RATE = 0.5", "RATE = 0.25"), ("math.log", "math.log1p"), ("loss", "cost")],
)
def test_a_code_change_changes_the_hash(edit):
    assert code_hash(SOURCE.replace(*edit)) != code_hash(SOURCE)


def test_a_function_left_with_only_a_docstring_still_hashes():
    assert code_hash('def f():\n    """Doc."""\n') == code_hash("def f():\n    pass\n")


def copy_library(tmp_path: Path) -> Path:
    scripts = tmp_path / "scripts"
    shutil.copytree(SCRIPTS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    return scripts


def fingerprints(scripts: Path) -> dict[str, str]:
    package = scripts / "divpref"
    return {script.stem: library_fingerprint(package, script) for script in sorted(scripts.glob("*.py"))}


def test_the_fingerprints_of_every_rule_script_ignore_a_comment_in_the_logging_helper(tmp_path):
    scripts = copy_library(tmp_path)
    before = fingerprints(scripts)
    job_log = scripts / "divpref" / "common" / "job_log.py"
    assert all("common/job_log" in used_modules(scripts / "divpref", path) for path in scripts.glob("*.py"))
    job_log.write_text(job_log.read_text().replace('"""Route', '# a comment\n"""Route').replace("\n", "\n\n"))
    assert fingerprints(scripts) == before


def test_a_code_change_changes_exactly_the_fingerprints_of_the_scripts_that_use_the_module(tmp_path):
    scripts = copy_library(tmp_path)
    package = scripts / "divpref"
    before = fingerprints(scripts)
    losses = package / "models" / "losses.py"
    losses.write_text(losses.read_text() + "\nUNUSED = 1\n")
    after = fingerprints(scripts)
    changed = {name for name in before if before[name] != after[name]}
    users = {path.stem for path in scripts.glob("*.py") if "models/losses" in used_modules(package, path)}
    assert changed == users
    assert {"train", "score"} <= changed  # through training.job -> loop -> models.methods -> losses
    assert not changed & {"normalize", "classify", "split", "generate_sample", "download"}


def test_a_module_named_only_in_a_docstring_is_not_a_dependency(tmp_path):
    scripts = copy_library(tmp_path)
    package = scripts / "divpref"
    script = scripts / "classify.py"
    before = used_modules(package, script)
    assert "models/losses" not in before
    script.write_text(
        script.read_text().replace('"""Rule classify:', '"""See divpref.models.losses. Rule classify:')
    )
    assert used_modules(package, script) == before


def test_the_default_profile_reruns_on_params_and_code_changes():
    triggers = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())["rerun-triggers"]
    assert {"params", "code"} <= set(triggers)


FINGERPRINT_ALL = """
import json, sys
from pathlib import Path
from divpref.common import code_fingerprint
code_fingerprint.use_disk_cache(Path(sys.argv[1]))
scripts = Path(sys.argv[2])
found = {s.stem: code_fingerprint.library_fingerprint(scripts / "divpref", s) for s in scripts.glob("*.py")}
print(json.dumps(found))
"""


def test_the_disk_cache_gives_the_same_fingerprints_and_follows_edits(tmp_path):
    scripts = copy_library(tmp_path)
    cache = tmp_path / "state" / "facts.json"

    def run() -> dict[str, str]:
        command = [sys.executable, "-c", FINGERPRINT_ALL, str(cache), str(scripts)]
        done = subprocess.run(
            command, capture_output=True, text=True, check=True, env={"PYTHONPATH": str(scripts)}
        )
        return json.loads(done.stdout)

    uncached = fingerprints(scripts)
    assert run() == uncached  # the first run parses every file and writes the cache
    entries = json.loads(cache.read_text())
    written = cache.stat().st_mtime_ns
    assert run() == uncached  # every file from the cache: nothing new, nothing written
    assert cache.stat().st_mtime_ns == written
    losses = scripts / "divpref" / "models" / "losses.py"
    losses.write_text(losses.read_text() + "\nUNUSED = 1\n")
    edited = fingerprints(scripts)
    assert edited != uncached
    assert run() == edited  # the edited file's new bytes are parsed afresh
    after_edit = json.loads(cache.read_text())
    assert len(after_edit) == len(entries) and len(after_edit.keys() - entries.keys()) == 1  # old entry gone
    cache.write_text("{not json")
    assert run() == edited  # a corrupt cache only costs the parsing
    assert json.loads(cache.read_text()) == after_edit
