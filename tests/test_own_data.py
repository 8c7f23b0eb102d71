"""Own data and own methods, through Snakemake on the CI-size config.

- the data stages on a long-format file, with hand-worked categories (test_longformat.py holds the table);
- what a dataset supports follows from its columns: config errors and default condition datasets (dry runs);
- the whole DAG on the demo's long-format example, a pretrained reward model, and a method registered from
  outside the package (tests/extensions/margin_ranking.py) trained, selected and scored: an incremental run on
  a copy of `ci_run`, so only the new jobs run, then the HTML report.
"""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import snakemake_jobs
import yaml
from conftest import CI_CONFIG, REPO, DerivedRun, copy_workflow
from test_longformat import EXPECTED_AGREEMENT

OWN_OVERLAY = "tests/config/own_data.yaml"


def snakemake(workdir: Path, overlay: dict | str, *args: str, timeout: int = 900, check: bool = True):
    """snakemake with the CI config and an overlay (a dict is written to own.yaml first)."""
    if isinstance(overlay, dict):
        (workdir / "own.yaml").write_text(yaml.safe_dump(overlay))
        overlay = "own.yaml"
    proc = snakemake_jobs.run_snakemake(workdir, "--configfile", CI_CONFIG, overlay, *args, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-12000:]}")
    return proc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("own_data"))
    shutil.copytree(REPO / "tests" / "data", workdir / "tests" / "data")
    shutil.copytree(REPO / "tests" / "extensions", workdir / "tests" / "extensions")
    plain = pl.read_csv(REPO / "tests/data/own_tiny.csv").drop("score_a", "score_b")
    plain.write_csv(workdir / "tests/data/plain.csv")
    return workdir


@pytest.mark.slow
def test_data_stages_on_a_long_file_with_hand_worked_categories(workdir):
    overlay = {"datasets": {"own": {"source": "tests/data/own_tiny.csv", "format": "long"}}}
    targets = [
        f"results/own/{name}" for name in ("pairs.parquet", "divergence_summary.csv", "data_quality.json")
    ]
    snakemake(workdir, overlay, "--cores", "1", *targets)
    pairs = pl.read_parquet(workdir / "results/own/pairs.parquet")
    assert dict(zip(pairs["pair_id"], pairs["agreement"], strict=True)) == EXPECTED_AGREEMENT
    summary = pl.read_csv(workdir / "results/own/divergence_summary.csv")
    counts = dict(zip(summary["category"], summary["count"], strict=True))
    assert counts["diverging"] == 2 and counts["substantial"] == 1 and counts["high_agreement_pref"] == 3
    assert counts["high_agreement_tie"] == 1 and counts["other"] == 1 and counts["pairs"] == 7
    quality = json.loads((workdir / "results/own/data_quality.json").read_text())
    assert (quality["rows_in"], quality["rows_kept"], quality["rows_rejected"]) == (24, 21, 3)
    assert quality["reasons"] == {"duplicate_annotation": 1, "missing_strength": 1, "missing_annotator": 1}
    rejects = pl.read_csv(workdir / "results/own/rejects.csv")
    assert rejects["row_key"].to_list() == ["row 18", "row 22", "row 24"]


@pytest.mark.slow
def test_score_needing_condition_on_a_dataset_without_scores_is_a_config_error(workdir):
    overlay = {
        "datasets": {"plain": {"source": "tests/data/plain.csv", "format": "long"}},
        "conditions": {"mse-agg": {"datasets": ["helpsteer2", "plain"]}},
    }
    proc = snakemake(workdir, overlay, "-n", check=False)
    assert proc.returncode != 0
    assert "conditions.mse-agg: method 'mse' needs Likert scores, which dataset 'plain'" in proc.stdout


