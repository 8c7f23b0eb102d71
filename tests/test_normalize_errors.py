"""Normalize stage, schema-level errors: the message names the file, row and value; nothing is written."""

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from test_normalize import OUTPUTS, hs2_record, mp_record, write_jsonl

from divpref.data.normalize import normalize_to_files
from divpref.data.records import InputDataError


def run_to_files(dataset: str, raw: Path, out: Path) -> dict:
    return normalize_to_files(dataset, raw, *(out / name for name in OUTPUTS))


def assert_fails_cleanly(dataset: str, raw: Path, out: Path, *fragments: str) -> None:
    with pytest.raises(InputDataError) as info:
        run_to_files(dataset, raw, out)
    message = str(info.value)
    assert str(raw) in message
    for fragment in fragments:
        assert fragment in message
    assert not out.exists() or not any(out.iterdir())


def test_missing_column_names_file_row_and_column(tmp_path):
    record = mp_record("c7", ["Tie"], ["Tie"])
    del record["completion_b"]
    raw = write_jsonl(tmp_path / "mp.jsonl", [mp_record("c6", ["Tie"], ["Tie"]), record])
    assert_fails_cleanly("multipref", raw, tmp_path / "out", "row 2", "c7", "'completion_b'")


def test_missing_helpsteer2_column(tmp_path):
    record = hs2_record("p", "a", [1])
    del record["helpfulness"]
    raw = write_jsonl(tmp_path / "d.jsonl", [record])
    assert_fails_cleanly("helpsteer2", raw, tmp_path / "out", "row 1", "'helpfulness'")


def test_unknown_overall_pref_names_row_and_value(tmp_path):
    raw = write_jsonl(tmp_path / "mp.jsonl", [mp_record("c9", ["Tie", "A-is-much-better"], ["Tie", "Tie"])])
    assert_fails_cleanly("multipref", raw, tmp_path / "out", "comparison_id=c9", "'A-is-much-better'")


def test_truncated_gzip(tmp_path):
    full = write_jsonl(tmp_path / "full.jsonl.gz", [mp_record(f"c{i}", ["Tie"], ["Tie"]) for i in range(200)])
    raw = tmp_path / "truncated.jsonl.gz"
    raw.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert_fails_cleanly("multipref", raw, tmp_path / "out", "truncated or corrupt gzip", "after row")


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.jsonl.gz", "empty.parquet"])
def test_empty_file(tmp_path, name):
    raw = tmp_path / name
    raw.write_bytes(b"")
    assert_fails_cleanly("helpsteer2", raw, tmp_path / "out", "empty")


def test_gzip_without_records(tmp_path):
    raw = tmp_path / "blank.jsonl.gz"
    raw.write_bytes(gzip.compress(b"\n\n"))
    assert_fails_cleanly("helpsteer2", raw, tmp_path / "out", "no records")


def test_invalid_json_line(tmp_path):
    raw = tmp_path / "d.jsonl"
    raw.write_text(json.dumps(hs2_record("p", "a", [1])) + "\n{not json\n")
    assert_fails_cleanly("helpsteer2", raw, tmp_path / "out", "row 2", "invalid JSON", "{not json")


@pytest.mark.parametrize("bad", [5, -1, "3", 2.5, True])
def test_score_off_the_scale(tmp_path, bad):
    raw = write_jsonl(tmp_path / "d.jsonl", [hs2_record("p", "a", [1]), hs2_record("p", "b", [2, bad])])
    assert_fails_cleanly("helpsteer2", raw, tmp_path / "out", "row 2", repr(bad))


def test_good_input_writes_all_three_outputs(tmp_path):
    raw = write_jsonl(
        tmp_path / "d.jsonl",
        [hs2_record("p", "a", [1, 4]), hs2_record("p", "b", [2, 2]), hs2_record("q", "a", [1])],
    )
    report = run_to_files("helpsteer2", raw, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUTS)
    assert json.loads((tmp_path / "out" / "data_quality.json").read_text()) == report
    assert report["rows_in"] == report["rows_kept"] + report["rows_rejected"] == 3
    rejects = pl.read_csv(tmp_path / "out" / "rejects.csv")
    assert rejects.rows() == [("row 3", "unpaired_row", "q")]
    assert pl.read_parquet(tmp_path / "out" / "annotations.parquet")["strength"].to_list() == [-1, 2]
