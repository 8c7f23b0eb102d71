"""profiles/slurm on a real single-node SLURM cluster (tests/slurm/cluster.sh), with fake GPUs.

The CI-size config runs through the cluster profile with the test cluster's site file (`TEST_SITE`, as a user
writes site.yaml), changed only where a one-node test cluster truly differs (`cluster_overrides`). The cluster
redoes one job of every rule that runs under sbatch (`cluster_run`) in a copy of the session's local run of
the whole DAG, and builds the backbone in a fresh workflow. Then:
- cluster_check compared the site settings with sinfo before the first submission and found them right;
  a wrong partition and a runtime above the partitions' MaxTime each stop a run before any submission, with
  an error quoting sinfo;
- every job that is not a localrule went through sbatch, and SLURM's own job records say so; every rule the
  local run ran under sbatch ran on the cluster;
- the GPU rules asked for a GPU of the site's model, in the site's GPU partition, training for the site's
  whole time limit;
- the results equal those of a local run of the same config (`ci_run` in conftest.py);
- a rerun after one condition's learning rate changes submits exactly that condition's jobs;
- a training job cancelled mid-run is retried with memory scaled by `attempt` and the same (the site's whole)
  time limit, resumes from its last checkpoint, and ends identical to the uninterrupted run.
Needs root and apt. Elsewhere these tests skip with the reason; under CI=true they fail instead.
"""

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import CI_CONFIG, copy_of_ci_run, copy_workflow
from polars.testing import assert_frame_equal
from slurm_cluster import (
    COMPARED_SUFFIXES,
    GPU_RULES,
    PROFILE,
    REPO,
    RUN_TIMEOUT,
    SITE_FILE,
    TEST_PROFILE,
    TEST_SITE,
    at_attempt,
    job_records,
    megabytes,
    minutes,
    parse_job_records,
    run_on_cluster,
    run_records,
    running_cluster,
    slurm_comment,
    submissions,
    write_site,
    write_test_profile,
)
from snakemake_jobs import (
    OFFLINE_ENV,
    Job,
    deep_merge,
    describe_failure,
    parse_jobs,
    snakemake_command,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

BACKBONE = "resources/backbones/tiny-llama"  # the CI config's backbone, built by rule build_backbone


# --- unit tests of the helpers, on hand-written inputs ---


def test_deep_merge_replaces_leaves_and_keeps_siblings():
    base = {
        "jobs": 50,
        "set-resources": {"train": {"gpu": 1, "mem_mb": "64000 * attempt"}, "score": {"gpu": 1}},
    }
    merged = deep_merge(base, {"set-resources": {"train": {"mem_mb": "4000 * attempt"}}, "cores": 2})
    assert merged == {
        "jobs": 50,
        "cores": 2,
        "set-resources": {"train": {"gpu": 1, "mem_mb": "4000 * attempt"}, "score": {"gpu": 1}},
    }
    assert base["set-resources"]["train"]["mem_mb"] == "64000 * attempt"


def test_slurm_comment_and_limits_parse_like_slurm_prints_them():
    job = Job(
        "score_dev",
        ("x",),
        wildcards=(("dataset", "multipref"), ("condition", "mean_var-all"), ("seed", "0")),
    )
    assert slurm_comment(job) == "rule_score_dev_wildcards_multipref_mean_var-all_0"
    assert slurm_comment(Job("table2", ("t",))) == "rule_table2"
    assert minutes("1-00:00:00") == 1440 and minutes("02:00:00") == 120 and minutes("00:00:30") == 1
    assert megabytes("4000M") == 4000 and megabytes("8G") == 8192
    assert at_attempt("1440 * attempt", 2) == 2880 and at_attempt(8, 3) == 8
    with pytest.raises(ValueError, match="not of the form"):
        at_attempt("max(1000, input.size_mb)", 1)
    line = "JobId=7 JobName=abc Comment=rule_train_wildcards_a_b_0 Partition=gpu TresPerJob=gres:gpu:a6000:1"
    assert parse_job_records(line)["7"]["TresPerJob"] == "gres:gpu:a6000:1"
    output = (
        "Job 12 has been submitted with SLURM jobid 5 (log: /w/.snakemake/slurm_logs/rule_a/5.log).\n"
        "Job 3 has been submitted with SLURM jobid 6 (log: /w/.snakemake/slurm_logs/rule_b/x/6.log).\n"
    )
    assert submissions(output) == [(12, "5"), (3, "6")]


def test_run_records_keeps_only_the_jobs_named_after_the_run():
    records = {"1": {"JobName": "run-a"}, "2": {"JobName": "run-b"}, "3": {"JobName": "run-a"}}
    assert set(run_records(records, "Building DAG of jobs...\nSLURM run ID: run-a\n")) == {"1", "3"}


# --- the cluster and the runs on it ---


@pytest.fixture(scope="session")
def slurm_profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


# Module scope: this cluster stops when this module's tests end, before test_slurm_accounting.py starts its
# own (one cluster at a time: both use the same ports and /etc/slurm/slurm.conf).
@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory, slurm_profile):
    """A running one-node cluster without accounting, as most clusters the profile meets may be."""
    with running_cluster(tmp_path_factory.mktemp("slurm"), TEST_SITE["gpu_model"]) as cluster:
        yield cluster


