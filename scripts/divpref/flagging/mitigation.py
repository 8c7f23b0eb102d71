"""The mitigation, before and after: the flag dataset's test pairs with and without the flagged ones.

``results/tables/mitigation.md`` sets side by side, for all test pairs of the flag dataset ("before") and for
the ``unflagged`` ones ("after", the cleaned test set):

* the test set itself: pairs, the share of diverging pairs left, and how many high-agreement pairs
  (``high_agreement_pref`` and ``high_agreement_tie``) the flags removed;
* each judge's winner rate (``judge.csv``'s ``all`` and ``unflagged`` rows);
* each reward model's Table 2 metric (``table2.csv``'s ``all`` and ``unflagged`` rows: BT and pretrained
  ``p_model_chosen``, MSE ``abs_margin``; the pooled seed where there are several);
* every flag set: its rows, flagged rows, cleaned file and rows, and whether it is the labelled test set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from divpref.common import render
from divpref.common.render import EN_DASH, Section
from divpref.evaluation.metrics import HEADLINE_METRIC, condition_label
from divpref.flagging.flags import UNFLAGGED

HIGH_AGREEMENT = ("high_agreement_pref", "high_agreement_tie")
DIVERGING = "diverging"


def before_after_counts(agreement: Sequence[str], unflagged: Sequence[bool]) -> dict[str, dict[str, Any]]:
    """``{"before": ..., "after": ...}``: pairs, diverging pairs and their share, high-agreement pairs."""
    agreement = np.asarray(agreement, dtype=object)
    kept = np.asarray(unflagged, dtype=bool)
    if agreement.shape != kept.shape:
        raise ValueError(f"{agreement.size} test pairs but {kept.size} flags")
    counts = {}
    for name, mask in (("before", np.ones_like(kept)), ("after", kept)):
        n = int(mask.sum())
        diverging = int((mask & (agreement == DIVERGING)).sum())
        counts[name] = {
            "pairs": n,
            "diverging": diverging,
            "diverging_share": diverging / n if n else float("nan"),
            "high_agreement": int((mask & np.isin(agreement, HIGH_AGREEMENT)).sum()),
        }
    return counts


def _share(count: int, total: int) -> str:
    share = render.format_number(count / total if total else None, decimals=1, percent=True)
    return f"{count} of {total} ({share})"


def counts_section(dataset: str, counts: Mapping[str, Mapping[str, Any]]) -> Section:
    before, after = counts["before"], counts["after"]
    removed = before["pairs"] - after["pairs"]
    lost = before["high_agreement"] - after["high_agreement"]
    removed_diverging = before["diverging"] - after["diverging"]
    body = [
        ["Pairs", str(before["pairs"]), str(after["pairs"])],
        [
            "Diverging pairs (share of the set)",
            _share(before["diverging"], before["pairs"]),
            _share(after["diverging"], after["pairs"]),
        ],
        ["High-agreement pairs (prefs + ties)", str(before["high_agreement"]), str(after["high_agreement"])],
    ]
    note = (
        f"The flag model removed {removed} of {before['pairs']} test pairs: {removed_diverging} of the "
        f"{before['diverging']} diverging pairs, and **{lost} of the {before['high_agreement']} "
        "high-agreement pairs lost**."
    )
    return Section(f"Test set of {dataset}: before and after removing the flagged pairs", note,
                   ["", "before (all test pairs)", "after (unflagged)"], body)  # fmt: skip


def _interval(row: Mapping[str, Any] | None, value: str, *, percent: bool) -> str:
    if row is None:
        return EN_DASH
    number = {"decimals": 1, "percent": True} if percent else {}
    cell = render.format_interval(row[value], row["ci_low"], row["ci_high"], missing=EN_DASH, **number)
    return f"{cell} ({row['n']})"


def judge_section(judge: pl.DataFrame, dataset: str, *, ci: float) -> Section | None:
    """Winner rate [CI] (n) per judge on all test pairs and on the unflagged ones."""
    rows = judge.filter(pl.col("dataset") == dataset)
    if not rows.height:
        return None
    cells = {(row["judge"], row["subset"]): row for row in rows.iter_rows(named=True)}
    body = [
        [
            name,
            *(
                _interval(cells.get((name, subset)), "winner_rate", percent=True)
                for subset in ("all", UNFLAGGED)
            ),
        ]
        for name in rows["judge"].unique(maintain_order=True).to_list()
    ]
    note = f"Share of pairs where the judge picks A or B rather than a tie [{ci:.0%} bootstrap CI] (n pairs)."
    return Section("LLM judges: winner rate", note, ["Judge", "before (all)", "after (unflagged)"], body)


def reward_model_section(table2: pl.DataFrame, dataset: str, *, ci: float) -> Section | None:
    """Table 2's metric [CI] (n) per reward model on all test pairs and on the unflagged ones."""
    wanted = pl.DataFrame(
        {"method": list(HEADLINE_METRIC), "metric": list(HEADLINE_METRIC.values())},
        schema={"method": pl.String, "metric": pl.String},
    )
    rows = table2.filter(pl.col("dataset") == dataset).join(wanted, on=["method", "metric"], how="semi")
    rows = render.pooled_or_only_seed(rows, ["dataset", "method", "labels", "subset"])
    if not rows.height:
        return None
    cells = {(row["method"], row["labels"], row["subset"]): row for row in rows.iter_rows(named=True)}
    body = [
        [
            condition_label(dataset, method, labels),
            HEADLINE_METRIC[method],
            *(
                _interval(cells.get((method, labels, subset)), "value", percent=False)
                for subset in ("all", UNFLAGGED)
            ),
        ]
        for method, labels in rows.select("method", "labels").unique(maintain_order=True).rows()
    ]
    note = (
        "Table 2's metric (BT, pretrained: mean sigmoid(|r_A - r_B|); MSE: mean |r_A - r_B|) "
        f"[{ci:.0%} bootstrap CI] (n pairs)."
    )
    return Section(
        "Reward models: Table 2's metric",
        note,
        ["Model", "metric", "before (all)", "after (unflagged)"],
        body,
    )


