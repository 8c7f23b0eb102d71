"""Seeded pair-level splits: exact sizes, disjoint, deterministic, independent of input order."""

import json

import polars as pl
import pytest
import yaml
from conftest import CI_CONFIG, copy_workflow, run_snakemake
from hypothesis import given, settings
from hypothesis import strategies as st

from divpref.data.splits import assign_splits, rows_of_split

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


def _prompted(n_prompts=40, seed=0):
    """Pairs with 1-5 comparisons per prompt, like MultiPref."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids, prompts = [], []
    for p in range(n_prompts):
        for k in range(int(rng.integers(1, 6))):
            ids.append(f"p{p:02d}-{k}")
            prompts.append(f"prompt {p}")
    return ids, prompts


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n_prompts=st.integers(12, 60), test_size=st.integers(1, 15))
def test_group_by_prompt_shares_no_prompt_and_sizes_are_met_closely(seed, n_prompts, test_size):
    ids, prompts = _prompted(n_prompts, seed)
    dev_size = 5
    if test_size + dev_size + 5 >= len(ids):
        return
    splits = assign_splits(ids, test_size, dev_size, seed, prompts=prompts, group_by="prompt")
    split_of = dict(zip(splits["pair_id"], splits["split"], strict=True))
    by_prompt = {}
    for pair, prompt in zip(ids, prompts, strict=True):
        by_prompt.setdefault(prompt, set()).add(split_of[pair])
    assert all(len(splits_of_prompt) == 1 for splits_of_prompt in by_prompt.values())  # no prompt shared
    counts = dict(splits["split"].value_counts().iter_rows())
    largest = max(prompts.count(p) for p in set(prompts))
    assert test_size <= counts["test"] < test_size + largest  # met, overshot by less than one prompt
    assert dev_size <= counts.get("dev", 0) < dev_size + largest
    assert set(splits["group_by"]) == {"prompt"}
    assert sorted(splits["pair_id"]) == sorted(ids)


def test_group_by_prompt_summary_records_the_grouping():
    from divpref.data.splits import split_summary

    ids, prompts = _prompted()
    pairs = pl.DataFrame({"pair_id": ids, "prompt": prompts})
    by_prompt = assign_splits(ids, 20, 15, 0, prompts=prompts, group_by="prompt")
    by_pair = assign_splits(ids, 20, 15, 0, prompts=prompts, group_by="pair")
    summary = split_summary(by_prompt, pairs, 20, 15)
    assert summary["group_by"] == "prompt" and summary["prompts_in_several_splits"] == 0
    assert summary["requested"] == {"test": 20, "dev": 15}
    assert sum(summary["pairs"].values()) == len(ids)
    assert (
        split_summary(by_pair, pairs, 20, 15)["prompts_in_several_splits"] > 0
    )  # what prompt grouping prevents
    assert assign_splits(list(reversed(ids)), 20, 15, 0, list(reversed(prompts)), "prompt").equals(by_prompt)


def test_group_by_prompt_needs_prompts_and_a_training_pair():
    with pytest.raises(ValueError, match="one prompt per pair"):
        assign_splits(IDS, 5, 5, 0, group_by="prompt")
    with pytest.raises(ValueError, match="no training pair remains"):
        assign_splits(IDS[:10], 4, 4, 0, prompts=["x"] * 5 + ["y"] * 5, group_by="prompt")
    with pytest.raises(ValueError, match="group_by"):
        assign_splits(IDS, 5, 5, 0, group_by="annotator")


# --- splits.test_size per dataset, through the workflow ---


def _write_overlay(workdir, test_size, **extra) -> str:
    overlay = workdir / "sizes.yaml"
    overlay.write_text(yaml.safe_dump({"splits": {"test_size": test_size, "group_by": "pair"}, **extra}))
    return str(overlay)


def test_test_size_per_dataset_reaches_each_split(tmp_path):
    """A mapping gives each dataset its own test size (the paper config: 500 / 576); CI-size data."""
    workdir = copy_workflow(tmp_path / "wf")
    overlay = _write_overlay(workdir, {"multipref": 90, "helpsteer2": 110})
    targets = [f"results/{dataset}/split_summary.json" for dataset in ("multipref", "helpsteer2")]
    run_snakemake(workdir, "--cores", "1", *targets, "--configfile", CI_CONFIG, overlay)
    for dataset, size in (("multipref", 90), ("helpsteer2", 110)):
        summary = json.loads((workdir / "results" / dataset / "split_summary.json").read_text())
        assert summary["requested"]["test"] == summary["pairs"]["test"] == size  # group_by pair: exact
        assert pl.read_parquet(workdir / "results" / dataset / "test.parquet").height == size


OWN_DATASET = {"datasets": {"example": {"source": "demo/long_example.jsonl.gz", "format": "long"}}}


@pytest.mark.parametrize(
    ("test_size", "extra", "message"),
    [
        # overlays merge into config.yaml's mapping key by key; a dataset of one's own needs its own entry
        ({"multipref": 90}, OWN_DATASET, "config key splits.test_size: no test size for dataset 'example'"),
        ({"hs3": 5}, {}, "config key splits.test_size.hs3: unknown dataset"),
    ],
)
def test_a_test_size_mapping_must_name_every_dataset(tmp_path, test_size, extra, message):
    workdir = copy_workflow(tmp_path / "wf")
    overlay = _write_overlay(workdir, test_size, **extra)
    proc = run_snakemake(workdir, "-n", "--configfile", CI_CONFIG, overlay, check=False)
    assert proc.returncode != 0 and message in proc.stdout, proc.stdout[-3000:]