def merged_config(workdir: Path) -> dict:
    return deep_merge(
        yaml.safe_load((workdir / "config.yaml").read_text()),
        yaml.safe_load((workdir / CI_CONFIG).read_text()),
    )


def jobs_to_redo_on_the_cluster(workdir: Path) -> list[str]:
    """Outputs to force (`--forcerun`) in a copy of the local CI run so that one job of every rule that runs
    under sbatch is redone on the cluster, with as few jobs depending on them as possible: the training run
    that the flag model comes from (its training, scoring, dev scoring and flag scoring are redone), one
    judge's verdicts and the GPU check. The backbone, upstream of every model, is built in a workflow of its
    own."""
    config = merged_config(workdir)
    flag = config["flag"]
    run = f"{flag['dataset']}/{flag['condition']}/seed{config['training']['seeds'][0]}"
    first_judge = sorted((workdir / "results" / "judge").glob("*/*.parquet"))[0]
    return [
        f"results/train/{run}/train_log.json",
        str(first_judge.relative_to(workdir)),
        "results/gpu_check.json",
    ]


def cluster_invocation(workdir: Path, cluster: dict, *targets: str, forcerun: tuple[str, ...] = ()) -> dict:
    started = time.monotonic()
    proc = run_on_cluster(workdir, cluster, *targets, forcerun=forcerun)
    assert proc.returncode == 0, describe_failure(proc)
    return {
        "workdir": workdir,
        "output": proc.stdout,
        "jobs": parse_jobs(proc.stdout),
        "records": run_records(job_records(cluster), proc.stdout),
        "wall_s": time.monotonic() - started,
    }


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory, ci_run, slurm_cluster, slurm_profile):
    """The CI-size DAG through the cluster profile: four invocations at once on the test cluster, each in its
    own workdir (most of their time is spent waiting for the plugin's status polls, so they overlap well):
    - "grid": a copy of the completed local run (`ci_run`) run to its default targets with
      `jobs_to_redo_on_the_cluster` forced, so that one job of every rule that is not local runs under sbatch,
      and every table, figure and report that depends on them is rebuilt from their outputs;
    - "backbone": a fresh workflow copy asked for the tiny backbone only;
    - "changed": a copy of the local run after one condition's learning rate changed
      (`changed_condition_run`);
    - "cancelled": a copy of the local run whose training job is cancelled mid-run
      (`cancelled_training_run`).
    The whole DAG runs locally once per session (`ci_run`); running its 45 sbatch jobs again here would prove
    nothing more per rule and cost about 11 minutes. The grid's outputs equal the local run's
    (`test_outputs_equal_a_local_run`), so the other invocations start from copies of the local run."""
    grid = copy_of_ci_run(ci_run, tmp_path_factory.mktemp("slurm_run") / "run")
    redone = jobs_to_redo_on_the_cluster(grid)
    # The redone training starts from scratch, not from the local run's last checkpoint.
    shutil.rmtree(grid / "checkpoints" / Path(redone[0]).parent.relative_to("results/train"))
    backbone = copy_workflow(tmp_path_factory.mktemp("slurm_backbone"))
    changed = copy_of_ci_run(ci_run, tmp_path_factory.mktemp("slurm_changed") / "run")
    cancelled = copy_of_ci_run(ci_run, tmp_path_factory.mktemp("slurm_cancelled") / "run")
    test_profile = write_test_profile(grid, slurm_profile)
    for workdir in (backbone, changed, cancelled):
        write_test_profile(workdir, slurm_profile)
    # The cancelled run is one that no other invocation trains: SLURM finds its job by the job's comment.
    condition = condition_with_fewest_runs(merged_config(ci_run))
    cancelled_log = next(
        log.relative_to(ci_run)
        for log in sorted((ci_run / "results" / "train").glob("*/*/seed*/train_log.json"))
        if log.parent.parent.name != condition and str(log.relative_to(ci_run)) != redone[0]
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            "grid": pool.submit(cluster_invocation, grid, slurm_cluster, forcerun=tuple(redone)),
            "backbone": pool.submit(cluster_invocation, backbone, slurm_cluster, BACKBONE),
            "changed": pool.submit(changed_condition_run, changed, slurm_cluster, condition),
            "cancelled": pool.submit(cancelled_training_run, cancelled, slurm_cluster, cancelled_log),
        }
        runs = {name: future.result() for name, future in futures.items()}
    print("cluster runs: " + ", ".join(f"{name} {run['wall_s']:.0f} s" for name, run in runs.items()))
    return {
        "runs": {name: runs[name] for name in ("grid", "backbone")},
        "changed": runs["changed"],
        "cancelled": runs["cancelled"],
        "workdir": grid,
        "redone": redone,
        "profile": test_profile,
        **runs["grid"],
    }


