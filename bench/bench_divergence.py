"""Benchmark: vectorized divergence classification vs the row-by-row reference, at the datasets' full size.

Generates synthetic annotations shaped like the real data (MultiPref: 10,461 pairs x 4 annotators; HelpSteer2:
11,826 pairs x 3-5 annotators), checks both implementations agree, and prints both times and the ratio.

    .venv/bin/python bench/bench_divergence.py [--repeats 15] [--seed 0]
"""

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
# The row-by-row reference is a test oracle, kept in tests/ rather than in the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from agreement_reference import classify_pairs_reference

from divpref.data.agreement import classify_pairs

FULL_SIZE = {"multipref": (10_461, (4,)), "helpsteer2": (11_826, (3, 4, 5))}


def synthetic_annotations(n_pairs: int, annotator_counts: tuple[int, ...], seed: int) -> pl.DataFrame:
    """Long annotation table with a per-pair lean, so every agreement category occurs."""
    rng = np.random.default_rng(seed)
    counts = rng.choice(annotator_counts, size=n_pairs)
    pair_index = np.repeat(np.arange(n_pairs), counts)
    lean = rng.normal(0.0, 1.2, size=n_pairs)[pair_index]
    strengths = np.clip(np.rint(lean + rng.normal(0.0, 1.0, size=pair_index.size)), -2, 2).astype(np.int8)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    pair_ids = np.char.add("pair-", pair_index.astype(str))
    return pl.DataFrame(
        {
            "pair_id": pair_ids,
            "prompt": np.char.add("prompt ", pair_index.astype(str)),
            "response_a": "response a",
            "response_b": "response b",
            "annotator": np.arange(pair_index.size) - starts,
            "strength": strengths,
            "helpfulness_a": pl.Series([None] * pair_index.size, dtype=pl.Int64),
            "helpfulness_b": pl.Series([None] * pair_index.size, dtype=pl.Int64),
        }
    )


def best_time(function, repeats: int) -> tuple[float, pl.DataFrame]:
    """Fastest wall time of ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"polars threads: {pl.thread_pool_size()}")
    print(
        f"{'dataset':<11} {'pairs':>6} {'annotations':>11} {'vectorized_s':>12} {'reference_s':>11} "
        f"{'ratio':>7}"
    )
    for dataset, (n_pairs, counts) in FULL_SIZE.items():
        annotations = synthetic_annotations(n_pairs, counts, args.seed)
        fast, vectorized = best_time(partial(classify_pairs, annotations), args.repeats)
        slow, reference = best_time(partial(classify_pairs_reference, annotations), args.repeats)
        if not vectorized.select(reference.columns).equals(reference):
            raise SystemExit(f"{dataset}: vectorized and reference classifications differ")
        print(
            f"{dataset:<11} {n_pairs:>6} {annotations.height:>11} {fast:>12.4f} {slow:>11.4f} "
            f"{slow / fast:>6.1f}x"
        )
        shares = vectorized["agreement"].value_counts(normalize=True, sort=True)
        print("            categories: " + ", ".join(f"{c} {p:.0%}" for c, p in shares.iter_rows()))


if __name__ == "__main__":
    main()
