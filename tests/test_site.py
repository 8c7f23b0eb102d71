"""Site settings in one place: config `cluster:` (the user's site.yaml) becomes every job's resources, and
cluster_check compares it with what sinfo says (divpref.common.cluster_check; on a real cluster in
test_slurm.py).

The dry runs here plan the paper config with a site file; nothing runs and no cluster is needed.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake_jobs import JOB_HEADER

from divpref.common.cluster_check import ClusterCheckError, parse_sinfo, site_problems, time_limit_minutes
from divpref.common.gpu_request import gpu_resources, gres_string, requested_gpus

REPO = Path(__file__).resolve().parents[1]
SITE = {
    "cpu_partition": "mycpu",
    "gpu_partition": "mygpu",
    "gpu_model": "h100",
    "account": "myaccount",
    # Below score's 120 minutes per attempt, so the cap shows at the first attempt already.
    "max_runtime_minutes": 100,
}
GPU_RULES = {"gpu_check", "train", "score", "score_dev", "score_pretrained", "judge", "flag_score"}
DATA_RULES = {"download", "normalize", "classify", "split", "trainset"}


# --- how GPUs are asked for ---


def test_gpu_requests_in_both_forms_and_the_count_read_back():
    assert gpu_resources("gpus", "h100", 2) == {"gpu": 2, "gpu_model": "h100"}
    assert gpu_resources("gres", "h100", 2) == {"gres": "gpu:h100:2"}
    assert gres_string("a6000", 1) == "gpu:a6000:1"
    assert requested_gpus({"gpu": 2, "gpu_model": "h100"}) == 2
    assert requested_gpus({"gres": "gpu:h100:4"}) == 4
    assert requested_gpus({"gres": "gpu:3"}) == 3
    assert requested_gpus({"gpu": 0, "mem_mb": 1000}) == 0
    assert requested_gpus({}) == 0
    with pytest.raises(ValueError, match=re.escape("config key cluster.gpu_request")):
        gpu_resources("gpu", "h100", 1)


# --- sinfo as cluster_check reads it ---

SINFO = "cpu*|(null)|1-00:00:00\ngpu|gpu:a6000:4(S:0-1)|2-00:00:00\ngpu|gpu:h100:8,nvme:1|2-00:00:00\n"


def test_time_limits_as_sinfo_prints_them():
    assert time_limit_minutes("2-00:00:00") == 2880
    assert time_limit_minutes("1-12:30:00") == 2190
    assert time_limit_minutes("4:00:00") == 240
    assert time_limit_minutes("30:00") == 30
    assert time_limit_minutes("45") == 45
    assert time_limit_minutes("1-00:00:59") == 1440  # seconds round down: a job of that many minutes fits
    assert time_limit_minutes("infinite") is None and time_limit_minutes("UNLIMITED") is None
    with pytest.raises(ValueError, match="not a SLURM time limit"):
        time_limit_minutes("n/a")


def test_parse_sinfo_merges_node_groups_and_reads_gpu_types():
    partitions = parse_sinfo(SINFO)
    assert set(partitions) == {"cpu", "gpu"}
    assert partitions["cpu"].gpu_models == frozenset() and partitions["cpu"].max_minutes == 1440
    assert partitions["gpu"].gpu_models == {"a6000", "h100"} and partitions["gpu"].max_minutes == 2880
    assert len(partitions["gpu"].lines) == 2


def site(**changes) -> dict:
    return {
        "cpu_partition": "cpu",
        "gpu_partition": "gpu",
        "gpu_model": "a6000",
        "max_runtime_minutes": 1440,
        **changes,
    }


def test_right_site_settings_have_no_problem():
    assert site_problems(site(), SINFO) == []
    assert site_problems(site(gpu_model="h100"), SINFO) == []


def test_each_mismatch_names_its_key_and_quotes_sinfo():
    [missing] = site_problems(site(gpu_partition="gpus"), SINFO)
    assert missing.startswith("config key cluster.gpu_partition: partition 'gpus' does not exist")
    assert "(partitions: cpu, gpu)" in missing and "    gpu|gpu:h100:8,nvme:1|2-00:00:00" in missing

    [model] = site_problems(site(gpu_model="a100"), SINFO)
    assert model.startswith(
        "config key cluster.gpu_model: no node of partition 'gpu' has GPUs of type 'a100'"
    )
    assert "(types there: a6000, h100)" in model and "    gpu|gpu:a6000:4(S:0-1)|2-00:00:00" in model

    # 2000 minutes fit the GPU partition (2 days) but not the CPU partition (1 day).
    [runtime] = site_problems(site(max_runtime_minutes=2000), SINFO)
    assert runtime.startswith(
        "config key cluster.max_runtime_minutes: 2000 minutes exceeds the time limit of partition 'cpu' "
        "(1440 minutes); set it to at most 1440"
    )
    assert "    cpu*|(null)|1-00:00:00" in runtime
    assert len(site_problems(site(cpu_partition="x", gpu_model="a100", max_runtime_minutes=3000), SINFO)) == 3


def test_cluster_check_is_an_error_type_of_its_own():
    assert issubclass(ClusterCheckError, ValueError)


# --- the site file in the dry run of the paper config ---


def job_resources(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, {resource: value}) for every job block of a dry run."""
    jobs, rule = [], None
    for line in output.splitlines():
        header = JOB_HEADER.match(line.strip()) if not line.startswith(" ") else None
        if header:
            rule = header["rule"]
        elif rule and line.startswith("    resources: "):
            items = line.removeprefix("    resources: ").split(", ")
            jobs.append((rule, dict(item.split("=", 1) for item in items)))
            rule = None
    return jobs


