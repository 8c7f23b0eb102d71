"""The mitigation as an output: each flag set's cleaned file, the unflagged rows of Table 2, mitigation.md."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from divpref.evaluation.metrics import ScoredRun
from divpref.evaluation.table2 import render_markdown, table2_long
from divpref.flagging.flags import (
    UNFLAGGED,
    check_clean_count,
    clean_extension,
    read_pair_file,
    unflagged_test_mask,
    write_clean_set,
)
from divpref.flagging.mitigation import before_after_counts, render_mitigation

ROWS = [
    {
        "zeta": 1,
        "pair_id": "p0",
        "prompt": "hi",
        "response_a": "hello",
        "response_b": 'two\nlines, "q"',
        "note": "",
    },
    {"zeta": 2, "pair_id": "p1", "prompt": "why", "response_a": "because", "response_b": "", "note": "x"},
    {"zeta": 3, "pair_id": "p2", "prompt": "how", "response_a": "so", "response_b": "thus", "note": None},
]
FLAGGED = [False, True, False]


def _write(path: Path) -> Path:
    frame = pl.DataFrame(ROWS)
    if path.suffix == ".jsonl":
        # Unsorted keys, a blank line, Windows line ends: the cleaned file keeps the kept lines as they are.
        path.write_bytes(b"\r\n".join(json.dumps(row).encode() for row in ROWS[:2]) + b"\r\n\r\n")
        with path.open("a", encoding="utf-8", newline="") as stream:
            stream.write(json.dumps(ROWS[2]))  # no final line end
    elif path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_the_cleaned_set_keeps_the_unflagged_rows_in_the_sets_format_and_columns(tmp_path, suffix):
    source = _write(tmp_path / f"set{suffix}")
    target = tmp_path / f"clean{suffix}"
    assert clean_extension(source) == suffix[1:]
    assert write_clean_set(source, FLAGGED, target) == 2
    kept = [row for row, flagged in zip(ROWS, FLAGGED, strict=True) if not flagged]
    if suffix == ".jsonl":
        lines = target.read_bytes().splitlines(keepends=True)
        assert lines == [json.dumps(ROWS[0]).encode() + b"\r\n", json.dumps(ROWS[2]).encode() + b"\n"]
        assert [list(json.loads(line)) for line in lines] == [list(ROWS[0])] * 2  # original key order
    elif suffix == ".parquet":
        clean = pl.read_parquet(target)
        assert clean.schema == pl.read_parquet(source).schema
        assert clean.to_dicts() == kept
    else:
        clean = pl.read_csv(target, infer_schema=False)
        assert clean.columns == list(ROWS[0])
        original = pl.read_csv(source, infer_schema=False)
        assert clean.to_dicts() == original.filter(pl.Series(np.invert(FLAGGED))).to_dicts()
    # Still a valid pair file, with the kept pairs.
    assert read_pair_file(target)["pair_id"].to_list() == ["p0", "p2"]


def test_the_cleaned_set_refuses_flags_that_do_not_fit_the_file(tmp_path):
    source = _write(tmp_path / "set.csv")
    with pytest.raises(ValueError, match=r"set\.csv: 3 rows but 2 flags"):
        write_clean_set(source, [False, True], tmp_path / "clean.csv")
    with pytest.raises(ValueError, match=r"unsupported pair-file format '\.tsv'"):
        clean_extension("pairs.tsv")


def test_the_clean_count_must_add_up_to_the_set():
    summary = {"n_pairs": 3, "n_flagged": 1, "n_clean": 2}
    check_clean_count(summary, 2, "c.jsonl")
    with pytest.raises(ValueError, match=r"c\.jsonl: the cleaned file has 1 rows, but the set has 3 pairs"):
        check_clean_count(summary, 1, "c.jsonl")


def test_unflagged_test_pairs_are_those_below_the_threshold_in_test_order():
    # BT's divergence score is -|r_A - r_B|: flagged when the gap is at most 0.5.
    record = {"method": "bt", "lambda": None, "score_name": None, "threshold": -0.5}
    scores = pl.DataFrame(
        {"pair_id": ["t2", "t0", "t1"], "reward_a": [0.0, 1.0, 0.2], "reward_b": [3.0, 0.1, 0.0]}
    )
    test = pl.DataFrame({"pair_id": ["t0", "t1", "t2"]})
    assert unflagged_test_mask(record, scores, "s.parquet", test).tolist() == [True, False, True]
    with pytest.raises(ValueError, match=r"s\.parquet: test pair_id 't9' has no score"):
        unflagged_test_mask(record, scores, "s.parquet", pl.DataFrame({"pair_id": ["t0", "t9"]}))


# --- the unflagged rows of Table 2 ------------------------------------------------------------------------


def scored_run(seed: int, reward_a, reward_b) -> ScoredRun:
    pairs = pl.DataFrame(
        {
            "pair_id": ["p0", "p1", "p2", "p3"],
            "agreement": ["diverging", "high_agreement_pref", "high_agreement_tie", "diverging"],
            "substantial": [True, False, False, False],
            "chosen": ["a", "a", "b", "b"],
            "reward_a": reward_a,
            "reward_b": reward_b,
        }
    )
    return ScoredRun("multipref", "mse", "agg", seed, pairs)


def test_table2_adds_the_unflagged_subset_after_table2s_own():
    run = scored_run(0, [1.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.5, 2.0])
    unflagged = np.array([True, True, False, False])
    table = table2_long(
        [run], n_samples=20, ci=0.9, seed=0, extra_subsets={"multipref": {UNFLAGGED: unflagged}}
    )
    rows = table.filter(metric="abs_margin")
    assert rows["subset"].to_list()[-1] == UNFLAGGED
    row = rows.filter(subset=UNFLAGGED)
    assert row["n"][0] == 2 and row["value"][0] == pytest.approx((1.0 + 3.0) / 2)
    assert "Unflagged (mitigation)" in render_markdown(table, ci=0.9)
    with pytest.raises(ValueError, match="has 3 flags for 4 pairs"):
        table2_long(
            [run], n_samples=5, ci=0.9, seed=0, extra_subsets={"multipref": {UNFLAGGED: unflagged[:3]}}
        )


# --- mitigation.md --------------------------------------------------------------------------------------


def test_before_after_counts_by_hand():
    agreement = ["diverging", "diverging", "high_agreement_pref", "high_agreement_tie", "other"]
    counts = before_after_counts(agreement, [False, True, False, True, True])
    assert counts["before"] == {"pairs": 5, "diverging": 2, "diverging_share": 0.4, "high_agreement": 2}
    assert counts["after"] == {"pairs": 3, "diverging": 1, "diverging_share": 1 / 3, "high_agreement": 1}


def test_mitigation_markdown_sets_before_and_after_side_by_side():
    counts = before_after_counts(["diverging", "high_agreement_pref", "other"], [False, False, True])
    judge = pl.DataFrame(
        {
            "dataset": ["multipref"] * 2,
            "judge": ["j"] * 2,
            "subset": ["all", UNFLAGGED],
            "n": [3, 1],
            "winner_rate": [2 / 3, 1.0],
            "ci_low": [0.0, 1.0],
            "ci_high": [1.0, 1.0],
        }
    )
    run = scored_run(0, [1.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.5, 2.0])
    table2 = table2_long(
        [run],
        n_samples=10,
        ci=0.9,
        seed=0,
        extra_subsets={"multipref": {UNFLAGGED: np.array([1, 1, 0, 0], bool)}},
    )
    summary = {
        "set": "s",
        "n_pairs": 3,
        "n_flagged": 2,
        "n_clean": 1,
        "clean_file": "results/flags/s.clean.jsonl",
        "labelled_test_pairs": {"test_pairs_matched": 3, "test_pairs_of_dataset": 3},
    }
    text = render_mitigation("multipref", counts, judge=judge, table2=table2, summaries=[summary], ci=0.9)
    assert "| Diverging pairs (share of the set) | 1 of 3 (33.3%) | 0 of 1 (0.0%) |" in text
    assert "**1 of the 1 high-agreement pairs lost**" in text
    assert "| j | 66.7% [0.0%, 100.0%] (3) | 100.0% [100.0%, 100.0%] (1) |" in text
    assert "| MP MSE-Agg | abs_margin | 1.625 [" in text and "| 2.000 [" in text  # (1+3+.5+2)/4, (1+3)/2
    assert "`results/flags/s.clean.jsonl` (1) | 3 (the test set) |" in text


# --- the DAG: the flag sets' cleaned files and mitigation.md on the CI-size config ------------------------


def test_ci_dag_writes_each_sets_cleaned_file_and_the_mitigation_table(ci_run: Path):
    for name, source, reader in (
        ("ci_test", ci_run / "results/multipref/test.parquet", pl.read_parquet),
        ("demo_example", ci_run / "demo/flag_example.jsonl", pl.read_ndjson),
    ):
        summary = json.loads((ci_run / f"results/flags/{name}.json").read_text())
        clean_path = ci_run / summary["clean_file"]
        assert summary["clean_file"] == f"results/flags/{name}.clean.{source.suffix[1:]}"
        flags = pl.read_parquet(ci_run / f"results/flags/{name}.parquet")
        clean, original = reader(clean_path), reader(source)
        assert clean.columns == original.columns
        assert clean.height == summary["n_clean"] == summary["n_pairs"] - summary["n_flagged"]
        assert clean.height + summary["n_flagged"] == original.height
        assert clean.to_dicts() == original.filter(~flags["flagged"]).to_dicts()
    markdown = (ci_run / "results/tables/mitigation.md").read_text()
    test = pl.read_parquet(ci_run / "results/multipref/test.parquet")
    flags = pl.read_parquet(ci_run / "results/flags/ci_test.parquet")
    left = test.filter(~flags["flagged"])
    assert f"| Pairs | {test.height} | {left.height} |" in markdown
    assert "tiny-llama" in markdown and "MP BT-Agg" in markdown and "(the test set)" in markdown
    table2 = pl.read_csv(ci_run / "results/tables/table2.csv", schema_overrides={"seed": pl.String})
    unflagged = table2.filter(subset=UNFLAGGED)
    assert set(unflagged["dataset"]) == {"multipref"} and set(unflagged["n"]) == {left.height}
