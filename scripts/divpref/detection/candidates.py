"""Every candidate divergence score of a classifier run, side by side: dev and test AUROC per candidate.

The detection table shows the score a run used (``detection.classification_score`` or the dev choice); this
shows what each candidate would have given, for the README's comparison of the readings of the paper's
Classification (KL) score. Usage, from a finished run's working directory::

    python -m divpref.detection.candidates helpsteer2 likert_classification-all [--seed 0] [--results results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from divpref.detection.scores import (
    CANDIDATE_SCORES,
    divergence_auroc,
    divergence_scores,
    join_dev_scores,
    join_method_scores,
)


def candidate_aurocs(method: str, dev: pl.DataFrame, test: pl.DataFrame) -> pl.DataFrame:
    """``score_name, formula, dev_auroc, test_auroc`` per candidate of ``method``, in tie-break order.

    ``dev`` and ``test`` are pairs (``agreement``) joined with the method's score columns.
    """
    if method not in CANDIDATE_SCORES:
        raise ValueError(
            f"method {method!r} has no candidate scores; candidates exist for {list(CANDIDATE_SCORES)}"
        )
    rows = [
        {
            "score_name": name,
            "formula": formula,
            "dev_auroc": divergence_auroc(dev["agreement"], divergence_scores(method, dev, None, name)),
            "test_auroc": divergence_auroc(test["agreement"], divergence_scores(method, test, None, name)),
        }
        for name, formula in CANDIDATE_SCORES[method].items()
    ]
    return pl.DataFrame(rows)


def run_candidates(results: Path, dataset: str, condition: str, method: str, seed: int) -> pl.DataFrame:
    """:func:`candidate_aurocs` of one run from its files under ``results``."""
    pairs = pl.read_parquet(results / dataset / "pairs.parquet")
    test_pairs = pl.read_parquet(results / dataset / "test.parquet")
    test_file = results / "scores" / dataset / condition / f"seed{seed}.parquet"
    dev_file = results / "scores_dev" / dataset / condition / f"seed{seed}.parquet"
    test = join_method_scores(test_pairs, pl.read_parquet(test_file), method, str(test_file))
    dev = join_dev_scores(pairs, pl.read_parquet(dev_file), method, str(dev_file))
    return candidate_aurocs(method, dev, test)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("condition")
    parser.add_argument("--method", default="likert_classification", choices=sorted(CANDIDATE_SCORES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    table = run_candidates(args.results, args.dataset, args.condition, args.method, args.seed)
    print(f"{args.dataset}/{args.condition} seed {args.seed}: divergence AUROC per candidate score")
    for row in table.iter_rows(named=True):
        aurocs = f"dev {row['dev_auroc']:.3f}  test {row['test_auroc']:.3f}"
        print(f"  {row['score_name']:<15} {aurocs}  ({row['formula']})")


if __name__ == "__main__":
    main()