def local_rule_names(workdir: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "rule_inventory.py"), "--configfile", CI_CONFIG],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {rule["name"] for rule in json.loads(proc.stdout) if rule["local"]}


def test_every_job_that_is_not_a_localrule_went_through_sbatch(cluster_run):
    local_rules = local_rule_names(cluster_run["workdir"])
    for name, run in cluster_run["runs"].items():
        jobs, records = run["jobs"], run["records"]
        submitted = dict(submissions(run["output"]))
        remote = [job for job in jobs if not job.local]
        local = [job for job in jobs if job.local]
        assert remote, f"{name}: no job was submitted"
        # Snakemake printed a SLURM job id for exactly its remote jobs...
        assert sorted(submitted) == sorted(job.jobid for job in remote), name
        # ...SLURM ran each of them to completion, under the comment naming that job's rule and wildcards...
        for job in remote:
            record = records[submitted[job.jobid]]
            assert record["Comment"] == slurm_comment(job), record
            assert record["JobState"] == "COMPLETED", record
        # ...and the jobs that ran locally are exactly those of rules declared local.
        assert {job.rule for job in local} <= local_rules, name
        assert set(records) == set(submitted.values()), f"{name}: SLURM ran jobs snakemake did not report"


def test_every_rule_the_local_run_ran_under_sbatch_ran_on_the_cluster(cluster_run, ci_run, ci_run_output):
    local_rules = local_rule_names(cluster_run["workdir"])
    remote_rules_of_the_dag = {job.rule for job in parse_jobs(ci_run_output)} - local_rules
    assert {"build_backbone", "gpu_check", "train", "score", "score_dev", "judge"} <= remote_rules_of_the_dag
    runs = cluster_run["runs"].values()
    on_the_cluster = {job.rule for run in runs for job in run["jobs"] if not job.local}
    assert on_the_cluster == remote_rules_of_the_dag
    # Every forced output was rebuilt by a job of the cluster run.
    rebuilt = {output for job in cluster_run["jobs"] for output in job.outputs}
    assert set(cluster_run["redone"]) <= rebuilt


