"""Normalize stage: both layouts and strength mappings, rejects that reconcile, and schema errors."""

import gzip
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from divpref.data.helpsteer2 import (
    helpsteer2_pair_id,
    helpsteer2_strength,
    helpsteer2_strength_expr,
    normalize_helpsteer2,
)
from divpref.data.multipref import MULTIPREF_STRENGTH, normalize_multipref
from divpref.data.normalize import normalize_to_files

OUTPUTS = ("annotations.parquet", "rejects.csv", "data_quality.json")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    text = "".join(json.dumps(record) + "\n" for record in records)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def mp_annotation(label: str | None, evaluator: str = "w") -> dict:
    return {
        "evaluator": evaluator,
        "overall_pref": label,
        "overall_confidence": "c",
        "helpful_pref": label,
        "time_spent": 10,
        "timestamp": "2024-01-01",
    }


def mp_record(comparison_id: str, crowd: list, experts: list, text: str = "q") -> dict:
    return {
        "comparison_id": comparison_id,
        "prompt_id": "p",
        "text": text,
        "completion_a": f"A of {comparison_id}",
        "model_a": "m1",
        "completion_b": f"B of {comparison_id}",
        "model_b": "m2",
        "source": "s",
        "category": "c",
        "subject_study": "x",
        "highest_level_degree": "y",
        "normal_worker_annotations": [mp_annotation(label) for label in crowd],
        "expert_worker_annotations": [mp_annotation(label) for label in experts],
    }


def hs2_record(prompt: str, response: str, helpfulness: list | None) -> dict:
    n = len(helpfulness or [0])
    return {
        "prompt": prompt,
        "response": response,
        "helpfulness": helpfulness,
        "correctness": [3] * n,
        "coherence": [3] * n,
        "complexity": [2] * n,
        "verbosity": [2] * n,
    }


# --- strength mappings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "strength"),
    [
        ("A-is-clearly-better", 2),
        ("A-is-slightly-better", 1),
        ("Tie", 0),
        ("B-is-slightly-better", -1),
        ("B-is-clearly-better", -2),
    ],
)
def test_multipref_strength_mapping(label, strength):
    assert MULTIPREF_STRENGTH[label] == strength


@pytest.mark.parametrize(
    ("diff", "thresholds", "strength"),
    [
        (0, (1, 2), 0),
        (1, (1, 2), 1),
        (-1, (1, 2), -1),
        (2, (1, 2), 2),
        (-3, (1, 2), -2),
        (4, (1, 2), 2),
        (2, (1, 3), 1),
        (-3, (1, 3), -2),
        (1, (2, 3), 0),
        (-2, (2, 3), -1),
    ],
)
def test_helpsteer2_strength_mapping(diff, thresholds, strength):
    assert helpsteer2_strength(diff, *thresholds) == strength
    expr = helpsteer2_strength_expr(pl.col("d"), *thresholds)
    assert pl.DataFrame({"d": [diff]}).select(expr).item() == strength


# --- MultiPref -----------------------------------------------------------------------------------


def test_multipref_long_table_by_hand(tmp_path):
    path = write_jsonl(
        tmp_path / "mp.jsonl",
        [
            mp_record("c1", ["A-is-clearly-better", "Tie"], ["B-is-slightly-better", "A-is-slightly-better"]),
            mp_record("c2", ["B-is-clearly-better", "B-is-clearly-better"], ["Tie", "B-is-slightly-better"]),
        ],
    )
    result = normalize_multipref(path)
    table = result.annotations
    assert table.columns == [
        "pair_id",
        "prompt",
        "response_a",
        "response_b",
        "annotator",
        "strength",
        "helpfulness_a",
        "helpfulness_b",
    ]
    assert table["pair_id"].to_list() == ["c1"] * 4 + ["c2"] * 4
    assert table["annotator"].to_list() == [0, 1, 2, 3] * 2  # crowdworkers first, then experts
    assert table["strength"].to_list() == [2, 0, -1, 1, -2, -2, 0, -1]
    assert table["strength"].dtype == pl.Int8
    assert table["response_b"][4] == "B of c2"
    assert table["helpfulness_a"].is_null().all()
    assert result.quality_report() == {
        "rows_in": 2,
        "rows_kept": 2,
        "rows_rejected": 0,
        "pairs": 2,
        "annotations": 8,
        "reasons": {},
    }


def test_multipref_parquet_and_gzip_give_the_same_table(tmp_path):
    records = [
        mp_record("c1", ["Tie", "Tie"], ["A-is-clearly-better", "Tie"]),
        mp_record("c2", ["B-is-clearly-better", "Tie"], ["Tie", "Tie"]),
    ]
    jsonl = normalize_multipref(write_jsonl(tmp_path / "mp.jsonl.gz", records)).annotations
    pl.DataFrame(records).write_parquet(tmp_path / "mp.parquet")
    parquet = normalize_multipref(tmp_path / "mp.parquet").annotations
    assert parquet.equals(jsonl)


