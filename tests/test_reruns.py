"""Snakemake reruns exactly what a change invalidated on a finished run (profiles/default's --rerun-triggers).

Each test copies the completed local CI run (`ci_run`), changes one thing, and dry-runs. The reference for
"exactly its dependents" is independent of snakemake's rerun logic: the jobs whose own inputs, params or code
changed, closed under "reads an output of" in the full job graph (`snakemake -n --forceall`). The README's
"What reruns" table lists what these tests check.
"""

import ast
import gzip
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from conftest import CI_CONFIG, copy_of_ci_run
from snakemake_jobs import (
    NOTHING_TO_BE_DONE,
    Job,
    deep_merge,
    depends_on,
    describe_failure,
    downstream_closure,
    parse_jobs,
    run_snakemake,
)

from divpref.common.code_fingerprint import used_modules

pytestmark = pytest.mark.slow

# Rules upstream of training: a change to one condition or to the training code must not rerun them.
UPSTREAM_OF_TRAINING = {
    "generate_sample",
    "download",
    "normalize",
    "classify",
    "split",
    "trainset",
    "build_backbone",
}
OVERLAY = "tests/config/changed.yaml"
# Rules whose params are the whole config (the report's record of the settings used): any config change
# reruns them, by design.
CONFIG_RECORDS = {"config_snapshot"}


# --- unit tests of the graph helpers, on a hand-made graph ---


def test_downstream_closure_follows_files_and_folders():
    jobs = [
        Job("a", ("a/x.txt",)),
        Job("b", ("b/model",), inputs=("a/x.txt",)),  # a folder output
        Job("c", ("c/y.txt",), inputs=("b/model/adapter.safetensors",)),  # reads a file inside it
        Job("d", ("d/z.txt",), inputs=("unrelated.txt",)),
        Job("all", (), inputs=("c/y.txt", "d/z.txt")),
    ]
    closure = downstream_closure(jobs, lambda job: job.rule == "b")
    assert closure == {("b", ("b/model",)), ("c", ("c/y.txt",)), ("all", ())}
    assert downstream_closure(jobs, lambda job: job.rule == "d") == {("d", ("d/z.txt",)), ("all", ())}


def test_parse_jobs_reads_rule_wildcards_and_reason():
    output = (
        "[Fri Nov 27 08:50:52 2026]\nlocalrule train:\n    input: t/train.parquet, t/dev.parquet\n"
        "    output: r/train_log.json\n    jobid: 7\n"
        "    reason: Params have changed since last execution\n"
        "    wildcards: dataset=multipref, condition=bt-agg, seed=0\n    resources: tmpdir=/tmp\n\n"
        "rule all:\n    input: r/train_log.json\n    jobid: 0\n"
    )
    train, final = parse_jobs(output)
    assert train == Job(
        "train",
        ("r/train_log.json",),
        ("t/train.parquet", "t/dev.parquet"),
        (("dataset", "multipref"), ("condition", "bt-agg"), ("seed", "0")),
        True,
        7,
        "Params have changed since last execution",
    )
    assert (final.rule, final.inputs, final.local) == ("all", ("r/train_log.json",), False)


# --- the real workflow ---


@pytest.fixture
def workdir(ci_run_copy) -> Path:
    """A private copy of the completed CI run (modification times preserved)."""
    return ci_run_copy


@pytest.fixture(scope="module")
def job_graph(ci_run, tmp_path_factory) -> list[Job]:
    """Every job of the CI-config DAG with its inputs and outputs (a forced dry-run of a copy)."""
    copy = copy_of_ci_run(ci_run, tmp_path_factory.mktemp("graph") / "run")
    proc = run_snakemake(copy, "--configfile", CI_CONFIG, "-n", "--forceall")
    assert proc.returncode == 0, describe_failure(proc)
    return parse_jobs(proc.stdout)


def dry_run(workdir: Path, *configfiles: str) -> tuple[str, list[Job]]:
    proc = run_snakemake(workdir, "--configfile", CI_CONFIG, *configfiles, "-n")
    assert proc.returncode == 0, describe_failure(proc)
    return proc.stdout, parse_jobs(proc.stdout)


def write_overlay(workdir: Path, overlay: dict) -> str:
    (workdir / OVERLAY).write_text(yaml.safe_dump(overlay))
    return OVERLAY


def config_of(workdir: Path) -> dict:
    return deep_merge(
        yaml.safe_load((workdir / "config.yaml").read_text()),
        yaml.safe_load((workdir / CI_CONFIG).read_text()),
    )


