"""Seeded bootstrap CIs: they bracket the estimate, are reproducible, and widen with seed variation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from divpref.common.bootstrap import bootstrap_mean, bootstrap_mean_over_seeds, stable_seed

values_strategy = st.lists(
    st.floats(min_value=-50, max_value=50, allow_nan=False, allow_subnormal=False), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(values=values_strategy, seed=st.integers(0, 2**16))
def test_ci_brackets_the_mean_and_stays_within_the_data(values, seed):
    estimate = bootstrap_mean(np.array(values), n_samples=300, ci=0.95, seed=seed)
    assert estimate.value == pytest.approx(sum(values) / len(values), abs=1e-9)
    tolerance = 1e-9 * (1 + max(abs(v) for v in values))
    assert min(values) - tolerance <= estimate.ci_low <= estimate.value + tolerance
    assert estimate.value - tolerance <= estimate.ci_high <= max(values) + tolerance


def test_same_seed_same_ci_and_different_seed_different_ci():
    values = np.random.default_rng(0).normal(size=200)
    first = bootstrap_mean(values, n_samples=500, ci=0.95, seed=stable_seed(7, "mp", "bt"))
    again = bootstrap_mean(values, n_samples=500, ci=0.95, seed=stable_seed(7, "mp", "bt"))
    other_seed = bootstrap_mean(values, n_samples=500, ci=0.95, seed=stable_seed(8, "mp", "bt"))
    other_key = bootstrap_mean(values, n_samples=500, ci=0.95, seed=stable_seed(7, "mp", "mse"))
    assert first == again
    assert (first.ci_low, first.ci_high) != (other_seed.ci_low, other_seed.ci_high)
    assert (first.ci_low, first.ci_high) != (other_key.ci_low, other_key.ci_high)


def test_ci_matches_the_normal_approximation_for_a_large_sample():
    values = np.random.default_rng(1).normal(loc=2.0, scale=1.0, size=2000)
    estimate = bootstrap_mean(values, n_samples=2000, ci=0.95, seed=3)
    half_width = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert estimate.ci_high - estimate.value == pytest.approx(half_width, rel=0.15)
    assert estimate.value - estimate.ci_low == pytest.approx(half_width, rel=0.15)


def test_constant_and_empty_inputs():
    constant = bootstrap_mean(np.full(5, 0.25), n_samples=100, ci=0.95, seed=0)
    assert (constant.value, constant.ci_low, constant.ci_high) == (0.25, 0.25, 0.25)
    empty = bootstrap_mean(np.array([]), n_samples=100, ci=0.95, seed=0)
    assert all(math.isnan(x) for x in (empty.value, empty.ci_low, empty.ci_high))
    assert math.isnan(bootstrap_mean_over_seeds(np.zeros((2, 0)), n_samples=10, ci=0.95, seed=0).value)


def test_seed_level_resampling_widens_the_interval():
    rng = np.random.default_rng(2)
    pairs = rng.normal(scale=0.1, size=300)
    identical = np.stack([pairs, pairs, pairs])
    offsets = np.stack([pairs - 1.0, pairs, pairs + 1.0])
    narrow = bootstrap_mean_over_seeds(identical, n_samples=1000, ci=0.95, seed=5)
    wide = bootstrap_mean_over_seeds(offsets, n_samples=1000, ci=0.95, seed=5)
    assert narrow.value == pytest.approx(pairs.mean())
    assert wide.value == pytest.approx(pairs.mean())
    assert narrow.ci_high - narrow.ci_low < 0.05
    # Drawing 3 of the seeds {-1, 0, +1} with replacement: the replicate mean spreads over about +-0.67.
    assert wide.ci_low < pairs.mean() - 0.4 and wide.ci_high > pairs.mean() + 0.4


def test_over_seeds_is_seeded():
    values = np.random.default_rng(4).normal(size=(3, 50))
    first = bootstrap_mean_over_seeds(values, n_samples=200, ci=0.9, seed=stable_seed(1, "x"))
    assert first == bootstrap_mean_over_seeds(values, n_samples=200, ci=0.9, seed=stable_seed(1, "x"))
    assert first != bootstrap_mean_over_seeds(values, n_samples=200, ci=0.9, seed=stable_seed(2, "x"))
    with pytest.raises(ValueError, match="seeds, pairs"):
        bootstrap_mean_over_seeds(values[0], n_samples=10, ci=0.9, seed=0)
