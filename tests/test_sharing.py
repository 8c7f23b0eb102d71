"""Adapters that load anywhere: byte-reproducible folders, model cards, the curve figure and the push plan."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from conftest import copy_workflow, run_snakemake
from reward_fixtures import model_cfg, write_trainset

from divpref.sharing import hub
from divpref.training.selection import base_model_reference

REPO = Path(__file__).resolve().parents[1]

EXPORT_DRIVER = textwrap.dedent("""
    import json, sys
    import torch
    from divpref.models.methods import get_method
    from divpref.training.loop import train_reward_model
    from divpref.training.params import TrainingParams
    from divpref.training.selection import best_record, export_adapter

    torch.set_num_threads(1)
    train, dev, cfg, root, out = sys.argv[1:]
    params = TrainingParams(seed=4, learning_rate=2e-3, batch_size=8, max_epochs=1, eval_every_epochs=0.5,
                            max_length=48)
    log = train_reward_model(train, dev, get_method("bt"), json.loads(cfg), params, root, progress=False)
    best = best_record(log)
    export_adapter(best["checkpoint"], log["tokenizer_dir"], out, log["head_outputs"], log["pad_token_id"],
                   base_model="org/base-model", revision="0123abc")
    """)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_adapter_folder_is_byte_identical_across_two_runs_of_one_seed(tmp_path):
    """Two CPU trainings of one seed, in processes with different hash seeds (peft's set order differs)."""
    train, dev = write_trainset(tmp_path / "data", n_train=32, n_dev=8)
    driver = tmp_path / "driver.py"
    driver.write_text(EXPORT_DRIVER)
    folders = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"adapter{hash_seed}"
        env = {**os.environ, "PYTHONPATH": str(REPO / "scripts"), "PYTHONHASHSEED": hash_seed}
        env["OMP_NUM_THREADS"] = "1"
        command = [sys.executable, str(driver), str(train), str(dev), json.dumps(model_cfg())]
        command += [str(tmp_path / f"ck{hash_seed}"), str(out)]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        folders.append(out)
    first, second = map(folder_bytes, folders)
    assert sorted(first) == sorted(second) and "adapter_model.safetensors" in first
    assert [name for name in first if first[name] != second[name]] == []
    settings = json.loads(first["adapter_config.json"])
    assert settings["target_modules"] == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert (settings["base_model_name_or_path"], settings["revision"]) == ("org/base-model", "0123abc")


def test_base_model_reference_names_the_hub_id_and_the_resolved_commit(tmp_path):
    downloaded = tmp_path / "resources/models/meta-llama/Meta-Llama-3-8B-Instruct@main"
    downloaded.mkdir(parents=True)
    provenance = {
        "repo_id": "meta-llama/Meta-Llama-3-8B-Instruct",
        "revision": "main",
        "resolved_commit": "5f0b",
    }
    (downloaded / "download_provenance.json").write_text(json.dumps(provenance))
    assert base_model_reference("meta-llama/Meta-Llama-3-8B-Instruct", downloaded) == (
        "meta-llama/Meta-Llama-3-8B-Instruct",
        "5f0b",
    )
    local = tmp_path / "my-backbone"
    local.mkdir()
    assert base_model_reference("my-backbone", local) == ("my-backbone", None)  # as configured


def ci_runs(workdir: Path) -> list[dict]:
    """Every training run of the CI DAG, from its best.json files."""
    runs = []
    for best in sorted((workdir / "results/models").glob("*/*/seed*/best.json")):
        dataset, condition, seed = best.parts[-4:-1]
        record = json.loads(best.read_text())
        runs.append(
            {
                "dataset": dataset,
                "condition": condition,
                "method": record["method"],
                "seed": int(seed.removeprefix("seed")),
                "best": record,
            }
        )
    return runs


@pytest.mark.slow
def test_curve_figure_marks_the_selected_checkpoint_of_every_run(ci_run):
    from divpref.evaluation.curves import plot_training_curves

    for ext in ("png", "pdf"):
        assert (ci_run / f"results/plots/training_curves.{ext}").stat().st_size > 1000
    runs = ci_runs(ci_run)
    assert len(runs) >= 10
    figure = plot_training_curves(runs, [run["best"] for run in runs])
    markers = {line.get_gid(): line for axis in figure.axes for line in axis.get_lines() if line.get_gid()}
    assert len(markers) == len(runs)
    for run in runs:
        best = run["best"]
        (x,), (y,) = markers[f"{run['dataset']}/{run['condition']}/seed{run['seed']}"].get_data()
        (at,) = [entry for entry in best["curve"] if entry["epoch"] == x]
        assert at["step"] == best["step"] and y == best["value"]
        values = [entry[best["metric"]] for entry in best["curve"]]
        assert y == (max(values) if best["greater_is_better"] else min(values))
        first = next(entry["step"] for entry in best["curve"] if entry[best["metric"]] == y)
        assert at["step"] == first  # ties: the earliest step


def share_folder(workdir: Path, dataset: str, condition: str, seed: int = 0) -> Path:
    return workdir / "results/share" / dataset / condition / f"seed{seed}"


@pytest.mark.slow
def test_model_cards_front_matter_and_test_results(ci_run):
    from huggingface_hub import ModelCard

    table2 = pl.read_csv(ci_run / "results/tables/table2.csv", infer_schema=False)
    for run in ci_runs(ci_run):
        folder = share_folder(ci_run, run["dataset"], run["condition"], run["seed"])
        card = ModelCard.load(folder / "README.md")
        data = card.data.to_dict()
        assert data["base_model"] == "resources/backbones/tiny-llama"  # the local folder as configured
        assert data["library_name"] == "peft" and "reward-model" in data["tags"]
        assert data["datasets"] == [run["dataset"]]  # a local (sample) file, not a hub dataset
        adapter = ci_run / "results/models" / run["dataset"] / run["condition"] / "seed0/adapter"
        assert folder_bytes(adapter) == {k: v for k, v in folder_bytes(folder).items() if k != "README.md"}
        best = run["best"]
        assert f"The checkpoint of step {best['step']} (epoch {best['epoch']:.2f}) was selected" in card.text
        assert f"| {best['step']} | {best['epoch']:.2f} |" in card.text
        if run["method"] == "bt":
            row = table2.filter(
                (pl.col("dataset") == run["dataset"])
                & (pl.col("method") == "bt")
                & (pl.col("labels") == run["condition"].split("-")[1])
                & (pl.col("seed") == "0")
                & (pl.col("subset") == "all")
                & (pl.col("metric") == "p_model_chosen")
            ).row(0, named=True)
            assert f"| table2 | all | p_model_chosen | {row['n']} | {float(row['value']):.4f} |" in card.text
        elif run["method"] in ("mean_var", "classification"):
            assert "| divergence_detection | diverging vs high agreement | auroc |" in card.text


@pytest.mark.slow
def test_card_snippet_reproduces_the_test_rewards_from_a_copy_outside_the_workflow(
    ci_run, tmp_path, monkeypatch
):
    source = share_folder(ci_run, "multipref", "bt-agg")
    copy = shutil.copytree(source, tmp_path / "elsewhere" / "adapter")
    text = (copy / "README.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert f"path = {str(Path('results/share/multipref/bt-agg/seed0'))!r}" in snippet
    snippet = snippet.replace("path = 'results/share/multipref/bt-agg/seed0'", f"path = {str(copy)!r}")
    monkeypatch.chdir(ci_run)  # the base model is the configured local folder, relative to the workflow
    namespace: dict = {}
    exec(compile(snippet, "model card snippet", "exec"), namespace)  # the card's own code
    test = pl.read_parquet(ci_run / "results/multipref/test.parquet")
    scores = pl.read_parquet(ci_run / "results/scores/multipref/bt-agg/seed0.parquet")
    joined = test.join(scores, on="pair_id")
    tokenizer, max_length = namespace["tokenizer"], 128  # tests/config/ci.yaml training.max_length
    compared = 0
    for row in joined.iter_rows(named=True):
        for side in ("a", "b"):
            if len(tokenizer(row["prompt"], row[f"response_{side}"])["input_ids"]) > max_length:
                continue  # training and scoring cut longer inputs (the card says so)
            (reward,) = namespace["head_outputs"](row["prompt"], row[f"response_{side}"])
            assert reward == pytest.approx(row[f"reward_{side}"], abs=1e-5)
            compared += 1
    assert compared >= 50


@pytest.mark.slow
def test_push_plans_every_selected_adapter_with_its_card(ci_run):
    config = {"namespace": "someone", "private": True}
    runs = ci_runs(ci_run)
    folders = [share_folder(ci_run, r["dataset"], r["condition"], r["seed"]) for r in runs]
    plan = hub.upload_plan(config, runs, folders)
    assert [entry["repo_id"] for entry in plan] == [
        f"someone/divpref-{r['dataset']}-{r['condition']}-seed{r['seed']}" for r in runs
    ]
    for entry in plan:
        assert entry["private"] is True
        assert {"README.md", "adapter_config.json", "adapter_model.safetensors", "reward_head.json"} <= set(
            entry["files"]
        )
        assert "tokenizer.json" in entry["files"] and entry["files"] == sorted(entry["files"])

    class RecordingApi:
        """Stands in for huggingface_hub.HfApi: the hub is unreachable here; records the calls instead."""

        def __init__(self):
            self.calls = []

        def create_repo(self, repo_id, **kwargs):
            self.calls.append(("create_repo", repo_id, kwargs["private"]))

        def upload_folder(self, repo_id, folder_path, **kwargs):
            self.calls.append(("upload_folder", repo_id, folder_path))
            return type("Commit", (), {"commit_url": f"https://hub/{repo_id}/commit/1"})()

    api = RecordingApi()
    pushed = hub.push(plan[:2], api)
    assert api.calls == [
        ("create_repo", plan[0]["repo_id"], True),
        ("upload_folder", plan[0]["repo_id"], plan[0]["folder"]),
        ("create_repo", plan[1]["repo_id"], True),
        ("upload_folder", plan[1]["repo_id"], plan[1]["folder"]),
    ]
    assert pushed[0]["commit_url"].endswith("/commit/1")


@pytest.mark.slow
def test_push_is_planned_by_the_dry_run_and_needs_hub(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    missing = run_snakemake(workdir, "-n", "push", check=False)
    assert missing.returncode != 0 and "config key hub:" in missing.stdout
    planned = run_snakemake(workdir, "-n", "push", "--config", 'hub={"namespace": "someone"}')
    assert re.search(r"^push\s+1$", planned.stdout, flags=re.M)
    assert re.search(r"^share_adapter\s+15$", planned.stdout, flags=re.M)


def test_card_front_matter_license_dataset_and_curve_from_hand_made_records(tmp_path):
    from huggingface_hub import ModelCard

    from divpref.sharing.cards import base_model_license, card_text, dataset_reference, table_rows

    base = tmp_path / "base"
    base.mkdir()
    (base / "README.md").write_text("---\nlicense: llama3\n---\n# a base model\n")
    curve = [
        {"step": 5, "epoch": 0.25, "train_loss": 0.7, "accuracy": 0.6},
        {"step": 10, "epoch": 0.5, "train_loss": 0.6, "accuracy": 0.8},
    ]
    best = {"step": 10, "epoch": 0.5, "metric": "accuracy", "value": 0.8, "greater_is_better": True}
    run = {"dataset": "multipref", "condition": "bt-agg", "method": "bt", "labels": "agg", "seed": 1}
    table2 = [
        {"dataset": "multipref", "method": "bt", "labels": "agg", "seed": "1", "subset": "all", "n": "9",
         "metric": "p_model_chosen", "value": "0.61234", "ci_low": "0.5", "ci_high": "0.7"},
        {"dataset": "multipref", "method": "bt", "labels": "agg", "seed": "2", "subset": "all", "n": "9",
         "metric": "p_model_chosen", "value": "0.9", "ci_low": "0.8", "ci_high": "1.0"},
    ]  # fmt: skip
    spec = {"source": "hub", "hub": {"repo_id": "allenai/multipref", "revision": "abc"}}
    text = card_text(
        run=run,
        best={**best, "curve": curve},
        train_log={"params": {"max_length": 512}, "method_options": {}},
        adapter_config={"base_model_name_or_path": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": "5f0b"},
        head={"num_labels": 1, "pad_token_id": 7},
        dataset_ref=dataset_reference("multipref", spec),
        dataset_revision="abc",
        license_name=base_model_license(base),
        results=table_rows(table2, [], run),
        load_path="someone/divpref-multipref-bt-agg-seed1",
    )
    card = ModelCard(text)
    assert card.data.to_dict() == {
        "base_model": "meta-llama/Meta-Llama-3-8B-Instruct",
        "datasets": ["allenai/multipref"],
        "library_name": "peft",
        "license": "llama3",
        "pipeline_tag": "text-classification",
        "tags": ["reward-model", "divpref", "peft", "lora"],
    }
    assert "| 10 | 0.50 | 0.6000 | 0.8000 | \N{BLACK STAR} selected |" in text
    assert "| 5 | 0.25 | 0.7000 | 0.6000 |  |" in text
    assert "| table2 | all | p_model_chosen | 9 | 0.6123 | [0.5000, 0.7000] |" in text
    assert "0.9000" not in text  # seed 2's row is another run's
    assert "meta-llama/Meta-Llama-3-8B-Instruct at revision `5f0b`" in text
    assert "path = 'someone/divpref-multipref-bt-agg-seed1'" in text and "pad_token_id=7" in text