@pytest.mark.slow
def test_condition_without_datasets_runs_on_every_dataset_that_supports_it(workdir):
    overlay = {
        "datasets": {
            "plain": {"source": "tests/data/plain.csv", "format": "long"},
            "own": {"source": "tests/data/own_tiny.csv", "format": "long"},
        },
        "conditions": {"mse-free": {"method": "mse", "labels": "agg"}},
    }
    plan = snakemake(workdir, overlay, "-n", "results/tables/divergence_detection.csv").stdout
    trained = {
        line.split("/")[2]
        for line in plan.split()
        if line.startswith("results/train/") and "/mse-free/" in line
    }
    assert trained == {"helpsteer2", "own"}  # MultiPref and the score-less long file have no Likert scores
    assert "results/train/plain/bt-agg/seed0/train_log.json" in plan


@pytest.mark.slow
def test_unknown_method_and_missing_format_are_config_errors(workdir):
    proc = snakemake(
        workdir, {"conditions": {"odd": {"method": "hinge", "labels": "agg"}}}, "-n", check=False
    )
    assert proc.returncode != 0 and "conditions.odd.method: unknown reward method 'hinge'" in proc.stdout
    proc = snakemake(
        workdir, {"datasets": {"prism": {"source": "tests/data/own_tiny.csv"}}}, "-n", check=False
    )
    assert proc.returncode != 0 and "datasets.prism.format: required" in proc.stdout


def add_own_data_overlay(workdir: Path) -> None:
    shutil.copytree(REPO / "tests" / "extensions", workdir / "tests" / "extensions")
    shutil.copy2(REPO / OWN_OVERLAY, workdir / OWN_OVERLAY)


# A copy of the completed CI run, extended by tests/config/own_data.yaml and run to completion, in the
# background while other modules run (conftest.DerivedRun).
EXTENDED_RUN = DerivedRun("extended_run", add_own_data_overlay, OWN_OVERLAY, "--cores", "2")


@pytest.fixture(scope="module")
def extended_run(ci_run, tmp_path_factory):
    """The workdir of the extended run and what snakemake printed."""
    return EXTENDED_RUN.wait(tmp_path_factory)


@pytest.mark.slow
def test_whole_dag_on_the_long_format_example(extended_run):
    workdir, log = extended_run
    assert "rule train:" in log
    # The train jobs' own outputs (other rules, e.g. the curve figure, list every run's files as inputs).
    trained = {
        tuple(job.outputs[0].split("/")[2:4]) for job in snakemake_jobs.parse_jobs(log) if job.rule == "train"
    }
    # Only the new runs trained; the copied run's models were kept.
    assert trained == {
        ("example", "bt-agg"),
        ("example", "mse-agg"),
        ("example", "mean_var-all"),
        ("multipref", "margin-agg"),
    }
    table2 = pl.read_csv(workdir / "results/tables/table2.csv", schema_overrides={"seed": pl.String})
    example = table2.filter(pl.col("dataset") == "example")
    assert set(zip(example["method"], example["labels"], strict=True)) == {
        ("bt", "agg"),
        ("mse", "agg"),
        ("pretrained", "tiny-rm"),
    }
    detection = pl.read_csv(
        workdir / "results/tables/divergence_detection.csv", schema_overrides={"seed": pl.String}
    )
    assert set(detection.filter(pl.col("dataset") == "example")["condition"]) == {
        "bt-agg",
        "mse-agg",
        "mean_var-all",
        "tiny-rm",
    }
    assert "example" in pl.read_csv(workdir / "results/tables/divergence.csv")["dataset"].to_list()
    assert (workdir / "results/plots/roc_example.png").stat().st_size > 0
    assert (workdir / "results/taxonomy/example_sheet.csv").exists()
    quality = json.loads((workdir / "results/example/data_quality.json").read_text())
    assert quality["rows_in"] == quality["rows_kept"] + quality["rows_rejected"]
    assert quality["reasons"] == {"missing_strength": 1, "duplicate_annotation": 1}
    report = workdir / "report.html"
    snakemake(workdir, OWN_OVERLAY, "--report", str(report), timeout=600)
    assert report.stat().st_size > 0