def test_multipref_rejects_reconcile(tmp_path):
    path = write_jsonl(
        tmp_path / "mp.jsonl",
        [
            mp_record("c1", ["Tie", "Tie"], ["Tie", "Tie"]),
            mp_record("c1", ["Tie", "Tie"], ["Tie", "Tie"]),  # duplicate id
            mp_record("c2", ["Tie", None], ["Tie", "Tie"]),  # missing label
            mp_record("c3", [], []),  # no annotations
            {**mp_record("c4", ["Tie"], ["Tie"]), "completion_a": None},
            mp_record("c5", ["A-is-slightly-better"], []),  # fewer annotators is kept
        ],
    )
    result = normalize_multipref(path)
    assert result.rejects.rows() == [
        ("c1", "duplicate_comparison_id", "c1"),
        ("c2", "missing_overall_pref", "annotator 1"),
        ("c3", "no_annotations", ""),
        ("c4", "missing_text", "completion_a"),
    ]
    report = result.quality_report()
    assert (report["rows_in"], report["rows_kept"], report["rows_rejected"]) == (6, 2, 4)
    assert report["pairs"] == 2 and report["annotations"] == 5
    assert sum(report["reasons"].values()) == report["rows_rejected"]


# --- HelpSteer2 ----------------------------------------------------------------------------------


def test_helpsteer2_pairs_by_hand(tmp_path):
    path = write_jsonl(
        tmp_path / "disagreements.jsonl.gz",
        [
            hs2_record("p1", "r1", [4, 2, 3]),
            hs2_record("p1", "r2", [1, 2, 4]),
            hs2_record("p2", "x", [0, 4]),
            hs2_record("p2", "y", [1, 3]),
        ],
    )
    table = normalize_helpsteer2(path).annotations
    expected_id = hashlib.sha1(b"p1\x1fr1\x1fr2").hexdigest()[:16]
    assert table["pair_id"].to_list()[:3] == [expected_id] * 3
    assert table["annotator"].to_list() == [0, 1, 2, 0, 1]
    assert table["helpfulness_a"].to_list() == [4, 2, 3, 0, 4]
    assert table["helpfulness_b"].to_list() == [1, 2, 4, 1, 3]
    # d = 3, 0, -1, -1, 1
    assert table["strength"].to_list() == [2, 0, -1, -1, 1]
    assert table.filter(pl.col("prompt") == "p2")["response_a"].unique().to_list() == ["x"]


def test_helpsteer2_strength_thresholds_are_applied(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl", [hs2_record("p", "a", [4, 3, 2]), hs2_record("p", "b", [2, 2, 2])]
    )
    assert normalize_helpsteer2(path, 1, 3).annotations["strength"].to_list() == [1, 1, 0]


def test_helpsteer2_rejects_reconcile(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            hs2_record("ok", "a", [3, 3]),
            hs2_record("ok", "b", [1, 3]),  # kept
            hs2_record("three", "a", [3]),
            hs2_record("three", "b", [3]),  # kept: the first two rows of a 3-row run pair up
            hs2_record("three", "c", [3]),  # the odd row out
            hs2_record("single", "a", [3]),  # a lone prompt
            hs2_record("dup", "a", [3]),
            hs2_record("dup", "a", [3]),  # consecutive, same prompt: a pair (of two equal responses)
            hs2_record("dup", "b", [2]),  # the odd row out
            hs2_record("uneven", "a", [3, 3]),
            hs2_record("uneven", "b", [3, 3, 1]),
            hs2_record("missing", "a", None),  # a null list is an empty list
            hs2_record("missing", "b", [1]),
            {**hs2_record("x", "a", [1]), "prompt": None},
            hs2_record("Hi", "r1", [1, 2]),
            hs2_record("Hi", "r2", [2, 2]),  # a short prompt in several consecutive pairs: both kept
            hs2_record("Hi", "r3", [0, 4]),
            hs2_record("Hi", "r4", [4, 0]),
            hs2_record("Hi", "r1", [1, 2]),
            hs2_record("Hi", "r2", [2, 2]),  # the pair of rows 15-16 again
        ],
    )
    result = normalize_helpsteer2(path)
    assert result.rejects.rows() == [
        ("row 14", "missing_prompt", ""),
        ("row 5", "unpaired_row", "three"),
        ("row 6", "unpaired_row", "single"),
        ("row 9", "unpaired_row", "dup"),
        ("row 10", "unequal_annotator_counts", "2 vs 3"),
        ("row 11", "unequal_annotator_counts", "2 vs 3"),
        ("row 12", "unequal_annotator_counts", "0 vs 1"),
        ("row 13", "unequal_annotator_counts", "0 vs 1"),
        ("row 19", "duplicate_pair", f"{helpsteer2_pair_id('Hi', 'r1', 'r2')} (row 15)"),
        ("row 20", "duplicate_pair", f"{helpsteer2_pair_id('Hi', 'r1', 'r2')} (row 15)"),
    ]
    report = result.quality_report()
    assert (report["rows_in"], report["rows_kept"], report["rows_rejected"]) == (20, 10, 10)
    assert report["pairs"] == 5  # ok, three, dup, and the two "Hi" pairs
    hi_pairs = result.annotations.filter(pl.col("prompt") == "Hi")
    assert sorted(set(zip(hi_pairs["response_a"], hi_pairs["response_b"], strict=True))) == [
        ("r1", "r2"),
        ("r3", "r4"),
    ]
    assert report["reasons"] == {
        "unequal_annotator_counts": 4,
        "unpaired_row": 3,
        "duplicate_pair": 2,
        "missing_prompt": 1,
    }
    assert result.pair_row_keys[helpsteer2_pair_id("dup", "a", "a")] == ("row 7", "row 8")


