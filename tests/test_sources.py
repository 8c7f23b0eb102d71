"""Dataset sources: the hub download around a mocked network call, and how the workflow picks the raw file."""

import json
import logging
import os

import pytest
from conftest import copy_workflow, run_snakemake

from divpref.data import sources
from divpref.data.sources import download_hub_file

SHA = "990b2711a36180dd19d9c94b8627844866f8982a"
HUB = {"repo_id": "nvidia/HelpSteer2", "revision": SHA, "filename": "disagreements/disagreements.jsonl.gz"}


class FakeHub:
    """Stands in for the hub, which this machine cannot reach: a mock of the two network calls only."""

    def __init__(self, fail: bool = False):
        self.calls, self.fail = [], fail

    def hf_hub_download(self, *, repo_id, filename, repo_type, revision, local_dir):
        self.calls.append(
            {"repo_id": repo_id, "filename": filename, "repo_type": repo_type, "revision": revision}
        )
        if self.fail:
            raise ConnectionError("hub unreachable")
        path = f"{local_dir}/{filename}"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as stream:
            stream.write("payload\n")
        return path

    def api(self):
        class Info:
            sha = "f" * 40

        class Api:
            def dataset_info(self_, repo_id, revision):
                return Info()

        return Api()


@pytest.fixture
def fake_hub(monkeypatch):
    import huggingface_hub

    hub = FakeHub()
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub.hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "HfApi", hub.api)
    return hub


def test_download_calls_the_hub_with_the_pinned_revision(fake_hub, tmp_path):
    target = tmp_path / "resources/hub/helpsteer2" / HUB["filename"]
    provenance = download_hub_file(HUB["repo_id"], HUB["filename"], HUB["revision"], target)
    assert fake_hub.calls == [
        {"repo_id": "nvidia/HelpSteer2", "filename": HUB["filename"], "repo_type": "dataset", "revision": SHA}
    ]
    assert target.read_text() == "payload\n"
    assert provenance == {
        "repo_id": HUB["repo_id"],
        "filename": HUB["filename"],
        "revision": SHA,
        "resolved_commit": "f" * 40,
    }
    # only the target is left behind: the scratch folder is gone
    assert sorted(p.name for p in target.parent.iterdir()) == ["disagreements.jsonl.gz"]


def test_failed_download_leaves_nothing(fake_hub, tmp_path):
    fake_hub.fail = True
    target = tmp_path / "hub" / "file.parquet"
    with pytest.raises(ConnectionError):
        download_hub_file("allenai/multipref", "file.parquet", SHA, target)
    assert list(target.parent.iterdir()) == []


def test_unpinned_revision_warns(fake_hub, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger=sources.__name__):
        download_hub_file("allenai/multipref", "f.parquet", "main", tmp_path / "f.parquet")
    assert "not a commit SHA" in caplog.text


def test_write_json(tmp_path):
    sources.write_json({"b": 1, "a": 2}, tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text()) == {"a": 2, "b": 1}


@pytest.mark.slow
def test_dry_run_plans_download_for_hub_and_reads_local_paths(tmp_path):
    """The workflow's input function: hub sources go through `download`, local paths are read in place."""
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "data").mkdir()
    (workdir / "data" / "mp.jsonl").write_text("{}\n")
    overlay = workdir / "sources.yaml"
    overlay.write_text("datasets:\n  multipref:\n    source: data/mp.jsonl\n  helpsteer2:\n    source: hub\n")
    proc = run_snakemake(
        workdir,
        "--configfile",
        "tests/config/ci.yaml",
        str(overlay),
        "-n",
        "--",
        "results/multipref/annotations.parquet",
        "results/helpsteer2/annotations.parquet",
    )
    plan = proc.stdout
    assert "input: data/mp.jsonl" in plan
    assert "resources/hub/helpsteer2/disagreements/disagreements.jsonl.gz.provenance.json" in plan
    assert "rule download:" in plan and "generate_sample" not in plan
