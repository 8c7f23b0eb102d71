"""The generic long format: reading all four file types, errors that name file/pair_id/value, rejects,
capability."""

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from divpref.data.agreement import classify_pairs
from divpref.data.formats import dataset_format, dataset_has_scores, header_columns
from divpref.data.longformat import normalize_long
from divpref.data.normalize import normalize_file
from divpref.data.records import InputDataError

TINY = Path(__file__).parent / "data" / "own_tiny.csv"

# Hand-worked from tests/data/own_tiny.csv (SPEC's categories; annotators renumbered in file order per pair).
EXPECTED_STRENGTHS = {
    "p1": [2, -1, 1],  # A and B both chosen, one |s| = 2: diverging, no -2 so not substantial
    "p2": [2, -2, 0],  # +2 and -2: diverging, substantial
    "p3": [0, 0, 1],  # ties are the plurality
    "p4": [1, 2, 2],  # all A
    "p5": [1, -1, 0],  # A and B, but only slight: other
    "p6": [-2, -1, -1, 0],  # all B or tie (ann-x's second row is a duplicate, rejected)
    "p7": [-1, -2],  # ann-y's empty strength and the annotator-less row are rejected
}
EXPECTED_AGREEMENT = {
    "p1": "diverging",
    "p2": "diverging",
    "p3": "high_agreement_tie",
    "p4": "high_agreement_pref",
    "p5": "other",
    "p6": "high_agreement_pref",
    "p7": "high_agreement_pref",
}
EXPECTED_REJECTS = {
    "row 18": "duplicate_annotation",
    "row 22": "missing_strength",
    "row 24": "missing_annotator",
}


def tiny_rows() -> list[dict]:
    frame = pl.read_csv(TINY, schema_overrides={"annotator": pl.String})
    return frame.to_dicts()


def write(path: Path, rows: list[dict]) -> Path:
    if path.name.endswith(".parquet"):
        pl.DataFrame(rows).write_parquet(path)
    elif path.name.endswith(".csv"):
        pl.DataFrame(rows).write_csv(path)
    else:
        text = "".join(json.dumps(row) + "\n" for row in rows)
        path.write_bytes(gzip.compress(text.encode()) if path.name.endswith(".gz") else text.encode())
    return path


def test_tiny_file_hand_worked_strengths_categories_and_rejects():
    normalized = normalize_long(TINY)
    strengths = {
        pair_id: group.sort("annotator")["strength"].to_list()
        for (pair_id,), group in normalized.annotations.group_by("pair_id", maintain_order=True)
    }
    assert strengths == EXPECTED_STRENGTHS
    assert list(strengths) == [f"p{i}" for i in range(1, 8)]  # pairs in order of first appearance
    rejects = dict(zip(normalized.rejects["row_key"], normalized.rejects["reason"], strict=True))
    assert rejects == EXPECTED_REJECTS
    report = normalized.quality_report()
    assert (report["rows_in"], report["rows_kept"], report["rows_rejected"]) == (24, 21, 3)
    assert report["rows_in"] == report["rows_kept"] + report["rows_rejected"]
    assert report["annotations"] == 21 and report["pairs"] == 7
    p6 = normalized.annotations.filter(pl.col("pair_id") == "p6").sort("annotator")
    assert p6["helpfulness_a"].to_list() == [0, 1, 1, 2] and p6["helpfulness_b"].to_list() == [4, 2, 3, 2]
    pairs = classify_pairs(normalized.annotations)
    assert dict(zip(pairs["pair_id"], pairs["agreement"], strict=True)) == EXPECTED_AGREEMENT
    assert dict(zip(pairs["pair_id"], pairs["substantial"], strict=True))["p2"] is True


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet", ".csv"])
def test_every_file_type_gives_the_same_table(tmp_path, suffix):
    rows = [row for row in tiny_rows() if row["annotator"] is not None and row["strength"] is not None]
    reference = normalize_long(write(tmp_path / "ref.csv", rows))
    other = normalize_long(write(tmp_path / f"data{suffix}", rows))
    assert other.annotations.equals(reference.annotations)
    assert other.rejects.height == reference.rejects.height == 1  # the duplicate annotation


def test_without_score_columns_scores_are_null_and_not_required(tmp_path):
    rows = [{k: v for k, v in row.items() if k not in ("score_a", "score_b")} for row in tiny_rows()]
    path = write(tmp_path / "noscores.jsonl", rows)
    normalized = normalize_long(path)
    assert normalized.annotations["helpfulness_a"].null_count() == normalized.annotations.height
    with pytest.raises(InputDataError, match=r"noscores\.jsonl.*expects Likert scores.*score_a"):
        normalize_long(path, use_scores=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strength": 3}, r"bad\.csv: row 2 \(pair_id='p2'\): strength '3' is not an integer in -2\.\.2"),
        ({"strength": "1.5"}, r"bad\.csv: row 2 \(pair_id='p2'\): strength '1\.5' is not an integer"),
        (
            {"response_b": "Maybe."},
            r"bad\.csv: row 2 \(pair_id='p2'\): response_b differs .*'Maybe\.' vs 'No\.'",
        ),
        ({"score_a": "high"}, r"bad\.csv: row 2 \(pair_id='p2'\): score_a 'high' is not an integer"),
    ],
)
def test_bad_values_name_file_pair_and_value(tmp_path, change, message):
    rows = [
        {
            "pair_id": "p2",
            "prompt": "Is 7 prime?",
            "response_a": "Yes.",
            "response_b": "No.",
            "annotator": "a",
            "strength": 2,
            "score_a": 4,
            "score_b": 0,
        },
    ]
    rows.append({**rows[0], "annotator": "b", **change})
    rows = [{key: str(value) for key, value in row.items()} for row in rows]
    with pytest.raises(InputDataError, match=message):
        normalize_long(write(tmp_path / "bad.csv", rows))


def test_missing_column_is_named(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "annotator"} for row in tiny_rows()]
    with pytest.raises(
        InputDataError, match=r"m\.parquet: row 1 \(pair_id='p1'\): missing column 'annotator'"
    ):
        normalize_long(write(tmp_path / "m.parquet", rows))


def test_normalize_dispatches_on_format_not_name():
    assert normalize_file("anything", TINY, fmt="long").annotations.height == 21


def test_capability_from_format_header_or_declaration(tmp_path):
    assert dataset_format("multipref", {"source": "hub"}) == "multipref"
    with pytest.raises(ValueError, match=r"datasets\.prism\.format: required"):
        dataset_format("prism", {"source": "x.csv"})
    assert not dataset_has_scores("multipref", {"source": "hub"})
    assert dataset_has_scores("helpsteer2", {"source": "hub"})
    assert dataset_has_scores("own", {"source": str(TINY), "format": "long"})
    assert header_columns(TINY)[-2:] == ["score_a", "score_b"]
    plain = write(tmp_path / "plain.jsonl.gz", [{"pair_id": "p", "strength": 1}])
    assert not dataset_has_scores("own", {"source": str(plain), "format": "long"})
    assert not dataset_has_scores("own", {"source": str(TINY), "format": "long", "scores": False})
    with pytest.raises(ValueError, match=r"datasets\.later\.scores: .*does not exist yet.*declare"):
        dataset_has_scores("later", {"source": str(tmp_path / "later.csv"), "format": "long"})
    with pytest.raises(ValueError, match=r"datasets\.multipref\.scores: True contradicts"):
        dataset_has_scores("multipref", {"source": "hub", "scores": True})
