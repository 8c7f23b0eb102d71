"""Flagging contested pairs: reading pair files, the dev threshold rule, flags, and the DAG's flag stage."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import REPO, copy_workflow
from snakemake_jobs import run_snakemake

from divpref.detection import scores as detection_scores
from divpref.detection import tuning
from divpref.flagging.flags import (
    choose_threshold,
    flag_scores,
    labelled_evaluation,
    precision_recall,
    read_pair_file,
    youden_threshold,
)

# --- the threshold rule on a hand-made dev set ------------------------------------------------------------


def test_youden_point_by_hand_with_ties_going_to_the_larger_threshold():
    is_diverging = [False, False, True, True, False, True]
    score = [0.1, 0.3, 0.35, 0.8, 0.5, 0.6]
    # TPR - FPR at t = 0.8: 1/3; 0.6: 2/3; 0.5: 1/3; 0.35: 2/3; 0.3: 1/3; 0.1: 0. Best: 0.6 and 0.35 -> 0.6.
    threshold, tpr, fpr = youden_threshold(is_diverging, score)
    assert (threshold, tpr, fpr) == pytest.approx((0.6, 2 / 3, 0.0))
    precision, recall = precision_recall(is_diverging, np.array(score) >= threshold)
    assert (precision, recall) == pytest.approx((1.0, 2 / 3))


def test_a_score_that_never_beats_chance_flags_nothing():
    threshold, tpr, fpr = youden_threshold([True, False, True, False], [0.5, 0.5, 0.5, 0.5])
    assert math.isinf(threshold) and (tpr, fpr) == (0.0, 0.0)
    precision, recall = precision_recall([True, False], [False, False])
    assert math.isnan(precision) and recall == 0.0


def test_the_threshold_needs_both_classes():
    with pytest.raises(ValueError, match="needs diverging and other dev pairs; got 0 diverging of 3"):
        youden_threshold([False, False, False], [0.1, 0.2, 0.3])


def _dev(method: str):
    """Hand-made dev pairs and score file: diverging pairs have close means and large sigmas."""
    agreement = ["diverging", "diverging", "high_agreement_pref", "high_agreement_tie", "other", "diverging"]
    pairs = pl.DataFrame(
        {
            "pair_id": [f"d{i}" for i in range(6)],
            "agreement": agreement,
            "chosen": ["a"] * 6,
            "extra": [0] * 6,
        }
    )
    scores = pl.DataFrame(
        {
            "pair_id": [f"d{i}" for i in range(6)],
            "reward_a": [0.1, 0.3, 2.0, 0.2, 1.0, 0.0],
            "reward_b": [0.0, 0.0, 0.0, 0.0, 0.0, 0.4],
            "sigma_a": [1.0, 0.9, 0.2, 0.3, 0.5, 0.4] if method == "mean_var" else [None] * 6,
            "sigma_b": [1.0, 0.8, 0.2, 0.3, 0.5, 0.4] if method == "mean_var" else [None] * 6,
        },
        schema_overrides={"sigma_a": pl.Float64, "sigma_b": pl.Float64},
    )
    model = {
        "dataset": "multipref",
        "condition": f"{method}-x",
        "seed": 0,
        "method": method,
        "dev_scores": "dev.parquet",
    }
    return model, pairs, scores


@pytest.mark.parametrize("method", ["mean_var", "bt"])
def test_threshold_uses_detections_score_and_dev_tuned_lambda(method):
    model, pairs, scores = _dev(method)
    grid = [0.0, 0.5, 2.0]
    record = choose_threshold(model, pairs, scores, grid)
    dev = detection_scores.join_method_scores(pairs, scores, method, "dev.parquet")
    lam = tuning.tune_lambda(dev["agreement"].to_numpy(), dev, grid)[0] if method == "mean_var" else None
    assert record["lambda"] == lam
    score = detection_scores.divergence_scores(method, dev, lam)
    is_diverging = dev["agreement"].to_numpy() == "diverging"
    assert record["threshold"] == pytest.approx(youden_threshold(is_diverging, score)[0])
    flagged = score >= record["threshold"]
    assert (record["dev_precision"], record["dev_recall"]) == pytest.approx(
        precision_recall(is_diverging, flagged)
    )
    assert (
        record["dev_n"] == 6 and record["dev_n_diverging"] == 3 and record["dev_n_flagged"] == flagged.sum()
    )
    json.dumps(record, allow_nan=False)  # a valid JSON record

    flags = flag_scores(record, scores, "set.parquet")
    assert flags.columns[:3] == ["pair_id", "divergence_score", "flagged"]
    assert ("sigma_a" in flags.columns) == (method == "mean_var")
    assert flags["flagged"].to_list() == flagged.tolist()  # the dev pairs scored as a set flag the same


def test_a_null_threshold_flags_nothing():
    _model, _pairs, scores = _dev("bt")
    record = {"method": "bt", "lambda": None, "score_name": None, "threshold": None}
    assert not flag_scores(record, scores, "s.parquet")["flagged"].any()


# --- reading pair files -----------------------------------------------------------------------------------

PAIRS = [
    {"pair_id": "x1", "prompt": "hi", "response_a": "hello", "response_b": 'line one\nline two, "quoted"'},
    {"pair_id": "x2", "prompt": "why?", "response_a": "because", "response_b": ""},
]


def _write(path: Path, rows: list[dict]) -> Path:
    frame = pl.DataFrame(rows)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_every_format_reads_the_same_pairs(tmp_path, suffix):
    pairs = read_pair_file(_write(tmp_path / f"pairs{suffix}", PAIRS))
    assert pairs.to_dicts() == PAIRS


def test_pair_ids_default_to_row_numbers_and_integers_become_strings(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "pair_id"} for row in PAIRS]
    assert read_pair_file(_write(tmp_path / "p.jsonl", rows))["pair_id"].to_list() == ["0", "1"]
    with_ints = [{**row, "pair_id": index + 7} for index, row in enumerate(rows)]
    assert read_pair_file(_write(tmp_path / "q.jsonl", with_ints))["pair_id"].to_list() == ["7", "8"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"prompt": "p", "response_a": "a"}], r"bad\.jsonl: missing column\(s\) \['response_b'\]"),
        (
            [PAIRS[0], {**PAIRS[1], "response_a": None}],
            r"bad\.jsonl: row 1 \(pair_id 'x2'\) has response_a = None, not a string",
        ),
        ([PAIRS[0], {**PAIRS[1], "prompt": 3}], r"row 1 \(pair_id 'x2'\) has prompt = 3, not a string"),
        ([PAIRS[0], {**PAIRS[1], "pair_id": "x1"}], r"bad\.jsonl: pair_id 'x1' appears in rows 0 and 1"),
        ([{**PAIRS[0], "pair_id": None}], r"bad\.jsonl: row 0 has an invalid pair_id None"),
    ],
)
def test_bad_pair_files_name_the_file_row_and_value(tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        read_pair_file(_write(tmp_path / "bad.jsonl", rows))


def test_broken_json_lines_and_unknown_formats_are_refused(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(PAIRS[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"broken\.jsonl: row 2: invalid JSON"):
        read_pair_file(broken)
    with pytest.raises(ValueError, match=r"unsupported pair-file format '\.tsv'"):
        read_pair_file(tmp_path / "pairs.tsv")
    empty_csv = tmp_path / "nulls.csv"
    empty_csv.write_text("prompt,response_a,response_b\nhi,,b\n")
    with pytest.raises(ValueError, match=r"nulls\.csv: row 0 \(pair_id '0'\) has response_a = None"):
        read_pair_file(empty_csv)


def test_labelled_evaluation_counts_only_identical_test_pairs():
    test = pl.DataFrame(
        [{**row, "agreement": a} for row, a in zip(PAIRS, ["diverging", "other"], strict=True)]
    )
    set_pairs = pl.DataFrame([PAIRS[0], {**PAIRS[1], "response_b": "edited"}])
    flags = pl.DataFrame({"pair_id": ["x1", "x2"], "flagged": [True, True]})
    result = labelled_evaluation(flags, set_pairs, test)
    assert result["test_pairs_matched"] == 1 and result["precision"] == 1.0 and result["recall"] == 1.0


# --- the demo's example file corresponds to the demo's test split -----------------------------------------


@pytest.mark.slow
def test_demo_flag_example_is_the_demo_multipref_test_split(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    proc = run_snakemake(
        workdir,
        "--configfile",
        "demo/config.yaml",
        "--cores",
        "1",
        "results/multipref/test.parquet",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    spec = importlib.util.spec_from_file_location("make_flag_example", REPO / "demo" / "make_flag_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.example_lines(pl.read_parquet(workdir / "results/multipref/test.parquet"))
    assert (REPO / "demo" / "flag_example.jsonl").read_text(encoding="utf-8") == expected, (
        "demo/flag_example.jsonl is stale: regenerate it with demo/make_flag_example.py (README, Flagging)"
    )


# --- the DAG: flag stage on the CI-size config ------------------------------------------------------------


def test_ci_dag_flags_the_test_pairs_with_the_mean_var_model(ci_run: Path):
    flags = pl.read_parquet(ci_run / "results/flags/ci_test.parquet")
    assert flags.columns == [
        "pair_id",
        "divergence_score",
        "flagged",
        "reward_a",
        "reward_b",
        "sigma_a",
        "sigma_b",
    ]
    test = pl.read_parquet(ci_run / "results/multipref/test.parquet")
    assert flags["pair_id"].to_list() == test["pair_id"].to_list()
    # Same scoring path as the test scores: identical rewards and sigmas.
    scores = pl.read_parquet(ci_run / "results/scores/multipref/mean_var-all/seed0.parquet")
    for column in ("reward_a", "reward_b", "sigma_a", "sigma_b"):
        np.testing.assert_allclose(flags[column].to_numpy(), scores[column].to_numpy(), rtol=1e-6)
    summary = json.loads((ci_run / "results/flags/ci_test.json").read_text())
    detection_rows = pl.read_csv(
        ci_run / "results/tables/divergence_detection.csv", schema_overrides={"seed": pl.String}
    ).filter(dataset="multipref", condition="mean_var-all", metric="auroc")
    assert summary["lambda"] == detection_rows["lambda"][0]  # detection's dev-tuned lambda
    threshold = math.inf if summary["threshold"] is None else summary["threshold"]
    assert flags["flagged"].to_list() == (flags["divergence_score"] >= threshold).to_list()
    assert {"threshold", "dev_precision", "dev_recall", "threshold_rule"} <= set(summary)
    labelled = summary["labelled_test_pairs"]
    assert labelled["test_pairs_matched"] == test.height
    is_diverging = (test["agreement"] == "diverging").to_numpy()
    precision, recall = precision_recall(is_diverging, flags["flagged"].to_numpy())
    assert labelled["recall"] == pytest.approx(recall)
    assert labelled["precision"] == (None if math.isnan(precision) else pytest.approx(precision))
    example = pl.read_parquet(ci_run / "results/flags/demo_example.parquet")
    assert example.height == sum(1 for _ in (REPO / "demo/flag_example.jsonl").open())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (
            {"condition": "nope", "dataset": "multipref"},
            "config key flag.condition: unknown or untrained condition 'nope'",
        ),
        (
            {"condition": "mse-agg", "dataset": "multipref"},
            "config key flag.dataset: condition 'mse-agg' is not trained on 'multipref'",
        ),
        ({"condition": "bt-agg", "dataset": "multipref", "sets": {"x": 3}}, "3 is not of type 'string'"),
    ],
)
def test_a_bad_flag_config_stops_the_workflow_load(tmp_path, flag, message):
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "bad.yaml").write_text(json.dumps({"flag": flag}))
    proc = run_snakemake(workdir, "-n", "--configfile", "tests/config/ci.yaml", "bad.yaml", timeout=120)
    assert proc.returncode != 0 and message in proc.stdout, proc.stdout[-3000:]


def test_threshold_for_likert_classification_uses_its_dev_chosen_score():
    """The full paper's Classification (KL) as flag model: its score is chosen on dev as detection chooses
    it."""
    model, pairs, _ = _dev("likert_classification")
    polar, certain_4, certain_2 = [0.5, 0, 0, 0, 0.5], [0, 0, 0, 1.0, 0], [0, 1.0, 0, 0, 0]
    probs_a = [polar, polar, certain_4, certain_2, certain_4, polar]
    probs_b = [certain_2] * 6
    values = np.arange(1, 6, dtype=float)
    scores = pl.DataFrame(
        {
            "pair_id": [f"d{i}" for i in range(6)],
            "reward_a": [float(np.dot(p, values)) for p in probs_a],
            "reward_b": [float(np.dot(p, values)) for p in probs_b],
            "likert_probs_a": probs_a,
            "likert_probs_b": probs_b,
        },
        schema_overrides={"likert_probs_a": pl.List(pl.Float64), "likert_probs_b": pl.List(pl.Float64)},
    )
    record = choose_threshold(model, pairs, scores, [0.0])
    dev = detection_scores.join_method_scores(pairs, scores, "likert_classification", "dev.parquet")
    chosen, _ = tuning.choose_classification_score(dev["agreement"].to_numpy(), dev, "likert_classification")
    assert record["score_name"] == chosen == "extreme_joint" and record["lambda"] is None
    assert record["dev_recall"] == 1.0  # the three polarised pairs are the diverging ones
    flags = flag_scores(record, scores, "set.parquet")
    assert flags["flagged"].to_list() == [True, True, False, False, False, True]