def assert_plans_exactly(planned: list[Job], graph: list[Job], is_changed) -> None:
    """The planned jobs are the changed ones and everything downstream of them, nothing else."""
    expected = downstream_closure(graph, is_changed)
    planned_keys = {job.key for job in planned}
    assert planned_keys == expected, (
        f"planned but not downstream of the change: {sorted(planned_keys - expected)}\n"
        f"downstream but not planned: {sorted(expected - planned_keys)}"
    )


def test_nothing_changed_plans_nothing(workdir):
    output, planned = dry_run(workdir)
    assert NOTHING_TO_BE_DONE in output
    assert planned == []


def test_touch_without_a_content_change_plans_nothing(workdir):
    # Snakemake 9 compares checksums of inputs below 1 MB (--max-checksum-file-size): a newer mtime alone
    # does not make a file changed.
    later = time.time() + 60
    for path in [
        *(workdir / "resources" / "sample").glob("*.jsonl.gz"),
        *(workdir / "results").glob("*/pairs.parquet"),
    ]:
        assert path.stat().st_size < 1_000_000, f"{path} is too large for the checksum comparison"
        os.utime(path, (later, later))
    output, planned = dry_run(workdir)
    assert NOTHING_TO_BE_DONE in output, [job.key for job in planned]


def test_content_change_of_a_data_file_reruns_exactly_its_dependents(workdir, job_graph):
    raw = Path("resources/sample/helpsteer2.jsonl.gz")
    lines = gzip.decompress((workdir / raw).read_bytes()).decode().splitlines(keepends=True)
    original_mtime = (workdir / raw).stat().st_mtime
    (workdir / raw).write_bytes(gzip.compress("".join(lines[:-2]).encode(), mtime=0))  # one pair fewer
    os.utime(workdir / raw, (original_mtime + 60, original_mtime + 60))

    _, planned = dry_run(workdir)
    assert_plans_exactly(planned, job_graph, lambda job: str(raw) in job.inputs)
    assert {job.wildcard("dataset") for job in planned if job.rule == "train"} == {"helpsteer2"}
    assert not any(job.rule in {"generate_sample", "build_backbone"} for job in planned)


def test_one_conditions_learning_rate_reruns_only_that_condition_and_the_summaries(workdir, job_graph):
    config = config_of(workdir)
    condition = next(iter(config["conditions"]))
    learning_rate = config["training"]["learning_rate"] * 2
    overlay = write_overlay(
        workdir, {"conditions": {condition: {"training": {"learning_rate": learning_rate}}}}
    )

    _, planned = dry_run(workdir, overlay)
    changed = [job for job in planned if job.reason.startswith("Params have changed")]
    assert {job.rule for job in changed} == {"train", *CONFIG_RECORDS}, [
        (job.rule, job.reason) for job in changed
    ]
    assert {job.wildcard("condition") for job in changed if job.rule == "train"} == {condition}
    assert_plans_exactly(
        planned,
        job_graph,
        lambda job: (
            (job.rule == "train" and job.wildcard("condition") == condition) or job.rule in CONFIG_RECORDS
        ),
    )
    # Per-run jobs of other conditions and everything upstream stay as they are; only the model cards of
    # other runs are rewritten, because every card quotes the summary tables (results/tables/table2.csv).
    assert all(
        job.wildcard("condition") in (None, condition) or job.rule == "share_adapter" for job in planned
    )
    assert not any(job.rule in UPSTREAM_OF_TRAINING for job in planned)
    assert {"select_checkpoint", "score", "table2"} <= {job.rule for job in planned}


def test_data_source_change_reruns_that_dataset_and_everything_downstream(workdir, job_graph):
    source = Path(config_of(workdir)["datasets"]["multipref"]["source"])
    moved = source.with_name("multipref_copy.jsonl.gz")
    shutil.copy2(workdir / source, workdir / moved)
    overlay = write_overlay(workdir, {"datasets": {"multipref": {"source": str(moved)}}})

    _, planned = dry_run(workdir, overlay)
    assert_plans_exactly(
        planned,
        job_graph,
        lambda job: (
            (job.rule == "normalize" and job.wildcard("dataset") == "multipref") or job.rule in CONFIG_RECORDS
        ),
    )
    assert {job.wildcard("dataset") for job in planned if job.rule == "train"} == {"multipref"}