def test_job_resources_reads_a_dry_run_block():
    output = (
        "rule train:\n    output: x\n    resources: tmpdir=/tmp, gpu=1, slurm_partition=g, mem=64 GB\n"
        "localrule normalize:\n    resources: tmpdir=/tmp, slurm_partition=c\n"
    )
    assert job_resources(output) == [
        ("train", {"tmpdir": "/tmp", "gpu": "1", "slurm_partition": "g", "mem": "64 GB"}),
        ("normalize", {"tmpdir": "/tmp", "slurm_partition": "c"}),
    ]


# An off-the-shelf reward model beside the paper's grid, so that rule score_pretrained is planned too.
PRETRAINED = {
    "conditions": {"skywork": {"method": "pretrained", "model": {"name_or_path": "Skywork/Skywork-RM"}}}
}


def dry_run(tmp_path: Path, cluster: dict) -> list[tuple[str, dict[str, str]]]:
    site_file, pretrained = tmp_path / "site.yaml", tmp_path / "pretrained.yaml"
    site_file.write_text(yaml.safe_dump({"cluster": cluster}))
    pretrained.write_text(yaml.safe_dump(PRETRAINED))
    command = ["-n", "--configfile", "config.yaml", str(pretrained), str(site_file)]
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("snakemake")), *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = job_resources(proc.stdout)
    assert jobs, proc.stdout[-2000:]
    return jobs


def test_a_site_file_puts_its_values_on_the_train_score_and_data_jobs(tmp_path):
    jobs = dry_run(tmp_path, SITE)
    rules = {rule for rule, _ in jobs}
    assert {"train", "score", "score_dev", "score_pretrained", "normalize", "classify", "split"} <= rules
    limit = SITE["max_runtime_minutes"]
    for rule, resources in jobs:
        if rule == "all":
            continue
        assert resources["slurm_account"] == SITE["account"], rule
        assert int(resources["runtime"]) <= limit, (rule, resources)  # no job asks for more
        if rule in GPU_RULES:
            assert resources["slurm_partition"] == "mygpu", rule
            assert (resources["gpu"], resources["gpu_model"]) == ("1", "h100"), rule
            assert "gres" not in resources
        else:
            assert resources["slurm_partition"] == "mycpu", rule
            assert "gpu" not in resources and "gpu_model" not in resources, rule
    for rule, resources in jobs:
        if rule == "train":  # the site's whole limit, at every attempt; resume does the rest
            assert int(resources["runtime"]) == limit
        if rule == "score":  # 120 minutes per attempt, capped
            assert int(resources["runtime"]) == limit
        if rule in DATA_RULES:
            assert int(resources["runtime"]) == 60


def test_gres_form_asks_for_gres_and_never_for_gpus(tmp_path):
    jobs = dry_run(tmp_path, {**SITE, "gpu_request": "gres"})
    gpu_jobs = [(rule, resources) for rule, resources in jobs if rule in GPU_RULES]
    assert {rule for rule, _ in gpu_jobs} >= {"train", "score", "score_pretrained"}
    for rule, resources in gpu_jobs:
        assert resources["gres"] == "gpu:h100:1", rule
        assert "gpu" not in resources and "gpu_model" not in resources, rule
    assert not any("gres" in resources for rule, resources in jobs if rule not in GPU_RULES)


def test_without_a_site_file_no_job_names_a_partition(tmp_path):
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("snakemake")), "-n"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = job_resources(proc.stdout)
    assert jobs
    assert not any(re.match(r"slurm_|gres|gpu_model", key) for _, resources in jobs for key in resources)
    assert all(resources.get("gpu", "0") == "0" for _, resources in jobs)


def test_site_example_is_valid_and_names_every_setting():
    example = yaml.safe_load((REPO / "site.example.yaml").read_text())
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    assert set(example) == {"cluster"}
    assert set(example["cluster"]) == set(schema["properties"]["cluster"]["properties"])
    assert "site.yaml" in (REPO / ".gitignore").read_text().splitlines()
    profile = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    assert "SITE" not in profile and "slurm_partition" not in profile and "gpu_model" not in profile