def test_jobs_asked_for_the_site_partitions_gpus_and_time_limits(cluster_run, slurm_cluster):
    profile = cluster_run["profile"]
    jobs = [job for run in cluster_run["runs"].values() for job in run["jobs"]]
    assert {job.rule for job in jobs if job.rule in GPU_RULES} >= {"train", "score"}
    limit = TEST_SITE["max_runtime_minutes"]
    for run in cluster_run["runs"].values():
        submitted = dict(submissions(run["output"]))
        for job in run["jobs"]:
            if job.local:
                continue
            record = run["records"][submitted[job.jobid]]
            gpu_request = record.get("TresPerJob", "") + record.get("TresPerNode", "")
            assert minutes(record["TimeLimit"]) <= limit, record  # no job asks for more than the site allows
            if job.rule in GPU_RULES:
                overrides = profile["set-resources"][job.rule]
                assert f"gpu:{TEST_SITE['gpu_model']}:1" in gpu_request, record
                assert record["Partition"] == TEST_SITE["gpu_partition"]
                assert megabytes(record["MinMemoryNode"]) == at_attempt(overrides["mem_mb"], 1)
                assert int(record["NumCPUs"]) == overrides["cpus_per_gpu"]
            else:
                assert "gpu" not in gpu_request, record
                assert record["Partition"] == TEST_SITE["cpu_partition"]
            if job.rule == "train":
                assert minutes(record["TimeLimit"]) == limit, record


def test_cluster_check_passed_before_the_first_submission(cluster_run):
    for run in cluster_run["runs"].values():
        output = run["output"]
        check = output.find("cluster_check: partitions 'cpu' (CPU) and 'gpu' (GPU, a6000 in gres) exist")
        assert check != -1, output[-4000:]
        assert check < output.find("has been submitted with SLURM jobid")


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (
            {"gpu_partition": "gpu-a100"},
            "config key cluster.gpu_partition: partition 'gpu-a100' does not exist (partitions: cpu, gpu)",
        ),
        (
            {"max_runtime_minutes": 2881},
            "config key cluster.max_runtime_minutes: 2881 minutes exceeds the time limit of partition 'gpu' "
            "(2880 minutes); set it to at most 2880",
        ),
    ],
    ids=["wrong-partition", "runtime-above-maxtime"],
)
def test_cluster_check_stops_a_wrong_site_before_any_submission(
    slurm_cluster, slurm_profile, tmp_path, changes, error
):
    workdir = copy_workflow(tmp_path / "workflow")
    write_test_profile(workdir, slurm_profile)
    site = write_site(workdir, "wrong_site.yaml", **changes)
    started = time.monotonic()
    proc = run_on_cluster(workdir, slurm_cluster, BACKBONE, site=site)
    print(f"cluster_check of a wrong site: {time.monotonic() - started:.0f} s")
    assert proc.returncode != 0
    assert error in proc.stdout, proc.stdout[-4000:]
    # The error quotes what sinfo said about the cluster's partitions...
    assert "`sinfo --noheader --format=%P|%G|%l` said:" in proc.stdout
    assert f"    gpu|gpu:{TEST_SITE['gpu_model']}:2|2-00:00:00" in proc.stdout
    # ...and nothing was submitted.
    assert submissions(proc.stdout) == []
    assert not (workdir / BACKBONE).exists()


def result_files(workdir: Path) -> list[Path]:
    return sorted(
        path.relative_to(workdir)
        for path in (workdir / "results").rglob("*")
        if path.suffix in COMPARED_SUFFIXES and path.is_file()
    )


def read_table(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema_length=None)


