"""Regenerate demo/long_example.jsonl.gz, the example dataset in the generic long format (README).

Synthetic, like the embedded sample: HelpSteer2-like pairs of divpref.synthetic.sample (seed 29) written one
row per annotation, with string annotator ids, integer Likert scores, and the rows shuffled (a pair's rows
need not be adjacent). Two rows are made excludable on purpose (an empty strength, a repeated annotator), so
the demo's rejects.csv shows the reasons. Run: PYTHONPATH=scripts python demo/make_long_example.py
"""

import gzip
import json
import random
import tempfile
from pathlib import Path

from divpref.data.helpsteer2 import normalize_helpsteer2
from divpref.synthetic.sample import generate_helpsteer2, write_jsonl_gz

TARGET = Path(__file__).with_name("long_example.jsonl.gz")
N_PAIRS, SEED = 500, 29


def main() -> None:
    tables = generate_helpsteer2(N_PAIRS, SEED)
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "hs2.jsonl.gz"
        write_jsonl_gz(tables.records, raw)
        annotations = normalize_helpsteer2(raw).annotations
    pair_ids = {key: f"ex-{index:04d}" for index, key in enumerate(dict.fromkeys(annotations["pair_id"]))}
    rows = [
        {
            "pair_id": pair_ids[row["pair_id"]],
            "prompt": row["prompt"],
            "response_a": row["response_a"],
            "response_b": row["response_b"],
            "annotator": f"rater-{row['annotator'] + 1}",
            "strength": row["strength"],
            "score_a": row["helpfulness_a"],
            "score_b": row["helpfulness_b"],
        }
        for row in annotations.iter_rows(named=True)
    ]
    rng = random.Random(SEED)
    rng.shuffle(rows)
    rows.append({**rows[0], "strength": None})  # excluded: missing_strength
    rows.append(dict(rows[1]))  # excluded: duplicate_annotation
    with gzip.GzipFile(TARGET, "wb", mtime=0) as raw_stream:
        for row in rows:
            raw_stream.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    print(f"{TARGET}: {len(rows)} rows, {len(pair_ids)} pairs")


if __name__ == "__main__":
    main()
