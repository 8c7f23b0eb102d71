"""Write demo/flag_example.jsonl: the demo's MultiPref-like test pairs (pair_id and texts only).

Run after the demo's data stage, from the workflow directory:
    snakemake --profile profiles/demo results/multipref/test.parquet && python demo/make_flag_example.py
tests/test_flagging.py checks that the shipped file equals what this writes for the demo config.
"""

import json
import sys
from pathlib import Path

import polars as pl

COLUMNS = ("pair_id", "prompt", "response_a", "response_b")


def example_lines(test: pl.DataFrame) -> str:
    """One JSON object per test pair, in test order (sorted keys, UTF-8 kept)."""
    rows = test.select(COLUMNS).iter_rows(named=True)
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "results/multipref/test.parquet")
    target = Path(__file__).with_name("flag_example.jsonl")
    target.write_text(example_lines(pl.read_parquet(source)), encoding="utf-8")
    print(f"{target}: {pl.read_parquet(source).height} pairs from {source}")
