"""What judges (and reward models) favour: how often the side they pick has more of a response feature.

``results/tables/judge_bias.csv`` has one row per (dataset, judge, subset, feature) with the columns of
:data:`BIAS_COLUMNS`. For a pair whose final verdict is a winner (``a`` or ``b``, not a tie) and whose two
responses differ in the feature, the verdict "picks more" when the winner's value is the larger one:

* ``n``: the number of such pairs in the subset;
* ``pick_rate``: the share of them where the winner has more of the feature, with a percentile bootstrap CI
  over those pairs (:func:`divpref.common.bootstrap.bootstrap_mean`, seeded per row key).

A judge's winner is its order-consistent verdict (``verdict`` of the verdict file); a reward model's is the
side with the larger reward (equal rewards: a tie). ``kind`` says which (:data:`KINDS`); for a reward model
``judge`` is the condition's name.

The features (:data:`FEATURES`), each a per-response number, defined once here:

* ``length``: the number of characters (:func:`length`);
* ``formatting``: the number of markdown structure elements (:func:`formatting_count`);
* ``compliance``: 1 when the response does not refuse, 0 when it does (:func:`refuses`), so two responses
  differ exactly when one refuses and the other does not, and "more" means the one that complies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from divpref.common.bootstrap import bootstrap_mean, stable_seed
from divpref.common.figures import pyplot, save_figure
from divpref.common.paper_numbers import PAPER_DATASETS
from divpref.evaluation.metrics import SUBSET_LABELS
from divpref.flagging.flags import UNFLAGGED, UNFLAGGED_LABEL

KINDS = ("judge", "reward_model")
BIAS_COLUMNS = ("dataset", "judge", "subset", "feature", "n", "pick_rate", "ci_low", "ci_high", "kind")
BIAS_SCHEMA = {
    "dataset": pl.String,
    "judge": pl.String,
    "subset": pl.String,
    "feature": pl.String,
    "n": pl.Int64,
    "pick_rate": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "kind": pl.String,
}


# ---------------------------------------------------------------------------------------------------------
# Features of one response (pure)


def length(text: str) -> int:
    """The number of characters (Unicode code points) of the response."""
    return len(text)


_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\S")
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_BOLD = re.compile(r"\*\*(?=\S)[^*\n]*?(?<=\S)\*\*|__(?=\S)[^_\n]*?(?<=\S)__")
_ITALIC = re.compile(
    r"(?<![*\w])\*(?=[^\s*])[^*\n]*?(?<=[^\s*])\*(?![*\w])|(?<![_\w])_(?=[^\s_])[^_\n]*?(?<=[^\s_])_(?![_\w])"
)


def formatting_count(text: str) -> int:
    """The number of markdown structure elements of the response, by this rule, line by line:

    * a **code block** counts 1 (its opening fence, a line starting with ````` or ``~~~``); the lines inside
      it and its closing fence count nothing (an unclosed block runs to the end);
    * a **heading** line (``#`` to ``######`` then a space) counts 1;
    * a **list item** line (``-``, ``*``, ``+``, ``1.`` or ``1)`` then a space and text, any indent) counts 1;
    * a **table row** (a line that starts with ``|`` and has another ``|``) counts 1; the delimiter row
      (``|---|---|``) does not;
    * on every other line outside code blocks (and in the text of headings, list items and table rows),
      each **bold** span (``**x**``, ``__x__``) and each **italic** span (``*x*``, ``_x_``, not inside a word)
      counts 1.

    Plain prose counts 0. Inline code, links, quotes and rules are not counted.
    """
    count = 0
    in_code = False
    for line in text.splitlines():
        if _FENCE.match(line):
            count += 0 if in_code else 1
            in_code = not in_code
            continue
        if in_code:
            continue
        stripped = line.strip()
        if _HEADING.match(line) or _LIST_ITEM.match(line):
            count += 1
        elif stripped.startswith("|") and stripped.count("|") >= 2:
            count += 0 if _TABLE_DELIMITER.match(line) else 1
        bold = _BOLD.findall(line)
        count += len(bold) + len(_ITALIC.findall(_BOLD.sub(" ", line)))
    return count


REFUSAL_WINDOW = 300
"""Characters at the start of a response searched for refusal phrases (a refusal says so up front)."""
REFUSAL_PATTERNS = (
    r"\bI(?:'m| am) (?:sorry|afraid),? but\b",
    r"^\s*(?:I(?:'m| am) )?sorry\b[^.!?\n]{0,40}\bI\b",
    r"\bI(?: can(?:'|no)t| can not| won't| will not| am unable to|'m unable to"
    r"| am not able to|'m not able to)"
    r" (?:help|assist|provide|comply|fulfil|fulfill|support|share|answer|create|write|generate|give|offer"
    r"|engage|do that|do this|be able to)\b",
    r"\bI must (?:decline|refuse)\b",
    r"\bI (?:don't|do not) (?:feel comfortable|think I (?:can|should))\b",
    r"\bas an AI(?: language model)?, I (?:can(?:'|no)t|am not able|'m not able|don't|do not)\b",
)
"""Case-insensitive refusal phrases (:func:`refuses`)."""
_REFUSAL = re.compile("|".join(f"(?:{pattern})" for pattern in REFUSAL_PATTERNS), re.IGNORECASE)


def refuses(text: str) -> bool:
    """True when the first :data:`REFUSAL_WINDOW` characters hold a refusal phrase (:data:`REFUSAL_PATTERNS`):
    an apology with "but" or followed by "I", "I can't / cannot / won't / am unable to / am not able to"
    followed by help, assist, provide, comply and similar verbs, "I must decline", "I don't feel
    comfortable", or "as an AI, I can't". A typographic apostrophe (U+2019) counts as ``'``.

    It misses refusals that use none of these phrases (a lecture, a redirection, "That is not something I
    do"), refusals that come after a long preamble, partial compliance, and other languages; a compliant
    answer that opens with "I'm sorry, but the answer is ..." counts as a refusal.
    """
    return _REFUSAL.search(text[:REFUSAL_WINDOW].replace("\u2019", "'")) is not None


FEATURES: dict[str, Callable[[str], float]] = {
    "length": length,
    "formatting": formatting_count,
    "compliance": lambda text: 0 if refuses(text) else 1,
}
"""Feature name -> per-response value; the pick rate asks whether the winner has the larger value."""


def feature_values(feature: str, texts: Sequence[str]) -> np.ndarray:
    """The feature's value per response."""
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r}; features: {sorted(FEATURES)}")
    return np.array([FEATURES[feature](text) for text in texts], dtype=float)


# ---------------------------------------------------------------------------------------------------------
# Winners and pick rates (pure)


def reward_winner(reward_a: Sequence[float], reward_b: Sequence[float]) -> np.ndarray:
    """A reward model's chosen side per pair: ``a`` / ``b`` for the larger reward, ``tie`` when equal."""
    reward_a = np.asarray(reward_a, dtype=float)
    reward_b = np.asarray(reward_b, dtype=float)
    return np.where(reward_a > reward_b, "a", np.where(reward_b > reward_a, "b", "tie")).astype(object)


def picks_more(
    winner: Sequence[str], value_a: np.ndarray, value_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(counted, picked_more) per pair: counted = a winner (not a tie) and the two values differ;
    picked_more = the winner's value is the larger one."""
    winner = np.asarray(winner, dtype=object)
    value_a = np.asarray(value_a, dtype=float)
    value_b = np.asarray(value_b, dtype=float)
    counted = np.isin(winner, ["a", "b"]) & (value_a != value_b)
    picked_more = np.where(winner == "a", value_a > value_b, value_b > value_a)
    return counted, picked_more & counted


def bias_rows(
    dataset: str,
    judge: str,
    kind: str,
    pairs: pl.DataFrame,
    winner: Sequence[str],
    masks: Mapping[str, np.ndarray],
    *,
    n_samples: int,
    ci: float,
    seed: int,
) -> list[dict]:
    """Rows of one (dataset, judge or reward model): every subset of ``masks`` x every feature.

    ``pairs`` holds ``response_a``, ``response_b`` in the order of ``winner`` and of every mask.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    picks = {}
    for feature in FEATURES:
        value_a = feature_values(feature, pairs["response_a"].to_list())
        value_b = feature_values(feature, pairs["response_b"].to_list())
        picks[feature] = picks_more(winner, value_a, value_b)
    rows = []
    for subset, mask in masks.items():
        for feature, (counted, picked_more) in picks.items():
            selected = counted & np.asarray(mask, dtype=bool)
            estimate = bootstrap_mean(
                picked_more[selected].astype(float),
                n_samples=n_samples,
                ci=ci,
                seed=stable_seed(seed, "judge_bias", dataset, judge, subset, feature),
            )
            rows.append(
                {
                    "dataset": dataset,
                    "judge": judge,
                    "subset": subset,
                    "feature": feature,
                    "n": int(selected.sum()),
                    "pick_rate": estimate.value,
                    "ci_low": estimate.ci_low,
                    "ci_high": estimate.ci_high,
                    "kind": kind,
                }
            )
    return rows


def bias_table(rows: Sequence[dict]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=BIAS_SCHEMA, orient="row").select(BIAS_COLUMNS)


# ---------------------------------------------------------------------------------------------------------
# The figure


def plot_pick_rates(table: pl.DataFrame, png: str | Path, pdf: str | Path) -> None:
    """Pick rate per subset (x) for every judge and reward model (one colour each, bootstrap CIs), one panel
    per (dataset, feature); a dashed line at 0.5 (no preference for more of the feature); empty cells left
    out."""
    plt, sns = pyplot()
    from matplotlib.lines import Line2D

    labels = {**SUBSET_LABELS, UNFLAGGED: UNFLAGGED_LABEL}
    datasets = table["dataset"].unique(maintain_order=True).to_list()
    features = [feature for feature in FEATURES if (table["feature"] == feature).any()]
    subsets = [s for s in labels if (table["subset"] == s).any()]
    raters = table.select("judge", "kind").unique(maintain_order=True).rows()
    colours = sns.color_palette("colorblind", len(raters))
    figure, axes = plt.subplots(
        len(datasets), len(features), figsize=(4.0 * len(features), 3.4 * len(datasets) + 0.6),
        squeeze=False, sharey=True,
    )  # fmt: skip
    width = 0.8 / max(len(raters), 1)
    for row, dataset in enumerate(datasets):
        for column, feature in enumerate(features):
            ax = axes[row][column]
            ax.axhline(0.5, color="0.4", linestyle="--", linewidth=0.9, zorder=1)
            cells = table.filter(pl.col("dataset") == dataset, pl.col("feature") == feature, pl.col("n") > 0)
            for index, ((rater, kind), colour) in enumerate(zip(raters, colours, strict=True)):
                points = cells.filter(pl.col("judge") == rater, pl.col("kind") == kind)
                if not points.height:
                    continue
                x = np.array([subsets.index(s) for s in points["subset"]]) - 0.4 + width * (index + 0.5)
                value = points["pick_rate"].to_numpy()
                error = [value - points["ci_low"].to_numpy(), points["ci_high"].to_numpy() - value]
                ax.errorbar(
                    x, value, yerr=error, fmt="o" if kind == "judge" else "s", color=colour, markersize=4,
                    capsize=2, linewidth=0.8, zorder=2,
                )  # fmt: skip
            ax.set_xticks(range(len(subsets)), [labels[s] for s in subsets], rotation=35, ha="right")
            ax.set(title=f"{PAPER_DATASETS.get(dataset, dataset)}: {feature}", ylim=(-0.03, 1.03))
        axes[row][0].set_ylabel("pick rate (winner has more)")
    # One legend entry per rater, drawn or not (a judge that never picks a winner has no points).
    handles = [
        Line2D([], [], marker="o" if kind == "judge" else "s", color=colour, linestyle="", markersize=4)
        for (_, kind), colour in zip(raters, colours, strict=True)
    ]
    drawn = set(table.filter(pl.col("n") > 0).select("judge", "kind").rows())
    names = [
        f"{rater} ({kind.replace('_', ' ')}{'' if (rater, kind) in drawn else '; no pair counted'})"
        for rater, kind in raters
    ]
    figure.legend(handles, names, loc="lower center", ncol=min(len(names), 4), fontsize=7, frameon=False)
    figure.tight_layout(rect=(0, 0.06 + 0.02 * (len(names) // 4), 1, 1))
    save_figure(figure, png, pdf)
    plt.close(figure)
