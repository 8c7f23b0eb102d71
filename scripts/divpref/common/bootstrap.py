"""Seeded percentile-bootstrap CIs: means over pairs, over pairs and seeds, and any statistic of both."""

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap confidence interval (NaN when undefined)."""

    value: float
    ci_low: float
    ci_high: float


def stable_seed(base_seed: int, *keys: str) -> np.random.SeedSequence:
    """A seed sequence fixed by ``base_seed`` and string ``keys`` (stable across runs and processes)."""
    return np.random.SeedSequence([base_seed, *(zlib.crc32(key.encode()) for key in keys)])


def _percentiles(replicates: np.ndarray, ci: float) -> tuple[float, float]:
    tail = (1.0 - ci) / 2.0 * 100.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_mean(
    values: np.ndarray, *, n_samples: int, ci: float, seed: np.random.SeedSequence | int
) -> Estimate:
    """Mean of ``values`` with a percentile CI from ``n_samples`` resamples of the values (pairs).

    Empty input gives NaN everywhere; a single value gives a zero-width interval.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, values.size, size=(n_samples, values.size))
    low, high = _percentiles(values[indices].mean(axis=1), ci)
    return Estimate(float(values.mean()), low, high)


def bootstrap_mean_over_seeds(
    values: np.ndarray, *, n_samples: int, ci: float, seed: np.random.SeedSequence | int
) -> Estimate:
    """Mean over seeds of per-seed means, with a two-level percentile CI.

    ``values`` has shape (seeds, pairs): the same test pairs scored by models trained with different seeds.
    Each replicate resamples seeds with replacement and, independently, pairs with replacement (one pair
    resample shared by all drawn seeds, since the pairs are the same), and averages the drawn seeds' means
    over the drawn pairs. The CI so reflects both test-set sampling and training-seed variation.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be (seeds, pairs), got shape {values.shape}")
    n_seeds, n_pairs = values.shape
    if n_seeds == 0 or n_pairs == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    pair_idx = rng.integers(0, n_pairs, size=(n_samples, n_pairs))
    seed_idx = rng.integers(0, n_seeds, size=(n_samples, n_seeds))
    # per_seed_means[s, b]: mean of seed s over the pairs drawn in replicate b.
    per_seed_means = values[:, pair_idx].mean(axis=2)
    replicates = np.take_along_axis(per_seed_means.T, seed_idx, axis=1).mean(axis=1)
    low, high = _percentiles(replicates, ci)
    return Estimate(float(values.mean()), low, high)


def stratified_indices(rng: np.random.Generator, strata: np.ndarray, n_samples: int) -> np.ndarray:
    """``[n_samples, n]`` bootstrap indices that resample within each stratum (stratum sizes stay fixed)."""
    columns = []
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        columns.append(members[rng.integers(0, members.size, size=(n_samples, members.size))])
    return np.concatenate(columns, axis=1) if columns else np.zeros((n_samples, 0), dtype=int)


def bootstrap_statistic(
    statistic: Callable[[int, np.ndarray], float],
    n_seeds: int,
    strata: np.ndarray,
    *,
    n_samples: int,
    ci: float,
    seed: np.random.SeedSequence | int,
) -> Estimate:
    """Mean over seeds of ``statistic(seed_index, pair_indices)`` with a stratified percentile CI.

    Each replicate resamples pairs within ``strata`` (one label per pair) and, when ``n_seeds > 1``, seeds
    too; the point estimate uses every pair of every seed.
    """
    everything = np.arange(len(strata))
    value = float(np.mean([statistic(seed_index, everything) for seed_index in range(n_seeds)]))
    rng = np.random.default_rng(seed)
    pair_draws = stratified_indices(rng, np.asarray(strata), n_samples)
    seed_draws = (
        rng.integers(0, n_seeds, size=(n_samples, n_seeds)) if n_seeds > 1 else np.zeros((n_samples, 1), int)
    )
    replicates = np.array(
        [
            np.mean([statistic(s, pairs) for s in seeds])
            for pairs, seeds in zip(pair_draws, seed_draws, strict=True)
        ]
    )
    low, high = _percentiles(replicates, ci)
    return Estimate(value, low, high)
