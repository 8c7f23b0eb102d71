"""The training-curve figure: the dev selection metric against epoch for every run, selections marked.

One panel per dataset x method; one line per run (condition, seed); the point that
:mod:`divpref.training.selection` chose (``best.json``'s step) is marked with a star. Each marker's ``gid``
is ``{dataset}/{condition}/seed{seed}``, so tests can find it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from divpref.common.figures import pyplot


def curve_points(best: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """``(epochs, values)`` of the selection metric along a run's curve (``best.json``), in step order."""
    curve = sorted(best["curve"], key=lambda entry: int(entry["step"]))
    metric = best["metric"]
    values = [float("nan") if entry[metric] is None else float(entry[metric]) for entry in curve]
    return [float(entry["epoch"]) for entry in curve], values


def selected_point(best: Mapping[str, Any]) -> tuple[float, float]:
    """``(epoch, value)`` of the selected checkpoint: the curve entry at ``best.json``'s step."""
    (entry,) = [entry for entry in best["curve"] if int(entry["step"]) == int(best["step"])]
    return float(entry["epoch"]), float(entry[best["metric"]])


def panel_keys(runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(dataset, method) of every panel, in the order the runs first name them."""
    return list(dict.fromkeys((run["dataset"], run["method"]) for run in runs))


def plot_training_curves(runs: Sequence[Mapping[str, Any]], bests: Sequence[Mapping[str, Any]]) -> Any:
    """The figure; ``runs`` are ``{dataset, condition, method, seed}`` and ``bests`` their ``best.json``."""
    if len(runs) != len(bests):
        raise ValueError(f"{len(runs)} runs but {len(bests)} best.json records")
    if not runs:
        raise ValueError("no training runs to plot")
    plt, sns = pyplot()
    panels = panel_keys(runs)
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    conditions = list(dict.fromkeys(run["condition"] for run in runs))
    colours = dict(zip(conditions, sns.color_palette("colorblind", len(conditions)), strict=True))
    styles = ["-", "--", ":", "-."]
    seeds = list(dict.fromkeys(run["seed"] for run in runs))
    for index, (dataset, method) in enumerate(panels):
        axis = axes[index // columns][index % columns]
        metric = None
        for run, best in zip(runs, bests, strict=True):
            if (run["dataset"], run["method"]) != (dataset, method):
                continue
            metric = best["metric"]
            epochs, values = curve_points(best)
            colour = colours[run["condition"]]
            style = styles[seeds.index(run["seed"]) % len(styles)]
            axis.plot(epochs, values, style, color=colour, label=f"{run['condition']} seed {run['seed']}")
            x, y = selected_point(best)
            axis.plot(
                [x],
                [y],
                marker="*",
                markersize=11,
                color=colour,
                markeredgecolor="black",
                linestyle="none",
                gid=f"{run['dataset']}/{run['condition']}/seed{run['seed']}",
            )
        same = [
            b for r, b in zip(runs, bests, strict=True) if (r["dataset"], r["method"]) == (dataset, method)
        ]
        direction = "higher is better" if same[0]["greater_is_better"] else "lower is better"
        axis.set_title(f"{dataset} \N{EN DASH} {method}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(f"dev {metric} ({direction})")
        axis.legend(fontsize="x-small")
    for index in range(len(panels), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.suptitle("Dev selection metric per evaluation; \N{BLACK STAR} = selected checkpoint")
    figure.tight_layout()
    return figure