def test_divergence_definition_change_reruns_everything_downstream(workdir, job_graph):
    strength = config_of(workdir)["divergence"]["helpsteer2_strength"]
    overlay = write_overlay(
        workdir,
        {
            "divergence": {
                "helpsteer2_strength": {**strength, "clear_min_diff": strength["clear_min_diff"] + 1}
            }
        },
    )

    _, planned = dry_run(workdir, overlay)
    changed_rules = {job.rule for job in planned if job.reason.startswith("Params have changed")}
    assert changed_rules == {"normalize", *CONFIG_RECORDS}
    assert_plans_exactly(planned, job_graph, lambda job: job.rule in changed_rules)
    trained = {job.key for job in planned if job.rule == "train"}
    assert trained == {job.key for job in job_graph if job.rule == "train"}, "every model is retrained"
    assert not any(job.rule in {"generate_sample", "build_backbone"} for job in planned)


def test_training_script_change_reruns_training_and_downstream_only(workdir, job_graph):
    script = workdir / "scripts" / "train.py"
    script.write_text(script.read_text() + "\n# an edit\n")

    _, planned = dry_run(workdir)
    assert {job.rule for job in planned if job.reason.startswith("Code has changed")} == {"train"}
    assert_plans_exactly(planned, job_graph, lambda job: job.rule == "train")
    assert not any(job.rule in UPSTREAM_OF_TRAINING for job in planned)


# --- library modules (scripts/divpref/): their code is a rule param, `library_fingerprint` ---


@pytest.fixture(scope="module")
def rule_scripts(rule_inventory) -> dict[str, Path]:
    """{rule: the script it runs} (tests/rule_inventory.py; `use rule` variants included)."""
    return {record["name"]: Path(record["script"]) for record in rule_inventory if record["script"]}


def edit(path: Path, old: str, new: str) -> None:
    """Replace `old` (which must occur) by `new` in `path`, and make the file newer than every output."""
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1))
    later = time.time() + 60
    os.utime(path, (later, later))


def test_comment_and_docstring_edits_of_library_modules_rerun_nothing(workdir):
    # The logging helper is used by every rule script; the loss functions by training and scoring.
    library = workdir / "scripts" / "divpref"
    edit(library / "common" / "job_log.py", "import logging\n", "import logging  # the standard library's\n")
    edit(
        library / "common" / "job_log.py",
        '"""Route',
        '# A comment line.\n"""Route, with a reworded docstring,',
    )
    losses = library / "models" / "losses.py"
    module_docstring = ast.get_docstring(ast.parse(losses.read_text()), clean=False)
    edit(losses, module_docstring, module_docstring + "\n\nA docstring-only edit.\n")
    first_function = next(
        node for node in ast.parse(losses.read_text()).body if isinstance(node, ast.FunctionDef)
    )
    docstring = ast.get_docstring(first_function, clean=False)
    edit(losses, docstring, docstring.rstrip() + " (reworded)")

    output, planned = dry_run(workdir)
    assert NOTHING_TO_BE_DONE in output, [(job.key, job.reason) for job in planned]


def test_library_code_change_reruns_exactly_the_rules_that_use_it(workdir, job_graph, rule_scripts):
    # models/losses is used by training and scoring through other modules only: no rule script imports it.
    module = "models/losses"
    assert not any("losses" in script.read_text() for script in rule_scripts.values())
    package = workdir / "scripts" / "divpref"
    users = {
        rule
        for rule, script in rule_scripts.items()
        if module in used_modules(package, workdir / "scripts" / script.name)
    }
    assert {"train", "score", "score_dev", "flag_score"} <= users
    assert not users & UPSTREAM_OF_TRAINING
    edit(package / f"{module}.py", "\ndef ", "\nUNUSED_CONSTANT = 1\n\n\ndef ")

    _, planned = dry_run(workdir)
    assert_plans_exactly(planned, job_graph, lambda job: job.rule in users)
    assert not any(job.rule in UPSTREAM_OF_TRAINING for job in planned)
    # Snakemake names one reason per job: a job whose inputs another planned job rewrites says so, whether or
    # not its own params changed. Every other planned job reruns for its params, and only users do.
    for job in planned:
        if not any(depends_on(job, other) for other in planned):
            assert job.rule in users and "Params have changed" in job.reason, (job.key, job.reason)
    changed = {job.rule for job in planned if "Params have changed" in job.reason}
    assert {"train", "judge"} <= changed <= users  # judge scores with models.losses too, but trains nothing
