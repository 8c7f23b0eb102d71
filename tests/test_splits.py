"""Seeded pair-level splits: exact sizes, disjoint, deterministic, independent of input order."""

import polars as pl
import pytest
from divpref.splits import assign_splits, rows_of_split
from hypothesis import given, settings
from hypothesis import strategies as st

IDS = [f"pair{i:03d}" for i in range(50)]


def test_sizes_and_recorded_seed():
    splits = assign_splits(IDS, test_size=10, dev_size=7, seed=3)
    counts = dict(splits["split"].value_counts().iter_rows())
    assert counts == {"test": 10, "dev": 7, "train": 33}
    assert splits["seed"].unique().to_list() == [3]
    assert sorted(splits["pair_id"].to_list()) == IDS  # every pair exactly once


def test_deterministic_and_order_independent():
    first = assign_splits(IDS, 10, 7, seed=3)
    again = assign_splits(list(reversed(IDS)), 10, 7, seed=3)
    assert first.equals(again)
    other_seed = assign_splits(IDS, 10, 7, seed=4)
    assert not first["split"].equals(other_seed["split"])


@settings(max_examples=50, deadline=None)
@given(n=st.integers(3, 200), seed=st.integers(0, 10**6), data=st.data())
def test_partition_property(n, seed, data):
    test_size = data.draw(st.integers(1, n - 2))
    dev_size = data.draw(st.integers(1, n - 1 - test_size))
    ids = [f"id{i}" for i in range(n)]
    splits = assign_splits(ids, test_size, dev_size, seed)
    groups = {
        name: set(splits.filter(pl.col("split") == name)["pair_id"]) for name in ("train", "dev", "test")
    }
    assert len(groups["test"]) == test_size and len(groups["dev"]) == dev_size
    assert len(groups["train"]) == n - test_size - dev_size >= 1
    assert groups["train"] | groups["dev"] | groups["test"] == set(ids)


@pytest.mark.parametrize(("n", "test_size", "dev_size"), [(10, 5, 5), (10, 9, 1), (3, 2, 2)])
def test_too_few_pairs_is_a_clear_error(n, test_size, dev_size):
    with pytest.raises(ValueError, match=rf"{n} pairs.*test_size={test_size}.*dev_size={dev_size}"):
        assign_splits(IDS[:n], test_size, dev_size, seed=0)


def test_duplicate_ids_rejected():
    with pytest.raises(ValueError, match="not unique"):
        assign_splits(["a", "a", "b", "c"], 1, 1, seed=0)


def test_rows_of_split_keeps_pair_order_and_columns():
    pairs = pl.DataFrame({"pair_id": IDS, "value": range(50)})
    splits = assign_splits(IDS, 10, 7, seed=1)
    test = rows_of_split(pairs, splits, "test")
    assert test.columns == ["pair_id", "value"]
    assert test["pair_id"].to_list() == sorted(splits.filter(pl.col("split") == "test")["pair_id"].to_list())
    with pytest.raises(ValueError, match="unknown split"):
        rows_of_split(pairs, splits, "validation")
