"""The embedded synthetic sample: seeded, published layouts, planted truth that the pipeline recovers."""

import gzip
import json

import polars as pl
import pytest
from agreement_reference import chosen_side

from divpref.data.agreement import classify_pairs
from divpref.data.helpsteer2 import normalize_helpsteer2
from divpref.data.multipref import MULTIPREF_STRENGTH, normalize_multipref
from divpref.synthetic.sample import generate_helpsteer2, generate_multipref, write_sample
from divpref.synthetic.scenarios import SCENARIO_WEIGHTS

MP_STRING_COLUMNS = [
    "comparison_id",
    "prompt_id",
    "text",
    "completion_a",
    "model_a",
    "completion_b",
    "model_b",
    "source",
    "category",
    "subject_study",
    "highest_level_degree",
]
MP_ANNOTATION_KEYS = {
    "evaluator",
    "overall_pref",
    "overall_confidence",
    "helpful_pref",
    "truthful_pref",
    "harmless_pref",
    "time_spent",
    "timestamp",
}
HS2_SCORES = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    for dataset in ("multipref", "helpsteer2"):
        write_sample(dataset, 1200, 13, out / f"{dataset}.jsonl.gz", out / f"truth_{dataset}.parquet")
    return out


def read_jsonl_gz(path):
    with gzip.open(path, "rt") as stream:
        return [json.loads(line) for line in stream]


def test_same_seed_same_bytes_other_seed_differs(tmp_path, written):
    write_sample("helpsteer2", 1200, 13, tmp_path / "again.jsonl.gz", tmp_path / "truth.parquet")
    assert (tmp_path / "again.jsonl.gz").read_bytes() == (written / "helpsteer2.jsonl.gz").read_bytes()
    other = generate_helpsteer2(50, 14).records
    assert other != generate_helpsteer2(50, 13).records


def test_files_are_small(written):
    for path in written.iterdir():
        assert path.stat().st_size < 2_000_000, path


def test_multipref_layout(written):
    records = read_jsonl_gz(written / "multipref.jsonl.gz")
    assert len(records) == 1200
    assert len({record["comparison_id"] for record in records}) == 1200
    for record in records[:50]:
        assert all(isinstance(record[column], str) for column in MP_STRING_COLUMNS)
        assert len(record["normal_worker_annotations"]) == 2 and len(record["expert_worker_annotations"]) == 2
        for annotation in record["normal_worker_annotations"] + record["expert_worker_annotations"]:
            assert set(annotation) >= MP_ANNOTATION_KEYS
            assert annotation["overall_pref"] in MULTIPREF_STRENGTH


def test_helpsteer2_layout(written):
    records = read_jsonl_gz(written / "helpsteer2.jsonl.gz")
    assert len(records) == 2400
    for first, second in zip(records[::2], records[1::2], strict=True):
        assert first["prompt"] == second["prompt"] and first["response"] != second["response"]
        lengths = {len(record[score]) for record in (first, second) for score in HS2_SCORES}
        assert len(lengths) == 1 and lengths.pop() in (3, 4, 5)
        assert all(
            0 <= value <= 4 for record in (first, second) for score in HS2_SCORES for value in record[score]
        )
    assert len({record["prompt"] for record in records}) == 1200


@pytest.mark.parametrize(
    ("dataset", "normalize"), [("multipref", normalize_multipref), ("helpsteer2", normalize_helpsteer2)]
)
def test_pipeline_recovers_planted_truth(written, dataset, normalize):
    normalized = normalize(written / f"{dataset}.jsonl.gz")
    assert normalized.rejects.is_empty()
    pairs = classify_pairs(normalized.annotations)
    truth = pl.read_parquet(written / f"truth_{dataset}.parquet")
    joined = truth.join(pairs, on="pair_id", how="inner")
    assert joined.height == truth.height == pairs.height
    assert joined["votes"].equals(joined["strengths"], check_names=False)
    assert (joined["expected_agreement"] == joined["agreement"]).all()
    assert (joined["expected_substantial"] == joined["substantial"]).all()


