"""Condition settings of a reward method, resolved against the training set before training.

Only Mean-Var has settings (config ``conditions.<name>.rho`` and ``.objective``):

- ``rho``: the correlation of the two responses' rewards in r_A - r_B ~ N(mu_A - mu_B,
  sigma_A^2 + sigma_B^2 - 2 rho sigma_A sigma_B). ``0`` (default, independent), a fixed number in (-1, 1), or
  ``tie_frequency``: rho = the observed tie rate of the training pairs, the mean over training pairs of the
  share of their annotations that are ties (``label_dist[2]``), which is also the mean tie share the model is
  fit to. rho is not identifiable from the loss (it only sees the total variance, and each response is
  encoded on its own), so any rule is a convention; this one reads the paper's "rho models the correlation
  between the two responses (based on tie frequency)" literally: the more often annotators call the two
  responses equal, the more their rewards move together. It lies in [0, 1), capped at :data:`MAX_RHO`.
- ``objective``: ``kl`` (default) or ``nll`` (Gaussian NLL of the annotators' strengths; with rho 0 the
  paper's "Mean-Var (NLL, Independent)" baseline); see :mod:`divpref.models.distributional`.

The resolved settings (``rho`` as a number, ``rho_setting`` as configured, ``tie_rate``, ``objective``) are
recorded in the training log; scoring reads them from there, so training and scoring use the same rho.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from divpref.common.constants import MEAN_VAR

SETTINGS = {MEAN_VAR: ("rho", "objective")}
"""Condition keys each method accepts (besides method, labels, datasets, training)."""
TIE_FREQUENCY = "tie_frequency"
MAX_RHO = 0.95
"""Upper cap of a tie-frequency rho (the margin variance shrinks to 0 as rho -> 1 with equal sigmas)."""
TIE_INDEX = 2
"""Position of "tie" in label_dist (B clearly, B slightly, tie, A slightly, A clearly)."""


def condition_settings(method: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The method settings present in a condition's config ``spec``; ValueError for one the method lacks."""
    allowed = SETTINGS.get(method, ())
    given = {key: spec[key] for key in ("rho", "objective") if key in spec}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"method {method!r} has no setting {unknown}; settings: {list(allowed) or 'none'}")
    return given


def tie_rate(label_dist: pl.Series | list) -> float:
    """Mean over pairs of the tie share of each pair's label distribution."""
    rows = np.asarray(pl.Series(label_dist).to_list(), dtype=float).reshape(-1, 5)
    if rows.shape[0] == 0:
        raise ValueError("cannot estimate a tie rate from an empty training set")
    return float(rows[:, TIE_INDEX].mean())


def rho_from_tie_rate(rate: float) -> float:
    """The ``tie_frequency`` rule: rho = the tie rate, capped at :data:`MAX_RHO`."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"a tie rate lies in [0, 1], got {rate!r}")
    return min(float(rate), MAX_RHO)


def resolve(method: str, settings: Mapping[str, Any], train: pl.DataFrame | None) -> dict[str, Any]:
    """Numeric options for :func:`divpref.models.methods.get_method` (empty for a method without settings).

    ``train`` (the condition's training table) is read only for ``rho: tie_frequency``.
    """
    if not settings:
        return {}  # the registered method as it is (Mean-Var: rho 0, KL)
    if method not in SETTINGS:
        raise ValueError(f"method {method!r} takes no settings, got {dict(settings)}")
    rho_setting = settings.get("rho", 0)
    options: dict[str, Any] = {"objective": settings.get("objective", "kl"), "rho_setting": rho_setting}
    if rho_setting == TIE_FREQUENCY:
        if train is None or "label_dist" not in train.columns:
            raise ValueError("rho: tie_frequency needs the training table's label_dist column")
        options["tie_rate"] = tie_rate(train["label_dist"])
        options["rho"] = rho_from_tie_rate(options["tie_rate"])
    elif isinstance(rho_setting, (int, float)) and not isinstance(rho_setting, bool) and -1 < rho_setting < 1:
        options["rho"] = float(rho_setting)
    else:
        raise ValueError(f"rho must be a number in (-1, 1) or {TIE_FREQUENCY!r}, got {rho_setting!r}")
    return options