def test_helpsteer2_null_and_empty_score_lists_behave_the_same(tmp_path):
    results = [
        normalize_helpsteer2(
            write_jsonl(
                tmp_path / f"{name}.jsonl", [hs2_record("p", "a", value), hs2_record("p", "b", value)]
            )
        )
        for name, value in (("null", None), ("empty", []))
    ]
    assert (
        results[0].rejects.rows()
        == results[1].rejects.rows()
        == [
            ("row 1", "no_annotations", ""),
            ("row 2", "no_annotations", ""),
        ]
    )


def _short_multipref(tmp_path, experts_of_c2):
    return write_jsonl(
        tmp_path / "mp.jsonl",
        [
            mp_record("c1", ["Tie", "Tie"], ["A-is-slightly-better", "Tie"]),
            {
                **mp_record("c2", ["B-is-clearly-better", "Tie"], []),
                "expert_worker_annotations": experts_of_c2,
            },
            mp_record("c3", ["Tie", "A-is-clearly-better"], ["Tie", "Tie"]),
        ],
    )


@pytest.mark.parametrize("experts", [None, []])
def test_fewer_annotators_are_reported_and_kept_by_default(tmp_path, experts):
    """A MultiPref row whose expert annotations are null (or empty) keeps 2 of 4 annotators: listed, not
    silent."""
    out = tmp_path / "out"
    report = normalize_to_files("multipref", _short_multipref(tmp_path, experts), *(out / n for n in OUTPUTS))
    assert report["usual_annotators"] == 4 and report["min_annotators"] is None
    assert report["pairs_with_fewer_annotators"] == 1
    assert report["fewer_annotator_pairs"] == [
        {"pair_id": "c2", "row_keys": ["c2"], "n_annotators": 2, "excluded": False}
    ]
    assert report["pairs"] == 3 and report["rows_rejected"] == 0


@pytest.mark.parametrize("experts", [None, []])
def test_min_annotators_excludes_with_a_reason(tmp_path, experts):
    out = tmp_path / "out"
    raw = _short_multipref(tmp_path, experts)
    report = normalize_to_files("multipref", raw, *(out / n for n in OUTPUTS), min_annotators=3)
    assert report["pairs"] == 2 and report["rows_rejected"] == 1 and report["rows_kept"] == 2
    assert report["reasons"] == {"too_few_annotators": 1}
    assert report["fewer_annotator_pairs"][0]["excluded"] is True
    rejects = pl.read_csv(out / "rejects.csv")
    assert rejects.rows() == [("c2", "too_few_annotators", "2 of 4 annotators (min_annotators 3)")]
    assert "c2" not in pl.read_parquet(out / "annotations.parquet")["pair_id"].to_list()


def test_min_annotators_lists_both_helpsteer2_rows(tmp_path):
    from divpref.data.annotator_counts import apply_min_annotators, usual_annotator_count

    raw = write_jsonl(
        tmp_path / "d.jsonl",
        [
            hs2_record("p", "a", [1, 2, 3]),
            hs2_record("p", "b", [2, 2, 2]),
            hs2_record("q", "a", [1, 2, 3]),
            hs2_record("q", "b", [0, 2, 4]),
            hs2_record("r", "a", [4, 1]),
            hs2_record("r", "b", [1, 4]),
        ],
    )
    result = apply_min_annotators(normalize_helpsteer2(raw), 3)
    assert result.rejects.rows() == [
        ("row 5", "too_few_annotators", "2 of 3 annotators (min_annotators 3)"),
        ("row 6", "too_few_annotators", "2 of 3 annotators (min_annotators 3)"),
    ]
    report = result.quality_report()
    assert report["rows_in"] == report["rows_kept"] + report["rows_rejected"] == 6
    assert usual_annotator_count([3, 4, 4, 3]) == 4 and usual_annotator_count([]) is None
    with pytest.raises(ValueError, match="min_annotators"):
        apply_min_annotators(normalize_helpsteer2(raw), 0)


def test_multipref_numeric_ids_become_strings(tmp_path):
    raw = write_jsonl(tmp_path / "mp.jsonl", [{**mp_record("x", ["Tie"], ["Tie"]), "comparison_id": 17}])
    assert normalize_multipref(raw).annotations["pair_id"].to_list() == ["17", "17"]