def test_outputs_equal_a_local_run(cluster_run, ci_run):
    cluster_dir = cluster_run["workdir"]
    files = result_files(ci_run)
    assert files, "the local run produced no tables"
    assert result_files(cluster_dir) == files
    for relative in files:
        try:
            assert_frame_equal(
                read_table(cluster_dir / relative), read_table(ci_run / relative), check_exact=True
            )
        except AssertionError as error:
            raise AssertionError(
                f"{relative} differs between the cluster and the local run: {error}"
            ) from None
    for best in (ci_run / "results" / "models").rglob("best.json"):
        assert json.loads((cluster_dir / best.relative_to(ci_run)).read_text()) == json.loads(
            best.read_text()
        )
    # Among them, the tables the cluster jobs rewrote: the redone run's scores, and the summaries.
    rebuilt = {Path(output) for job in cluster_run["jobs"] for output in job.outputs} & set(files)
    assert any(path.parts[1] == "scores" for path in rebuilt), sorted(rebuilt)
    assert any(path.parts[1] == "tables" for path in rebuilt), sorted(rebuilt)
    redone_log = cluster_run["redone"][0]
    assert (
        json.loads((cluster_dir / redone_log).read_text())["curve"]
        == json.loads((ci_run / redone_log).read_text())["curve"]
    )
    # The backbone built under sbatch is the locally built one, byte for byte.
    built = cluster_run["runs"]["backbone"]["workdir"] / BACKBONE
    local = sorted(path.relative_to(ci_run / BACKBONE) for path in (ci_run / BACKBONE).rglob("*"))
    assert sorted(path.relative_to(built) for path in built.rglob("*")) == local
    for relative in local:
        if (built / relative).is_file():
            assert (built / relative).read_bytes() == (ci_run / BACKBONE / relative).read_bytes(), relative


def condition_with_fewest_runs(config: dict) -> str:
    """The condition trained on the fewest datasets (first in config order): the cheapest one to rerun."""
    all_datasets = list(config["datasets"])
    return min(
        config["conditions"], key=lambda name: len(config["conditions"][name].get("datasets", all_datasets))
    )


def changed_condition_run(workdir: Path, cluster: dict, condition: str) -> dict:
    """`condition`'s learning rate doubled by an overlay config, then the cluster profile's run."""
    learning_rate = merged_config(workdir)["training"]["learning_rate"] * 2
    overlay = workdir / "tests" / "config" / "changed_condition.yaml"
    overlay.write_text(
        yaml.safe_dump({"conditions": {condition: {"training": {"learning_rate": learning_rate}}}})
    )
    started = time.monotonic()
    proc = run_on_cluster(workdir, cluster, configfiles=(CI_CONFIG, str(overlay.relative_to(workdir))))
    assert proc.returncode == 0, describe_failure(proc)
    return {
        "condition": condition,
        "config": merged_config(workdir),
        "output": proc.stdout,
        "records": run_records(job_records(cluster), proc.stdout),
        "wall_s": time.monotonic() - started,
    }


def test_rerun_after_one_condition_changes_submits_exactly_its_jobs(cluster_run):
    changed = cluster_run["changed"]
    config, condition = changed["config"], changed["condition"]
    jobs = parse_jobs(changed["output"])
    remote = [job for job in jobs if not job.local]
    # Exactly that condition's training runs were retrained, and only its per-run jobs went to SLURM.
    datasets = config["conditions"][condition].get("datasets", list(config["datasets"]))
    trained = sorted((job.wildcard("dataset"), job.wildcard("seed")) for job in jobs if job.rule == "train")
    assert trained == sorted((d, str(s)) for d in datasets for s in config["training"]["seeds"])
    assert remote and all(job.wildcard("condition") == condition for job in remote), remote
    new_records = changed["records"]
    assert sorted(record["Comment"] for record in new_records.values()) == sorted(map(slurm_comment, remote))
    assert all(record["JobState"] == "COMPLETED" for record in new_records.values())
    assert not any(
        job.rule in {"generate_sample", "normalize", "classify", "split", "trainset", "build_backbone"}
        for job in jobs
    )


def wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen, timeout: float) -> Path:
    """The first complete checkpoint (`step*/`, not a temporary) that appears under `run_dir`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = sorted(run_dir.glob("*/step*"))
        if steps:
            return steps[0]
        if proc.poll() is not None:
            pytest.fail(f"snakemake ended before the first checkpoint:\n{proc.stdout.read()[-4000:]}")
        time.sleep(0.1)
    pytest.fail(f"no checkpoint under {run_dir} after {timeout} s")


def running_job_id(cluster: dict, comment: str) -> str:
    proc = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"],
        env={**os.environ, **cluster["env"]},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    ids = [line.split()[0] for line in proc.stdout.splitlines() if line.split()[1:] == [comment]]
    assert len(ids) == 1, f"running jobs with comment {comment}: {proc.stdout}"
    return ids[0]


def cancelled_training_run(workdir: Path, cluster: dict, train_log: Path) -> dict:
    """The training run of `train_log` from scratch through the cluster profile; its first SLURM attempt is
    cancelled (scancel) as soon as it has written a checkpoint."""
    dataset, condition, seed = train_log.parts[2:5]
    wildcards = (("dataset", dataset), ("condition", condition), ("seed", seed.removeprefix("seed")))
    job = Job("train", (str(train_log),), wildcards=wildcards)
    run_dir = workdir / "checkpoints" / dataset / condition / seed
    # Start this training run from scratch: no output, no checkpoints.
    shutil.rmtree(run_dir)
    (workdir / train_log).unlink()
    command = [
        "timeout",
        "-k",
        "10",
        str(RUN_TIMEOUT),
        *snakemake_command(),
        "--profile",
        TEST_PROFILE,
        "--configfile",
        CI_CONFIG,
        SITE_FILE,
        "--",
        str(train_log),
    ]
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=workdir,
        env={**os.environ, **OFFLINE_ENV, **cluster["env"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first_checkpoint = wait_for_checkpoint(run_dir, proc, timeout=RUN_TIMEOUT)
        slurm_id = running_job_id(cluster, slurm_comment(job))
        subprocess.run(["scancel", slurm_id], env={**os.environ, **cluster["env"]}, check=True, timeout=30)
        output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-6000:]
    return {
        "workdir": workdir,
        "train_log": train_log,
        "run_dir": run_dir,
        "first_checkpoint": first_checkpoint,
        "slurm_id": slurm_id,
        "output": output,
        "records": run_records(job_records(cluster), output),
        "wall_s": time.monotonic() - started,
    }


def test_cancelled_training_job_is_retried_with_more_resources_and_resumes_identically(cluster_run, ci_run):
    cancelled = cluster_run["cancelled"]
    workdir, train_log, run_dir = cancelled["workdir"], cancelled["train_log"], cancelled["run_dir"]
    output, records = cancelled["output"], cancelled["records"]

    # SLURM saw the cancelled attempt and a second one asking for twice the memory and the same time limit:
    # the site's whole limit, with resume doing the rest.
    attempts = [slurm for _, slurm in submissions(output)]
    assert attempts[0] == cancelled["slurm_id"] and len(attempts) == 2, output[-4000:]
    assert set(records) == set(attempts)
    first, second = records[attempts[0]], records[attempts[1]]
    assert (first["JobState"], second["JobState"]) == ("CANCELLED", "COMPLETED")
    assert megabytes(second["MinMemoryNode"]) == 2 * megabytes(first["MinMemoryNode"])
    assert minutes(second["TimeLimit"]) == minutes(first["TimeLimit"]) == TEST_SITE["max_runtime_minutes"]

    # The retry resumed from a checkpoint of the cancelled attempt and ended where the uninterrupted (local)
    # run did.
    resumed = json.loads((workdir / train_log).read_text())
    uninterrupted = json.loads((ci_run / train_log).read_text())
    assert resumed["resumed_from_step"] >= int(cancelled["first_checkpoint"].name.removeprefix("step"))
    assert resumed["curve"] == uninterrupted["curve"]
    # The killed attempt left no partial output behind (outputs and checkpoints are written atomically).
    leftovers = [
        path for folder in ("results", "checkpoints") for path in (workdir / folder).rglob(".*.tmp-*")
    ]
    assert not leftovers, leftovers
    final = max(run_dir.glob("*/step*"))
    reference = ci_run / final.relative_to(workdir)
    for weights in sorted(final.rglob("*.safetensors")):
        assert weights.read_bytes() == (reference / weights.relative_to(final)).read_bytes(), weights
