"""Rows lost to HelpSteer2 pairing: the old rule (group by prompt, a prompt needs exactly two rows) vs the new
rule (consecutive same-prompt rows pair up), at full size (11,826 pairs = 23,652 rows).

Data sets, each written as a ``disagreements.jsonl.gz``-layout file and normalized by both rules:

1. the benchmark generator of bench/bench_divergence.py (one prompt per pair, ``prompt N``);
2. the embedded sample generator (divpref.synthetic.sample.generate_helpsteer2), which makes every prompt
   unique;
3. the sample generator without that uniqueness step: its scenario prompts repeat as short real prompts do
   (a prompt in several consecutive pairs);
4. file 2 with real-looking short repeats: every 50th pair and the pair after it get the prompt "Hi" (so "Hi"
   heads 2-pair runs all through the file, as a greeting shared by unrelated conversations would); their
   responses get the pair number appended, so that template texts of the generator do not make two "Hi" pairs
   identical (that would be a duplicate pair, not a pairing question).

    .venv/bin/python bench/bench_pairing.py
"""

import sys
import tempfile
from collections import Counter
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_divergence import FULL_SIZE, synthetic_annotations

from divpref.data.helpsteer2 import normalize_helpsteer2
from divpref.synthetic import sample
from divpref.synthetic.sample import write_jsonl_gz

N_PAIRS = FULL_SIZE["helpsteer2"][0]


def old_rule_rows_kept(records: list[dict]) -> int:
    """The pre-fix rule: drop repeated (prompt, response) rows, then keep prompts with exactly two rows."""
    seen, per_prompt = set(), Counter()
    for record in records:
        key = (record["prompt"], record["response"])
        if key not in seen:
            seen.add(key)
            per_prompt[record["prompt"]] += 1
    return sum(count for count in per_prompt.values() if count == 2)


def from_bench_generator() -> list[dict]:
    frame = synthetic_annotations(N_PAIRS, FULL_SIZE["helpsteer2"][1], seed=0)
    records = []
    for (pair_id,), group in frame.group_by("pair_id", maintain_order=True):
        n = group.height
        prompt = group["prompt"][0]
        records.append({"prompt": prompt, "response": f"a of {pair_id}", "helpfulness": [2] * n})
        records.append({"prompt": prompt, "response": f"b of {pair_id}", "helpfulness": [3] * n})
    return records


def from_sample(unique_prompts: bool) -> list[dict]:
    if unique_prompts:
        return sample.generate_helpsteer2(N_PAIRS, 13).records
    with mock.patch.object(sample, "_unique_prompt", lambda prompt, used, rng: prompt):
        return sample.generate_helpsteer2(N_PAIRS, 13).records


def with_hi_runs(records: list[dict]) -> list[dict]:
    out = [dict(record) for record in records]
    for pair in range(0, N_PAIRS - 1, 50):
        for row in (2 * pair, 2 * pair + 1, 2 * pair + 2, 2 * pair + 3):
            out[row]["prompt"] = "Hi"
            out[row]["response"] += f" (pair {row // 2})"
    return out


def main() -> None:
    sets = {
        "bench generator (unique prompts)": from_bench_generator(),
        "sample generator (unique prompts)": from_sample(True),
        "sample generator, prompts as generated": from_sample(False),
        'sample generator + "Hi" 2-pair runs': with_hi_runs(from_sample(True)),
    }
    print(f"{'data':42s} {'rows':>7s} {'old kept':>9s} {'new kept':>9s} {'old lost':>9s} {'new lost':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, records in sets.items():
            path = Path(tmp) / "disagreements.jsonl.gz"
            write_jsonl_gz(records, path)
            report = normalize_helpsteer2(path).quality_report()
            old_kept = old_rule_rows_kept(records)
            print(
                f"{name:42s} {len(records):7d} {old_kept:9d} {report['rows_kept']:9d} "
                f"{len(records) - old_kept:9d} {report['rows_rejected']:9d}  new reasons: {report['reasons']}"
            )


if __name__ == "__main__":
    main()