def flag_set_section(summaries: Sequence[Mapping[str, Any]]) -> Section | None:
    """Every flag set: rows, flagged, its cleaned file and rows, and how many of its pairs are test pairs."""
    if not summaries:
        return None
    body = []
    for summary in summaries:
        labelled = summary["labelled_test_pairs"]
        is_test_set = (
            labelled["test_pairs_matched"] == summary["n_pairs"] == labelled["test_pairs_of_dataset"]
        )
        body.append(
            [
                summary["set"],
                str(summary["n_pairs"]),
                str(summary["n_flagged"]),
                f"`{summary['clean_file']}` ({summary['n_clean']})",
                f"{labelled['test_pairs_matched']}" + (" (the test set)" if is_test_set else ""),
            ]
        )
    note = (
        "Each set's cleaned file holds its unflagged rows (rows = n_pairs - n_flagged). A set that is the "
        "test set has exactly the flags of the 'after' column above."
    )
    return Section(
        "Flag sets", note, ["Set", "rows", "flagged", "cleaned file (rows)", "labelled test pairs"], body
    )


def render_mitigation(
    dataset: str,
    counts: Mapping[str, Mapping[str, Any]],
    *,
    judge: pl.DataFrame | None,
    table2: pl.DataFrame,
    summaries: Sequence[Mapping[str, Any]],
    ci: float,
) -> str:
    sections = [
        counts_section(dataset, counts),
        None if judge is None else judge_section(judge, dataset, ci=ci),
        reward_model_section(table2, dataset, ci=ci),
        flag_set_section(summaries),
    ]
    return render.render_markdown([section for section in sections if section is not None])
