"""The hub backbone is downloaded once by a local rule; training loads the folder with the hub offline.

The hub is unreachable here: the two network calls (snapshot_download, HfApi.model_info) are mocked, as in
tests/test_sources.py; everything around them (atomic folder, provenance, the workflow's plan) is real.
"""

import json
import os
from pathlib import Path

import pytest
from conftest import copy_workflow, run_snakemake

from divpref.data.sources import PROVENANCE_FILE, download_hub_model

REPO_ID = "meta-llama/Meta-Llama-3-8B-Instruct"


class FakeModelHub:
    def __init__(self, fail: bool = False):
        self.calls, self.fail = [], fail

    def snapshot_download(self, *, repo_id, revision, local_dir, ignore_patterns):
        self.calls.append({"repo_id": repo_id, "revision": revision, "ignore_patterns": ignore_patterns})
        os.makedirs(local_dir, exist_ok=True)
        with open(f"{local_dir}/config.json", "w") as stream:
            stream.write("{}\n")
        if self.fail:
            raise PermissionError("401 Client Error: gated repo")
        os.makedirs(f"{local_dir}/.cache/huggingface", exist_ok=True)
        return local_dir

    def api(self):
        class Info:
            sha = "e" * 40

        class Api:
            def model_info(self_, repo_id, revision):
                return Info()

        return Api()


@pytest.fixture
def fake_hub(monkeypatch):
    import huggingface_hub

    hub = FakeModelHub()
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    monkeypatch.setattr(huggingface_hub, "HfApi", hub.api)
    return hub


def test_model_download_at_the_configured_revision_writes_folder_and_provenance(fake_hub, tmp_path):
    target = tmp_path / "resources/models" / f"{REPO_ID}@main"
    provenance = download_hub_model(REPO_ID, "main", target)
    assert fake_hub.calls[0]["repo_id"] == REPO_ID and fake_hub.calls[0]["revision"] == "main"
    assert "original/*" in fake_hub.calls[0]["ignore_patterns"]  # Meta's 16 GB consolidated checkpoint
    assert provenance == {"repo_id": REPO_ID, "revision": "main", "resolved_commit": "e" * 40}
    assert json.loads((target / PROVENANCE_FILE).read_text()) == provenance
    assert (target / "config.json").is_file() and not (target / ".cache").exists()


def test_failed_model_download_leaves_nothing_and_names_the_login_command(fake_hub, tmp_path):
    fake_hub.fail = True
    target = tmp_path / "models" / "m"
    with pytest.raises(RuntimeError, match="hf auth login"):
        download_hub_model(REPO_ID, "main", target)
    assert not target.exists() and list(target.parent.iterdir()) == []


@pytest.mark.slow
def test_paper_plan_downloads_the_backbone_once_and_trains_from_the_folder(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    overlay = workdir / "hub_backbone.yaml"
    overlay.write_text(f"model:\n  name_or_path: {REPO_ID}\n  revision: main\n  load_in_8bit: true\n")
    target = "results/train/helpsteer2/bt-agg/seed0/train_log.json"
    proc = run_snakemake(workdir, "--configfile", "tests/config/ci.yaml", str(overlay), "-n", "--", target)
    folder = f"resources/models/{REPO_ID}@main"
    assert proc.stdout.count("rule download_backbone:") == 1
    assert f"output: {folder}" in proc.stdout
    train_block = proc.stdout[proc.stdout.index("rule train:") :]
    assert folder in train_block.split("\n\n")[0]  # the train job's input is the downloaded folder


def test_hub_models_of_pretrained_conditions_and_judges_are_downloaded_once_on_the_submit_node(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    overlay = workdir / "hub_models.yaml"
    overlay.write_text(
        "conditions:\n"
        "  hub-rm: {method: pretrained, model: {name_or_path: org/reward-model, revision: r1}}\n"
        "  folder-rm: {method: pretrained, model: {name_or_path: resources/backbones/tiny-reward-model}}\n"
        "judges:\n"
        "  hub-judge: {name_or_path: org/judge-lm, revision: main}\n"
        "  same-judge: {name_or_path: org/reward-model, revision: r1}\n"
    )
    targets = [
        "results/scores/multipref/hub-rm/seed0.parquet",
        "results/scores/multipref/folder-rm/seed0.parquet",
        "results/judge/multipref/hub-judge.parquet",
        "results/judge/multipref/same-judge.parquet",
    ]
    proc = run_snakemake(workdir, "--configfile", "tests/config/ci.yaml", str(overlay), "-n", "--", *targets)
    plan = proc.stdout
    blocks = [block for block in plan.split("\n\n") if "rule " in block]
    downloads = sorted(
        line.split("output: ", 1)[1]
        for block in blocks
        if "rule download_backbone:" in block
        for line in block.splitlines()
        if "output: " in line
    )
    # One download per repo id and revision (the judge that names the reward model shares its folder).
    assert downloads == ["resources/models/org/judge-lm@main", "resources/models/org/reward-model@r1"]
    for rule, folder in (
        ("rule score_pretrained:", "resources/models/org/reward-model@r1"),
        ("rule judge:", "resources/models/org/judge-lm@main"),
    ):
        assert any(rule in block and folder in block for block in blocks), rule
    # A local folder is built or used as it is: no download for it.
    assert "tiny-reward-model@" not in plan


def test_score_pretrained_and_judge_run_with_the_hub_offline():
    for script in ("score_pretrained.py", "judge.py"):
        source = (Path(__file__).resolve().parents[1] / "scripts" / script).read_text()
        offline = source.index('os.environ.setdefault("HF_HUB_OFFLINE", "1")')
        assert offline < source.index("\nimport torch"), script
