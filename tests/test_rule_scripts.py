"""Every rule script (scripts/*.py) follows one pattern: log first, then the heavy imports, then one main.

    '''Rule <name>: ...'''
    import os                                     # optional: standard-library imports only
    from divpref.common.job_log import log_to_file
    log_to_file(snakemake.log[0])                 # stdout, stderr and logging go to the job's log
    ...                                           # the other imports (torch, polars, divpref.<stage>)
    def main(smk) -> None: ...
    main(snakemake)

So a failing import (CUDA, bitsandbytes, a broken module) is written to the job's log, not lost.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RULE_SCRIPTS = sorted((REPO / "scripts").glob("*.py"))
LOG_SETUP = "log_to_file(snakemake.log[0])"
LOG_IMPORT = "from divpref.common.job_log import log_to_file"
# Imports that may precede the log set-up: the standard library, which cannot fail to import.
STDLIB = sys.stdlib_module_names


def top_level_names(node: ast.stmt) -> list[str]:
    """The top-level package names an import statement imports."""
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    return [(node.module or "").split(".")[0]]


def pattern_violations(source: str) -> list[str]:
    """What keeps `source` from following the rule-script pattern (empty: it follows it)."""
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    problems = []
    setup = next((i for i, node in enumerate(body) if ast.unparse(node) == LOG_SETUP), None)
    if setup is None:
        return [f"no top-level `{LOG_SETUP}`"]
    for node in body[:setup]:
        if ast.unparse(node) == LOG_IMPORT:
            continue
        if not isinstance(node, ast.Import | ast.ImportFrom):
            problems.append(f"line {node.lineno}: `{ast.unparse(node)}` runs before logging starts")
        elif any(name not in STDLIB for name in top_level_names(node)):
            problems.append(f"line {node.lineno}: `{ast.unparse(node)}` imported before logging starts")
    mains = [node for node in body if isinstance(node, ast.FunctionDef) and node.name == "main"]
    if len(mains) != 1 or [arg.arg for arg in mains[0].args.args] != ["smk"]:
        problems.append("not exactly one `def main(smk)`")
    calls = [node for node in body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
    main_calls = [node for node in calls if ast.unparse(node) == "main(snakemake)"]
    if len(main_calls) != 1 or body[-1] is not main_calls[0]:
        problems.append("the last statement is not the one `main(snakemake)` call")
    others = [node for node in calls if not is_allowed_call(node)]
    if others:
        problems.append("top-level calls besides the log set-up and main: the work belongs in main")
    return problems


def is_allowed_call(node: ast.Expr) -> bool:
    """The log set-up, the main call, or an environment default that must precede the heavy imports."""
    text = ast.unparse(node)
    return text in (LOG_SETUP, "main(snakemake)") or text.startswith("os.environ.setdefault(")


@pytest.mark.parametrize("script", RULE_SCRIPTS, ids=lambda path: path.name)
def test_rule_script_logs_first_then_imports_then_runs_main(script):
    assert pattern_violations(script.read_text()) == []


def test_the_pattern_check_catches_each_deviation():
    good = f'"""Rule x."""\n\nimport os\n\n{LOG_IMPORT}\n\n{LOG_SETUP}\n\nimport torch\n\n\n'
    good += "def main(smk) -> None:\n    torch.ones(1)\n\n\nmain(snakemake)\n"
    assert pattern_violations(good) == []
    assert pattern_violations(good.replace("import os", "import torch")) == [
        "line 3: `import torch` imported before logging starts"
    ]
    assert pattern_violations(good.replace(LOG_SETUP, "")) == [f"no top-level `{LOG_SETUP}`"]
    assert pattern_violations(good.replace("main(snakemake)\n", "")) == [
        "the last statement is not the one `main(snakemake)` call"
    ]
    assert "not exactly one `def main(smk)`" in pattern_violations(
        good.replace("def main(smk)", "def run(smk)")
    )
    assert pattern_violations(good + "print(1)\n") == [
        "the last statement is not the one `main(snakemake)` call",
        "top-level calls besides the log set-up and main: the work belongs in main",
    ]


FAKE_SNAKEMAKE = """
import runpy, sys, types
snakemake = types.SimpleNamespace(log=[sys.argv[2]])
runpy.run_path(sys.argv[1], init_globals={"snakemake": snakemake}, run_name="__main__")
"""


def test_an_import_failure_after_logging_starts_reaches_the_jobs_log(tmp_path):
    # scripts/score.py with a broken heavy import (as a missing CUDA library would break torch).
    script = tmp_path / "score.py"
    source = (REPO / "scripts" / "score.py").read_text()
    script.write_text(source.replace("import torch\n", "import torch_with_a_broken_cuda_library\n", 1))
    log = tmp_path / "score.log"
    proc = subprocess.run(
        [sys.executable, "-c", FAKE_SNAKEMAKE, str(script), str(log)],
        env={"PYTHONPATH": str(REPO / "scripts"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    text = log.read_text()
    assert "ModuleNotFoundError: No module named 'torch_with_a_broken_cuda_library'" in text
    assert "Traceback" in text
