import hashlib
import json
import os
import re
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

# --- config lookups and the condition grid ---

DATASETS = list(config["datasets"])
CONDITIONS = config["conditions"]
SEEDS = config["training"]["seeds"]

# A fact of the published formats, not an experiment choice: only HelpSteer2 carries Likert scores.
DATASETS_WITH_SCORES = {"helpsteer2"}
METHODS_NEEDING_SCORES = {"mse"}


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)),
    condition="|".join(map(re.escape, CONDITIONS)),
    seed=r"\d+",
    method="bt|mse|mean_var|classification",
    labels="agg|all",


def condition_datasets(condition):
    """Datasets a condition runs on: its `datasets` list, or every configured dataset."""
    return lookup(dpath=f"conditions/{condition}/datasets", within=config, default=DATASETS)


def _check_condition_grid():
    for name, spec in CONDITIONS.items():
        for dataset in condition_datasets(name):
            if dataset not in DATASETS:
                raise ValueError(
                    f"config key conditions.{name}.datasets: unknown dataset {dataset!r} "
                    f"(configured: {DATASETS})"
                )
            if spec["method"] in METHODS_NEEDING_SCORES and dataset not in DATASETS_WITH_SCORES:
                raise ValueError(
                    f"config key conditions.{name}: method {spec['method']!r} needs Likert scores, "
                    f"which dataset {dataset!r} does not have; restrict it with `datasets:`"
                )


_check_condition_grid()


def training_runs():
    """Every (dataset, condition, seed) of the grid, in config order."""
    return [
        (dataset, condition, seed)
        for condition in CONDITIONS
        for dataset in condition_datasets(condition)
        for seed in SEEDS
    ]


def expand_runs(pattern, methods=None):
    """Format `pattern` for every training run, optionally only for the given methods."""
    return [
        pattern.format(dataset=dataset, condition=condition, seed=seed)
        for dataset, condition, seed in training_runs()
        if methods is None or CONDITIONS[condition]["method"] in methods
    ]


def condition_method(wildcards):
    return CONDITIONS[wildcards.condition]["method"]


def condition_labels(wildcards):
    return CONDITIONS[wildcards.condition]["labels"]


def get_training_params(wildcards):
    """The condition's training settings: config `training` overridden by `conditions.<name>.training`."""
    params = {k: v for k, v in config["training"].items() if k != "seeds"}
    params.update(lookup(dpath=f"conditions/{wildcards.condition}/training", within=config, default={}))
    params["seed"] = int(wildcards.seed)
    return params


def get_trainset(wildcards):
    spec = CONDITIONS[wildcards.condition]
    base = f"results/{wildcards.dataset}/trainsets/{spec['method']}-{spec['labels']}"
    return {"train": f"{base}/train.parquet", "dev": f"{base}/dev.parquet"}


# --- final targets ---


def get_final_outputs():
    targets = [f"results/{dataset}/divergence_summary.csv" for dataset in DATASETS]
    targets += ["results/tables/divergence.csv"]
    targets += expand_runs("results/models/{dataset}/{condition}/seed{seed}/best.json")
    targets += get_evaluation_outputs()
    targets += get_detection_outputs()
    targets += get_taxonomy_outputs()
    return targets


# --- data stage helpers ---


# --- training stage helpers ---


# --- evaluation helpers ---


def get_evaluation_outputs():
    return [f"results/tables/table2.{ext}" for ext in ("csv", "md", "tex")]


# --- detection helpers ---


def get_detection_outputs():
    return ["results/tables/divergence_detection.csv"]


# --- taxonomy helpers ---


def get_taxonomy_outputs():
    return [f"results/taxonomy/{dataset}_sheet.csv" for dataset in DATASETS]
