"""Figures of every stage: one matplotlib/seaborn set-up and one way to write PNG and PDF reproducibly."""

from pathlib import Path


def pyplot():
    """``(matplotlib.pyplot, seaborn)`` on the non-interactive Agg backend with the project's theme."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def save_figure(figure, png: str | Path, pdf: str | Path) -> None:
    """Write PNG and PDF without timestamps (formats given explicitly: atomic temp names have no suffix)."""
    figure.savefig(png, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
    figure.savefig(
        pdf,
        format="pdf",
        bbox_inches="tight",
        metadata={"CreationDate": None, "Creator": None, "Producer": None},
    )