@pytest.mark.parametrize(("dataset", "low", "high"), [("multipref", 0.28, 0.42), ("helpsteer2", 0.22, 0.36)])
def test_category_rates_resemble_the_paper(written, dataset, low, high):
    truth = pl.read_parquet(written / f"truth_{dataset}.parquet")
    shares = dict(truth["expected_agreement"].value_counts(normalize=True).iter_rows())
    assert low <= shares["diverging"] <= high
    assert shares["high_agreement_tie"] >= 0.12 and shares["high_agreement_pref"] >= 0.25
    assert truth["expected_substantial"].sum() >= 50


def test_divergence_comes_from_the_planted_causes(written):
    """Style and refusal scenarios diverge often; errors and harmful requests almost never do."""
    truth = pl.concat([pl.read_parquet(written / f"truth_{d}.parquet") for d in ("multipref", "helpsteer2")])
    rate = dict(
        truth.group_by("scenario").agg((pl.col("expected_agreement") == "diverging").mean()).iter_rows()
    )
    assert set(rate) == set(SCENARIO_WEIGHTS)
    for cause in ("verbosity_format", "comply_vs_refuse", "task_underspecification"):
        assert rate[cause] > 0.3, (cause, rate[cause])
    for agreed in ("error", "harmful_request", "equivalent", "refuse_vs_refuse"):
        assert rate[agreed] < 0.15, (agreed, rate[agreed])


@pytest.mark.parametrize("generate", [generate_multipref, generate_helpsteer2])
def test_annotators_side_with_the_sound_response(generate):
    """Where one response is flawed, the Table-2 "chosen" side is almost always the planted better one."""
    truth = [row for row in generate(600, 5).truth if row["planted_better"] is not None]
    assert {row["scenario"] for row in truth} == {"error", "harmful_request"}
    agree = sum(chosen_side(row["votes"]) == row["planted_better"] for row in truth)
    assert agree / len(truth) > 0.95


@pytest.mark.slow
def test_data_stages_write_the_contract_files(ci_run):
    """The data stages of the real CI-config DAG run (sample -> normalize -> ... -> trainsets)."""
    workdir = ci_run
    for path in [f"results/{d}/trainsets/bt-all/train.parquet" for d in ("multipref", "helpsteer2")] + [
        "results/helpsteer2/trainsets/mse-agg/dev.parquet",
        "results/multipref/test.parquet",
    ]:
        assert (workdir / path).is_file(), path
    for dataset in ("multipref", "helpsteer2"):
        results = workdir / "results" / dataset
        quality = json.loads((results / "data_quality.json").read_text())
        assert quality["rows_in"] == quality["rows_kept"] + quality["rows_rejected"]
        pairs = pl.read_parquet(results / "pairs.parquet")
        assert pairs.columns == [
            "pair_id",
            "prompt",
            "response_a",
            "response_b",
            "n_annotators",
            "n_a",
            "n_b",
            "n_tie",
            "strengths",
            "agreement",
            "substantial",
            "chosen",
            "label_dist",
            "mean_helpfulness_a",
            "mean_helpfulness_b",
        ]
        assert pairs.height == quality["pairs"] == 400
        summary = pl.read_csv(results / "divergence_summary.csv")
        assert summary["category"].to_list()[-2:] == ["pairs", "annotations"]
        splits = pl.read_parquet(results / "splits.parquet")
        counts = dict(splits["split"].value_counts().iter_rows())
        split_summary = json.loads((results / "split_summary.json").read_text())
        assert split_summary["group_by"] == "prompt" and set(splits["group_by"]) == {"prompt"}
        assert split_summary["pairs"] == counts and sum(counts.values()) == 400
        assert counts["test"] >= 100 and counts["dev"] >= 60  # pair counts met (a prompt may overshoot)
        split_of_pair = dict(zip(splits["pair_id"], splits["split"], strict=True))
        prompt_splits = {}
        for pair_id, prompt in pairs.select("pair_id", "prompt").iter_rows():
            prompt_splits.setdefault(prompt, set()).add(split_of_pair[pair_id])
        assert all(len(found) == 1 for found in prompt_splits.values())  # no prompt in two splits
        assert split_summary["prompts_in_several_splits"] == 0
        assert pl.read_parquet(results / "test.parquet").height == counts["test"]
        assert (workdir / "logs" / "normalize" / f"{dataset}.log").exists()
    assert (workdir / "resources" / "sample" / "truth_multipref.parquet").exists()