@pytest.mark.slow
def test_method_registered_outside_the_package_trains_selects_and_scores(extended_run):
    workdir, _ = extended_run
    run = "multipref/margin-agg/seed0"
    train_log = json.loads((workdir / f"results/train/{run}/train_log.json").read_text())
    assert train_log["method"] == "margin_ranking" and train_log["head_outputs"] == 1
    assert train_log["selection_metric"] == "accuracy" and train_log["greater_is_better"] is True
    assert all("hinge" in point for point in train_log["curve"])  # its own dev metrics were logged
    best = json.loads((workdir / f"results/models/{run}/best.json").read_text())
    accuracies = [point["accuracy"] for point in train_log["curve"]]
    assert best["metric"] == "accuracy" and best["value"] == max(accuracies)
    scores = pl.read_parquet(workdir / f"results/scores/{run}.parquet")
    test = pl.read_parquet(workdir / "results/multipref/test.parquet")
    assert scores["pair_id"].to_list() == test["pair_id"].to_list()
    assert scores["reward_a"].n_unique() > 1 and scores["sigma_a"].null_count() == scores.height
    # Its training set is BT's layout (RewardMethod.trainset); detection scores it as a single-value model.
    trainset = pl.read_parquet(workdir / "results/multipref/trainsets/margin_ranking-agg/train.parquet")
    assert trainset.equals(pl.read_parquet(workdir / "results/multipref/trainsets/bt-agg/train.parquet"))
    detection = pl.read_csv(
        workdir / "results/tables/divergence_detection.csv", schema_overrides={"seed": pl.String}
    )
    assert set(detection.filter(pl.col("condition") == "margin-agg")["score"]) == {"-|r_A - r_B|"}


@pytest.mark.slow
def test_pretrained_condition_in_table2_detection_and_plots(extended_run):
    """`tiny-rm` (method pretrained, no `datasets:`) is scored on every dataset, untrained."""
    ci_run, _ = extended_run
    table2 = pl.read_csv(ci_run / "results/tables/table2.csv", schema_overrides={"seed": pl.String})
    rows = table2.filter(pl.col("method") == "pretrained")
    assert set(rows["labels"]) == {"tiny-rm"}
    assert set(rows["dataset"]) == {"multipref", "helpsteer2", "example"}
    assert set(rows["metric"]) == {"p_model_chosen", "p_chosen", "decisiveness", "accuracy"}  # BT's
    assert "MP tiny-rm" in (ci_run / "results/tables/table2.md").read_text()
    detection = pl.read_csv(
        ci_run / "results/tables/divergence_detection.csv", schema_overrides={"seed": pl.String}
    )
    found = detection.filter(pl.col("condition") == "tiny-rm")
    assert set(found["method"]) == {"pretrained"} and found.height == 6  # 3 datasets x accuracy, auroc
    assert set(found["score"]) == {"-|r_A - r_B|"}
    assert "Pretrained: tiny-rm" in (ci_run / "results/tables/divergence_detection.md").read_text()
    for dataset in ("multipref", "helpsteer2", "example"):
        test = pl.read_parquet(ci_run / f"results/{dataset}/test.parquet")
        scores = pl.read_parquet(ci_run / f"results/scores/{dataset}/tiny-rm/seed0.parquet")
        assert scores["pair_id"].to_list() == test["pair_id"].to_list()
        dev = pl.read_parquet(ci_run / f"results/scores_dev/{dataset}/tiny-rm/seed0.parquet")
        splits = pl.read_parquet(ci_run / f"results/{dataset}/splits.parquet")
        assert set(dev["pair_id"]) == set(splits.filter(pl.col("split") == "dev")["pair_id"])
        assert not (ci_run / f"results/train/{dataset}/tiny-rm").exists()  # no training
    pair_scores = pl.read_parquet(ci_run / "results/detection/pair_scores.parquet")
    assert "tiny-rm" in set(pair_scores["condition"])  # what plot_roc draws
    assert (ci_run / "results/plots/roc_multipref.png").stat().st_size > 0
