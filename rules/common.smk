import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml
from snakemake.utils import validate

# divpref modules that are cheap to import (no torch) tell the DAG what datasets and methods support.
sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from divpref.common import code_fingerprint
from divpref.common.config_check import check_known_keys

# Every schema object is closed: an unknown key (a typo) is an error naming it, its path and the closest valid
# key; then snakemake's validation checks types and values and fills defaults.
CONFIG_SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
check_known_keys(config, yaml.safe_load(CONFIG_SCHEMA.read_text()))
validate(config, schema="../schemas/config.schema.yaml")
from divpref.common.constants import (
    BT,
    DEV_SCORED_METHODS,
    LABEL_SCHEMES,
    METHOD_SETTINGS,
    MSE,
    PRETRAINED,
)
from divpref.data.formats import dataset_format, dataset_has_scores
from divpref.training.tracking import check_backend_installed
from divpref.models.methods import get_method, load_method_modules, method_names
from divpref.training.params import COST_KEYS

# What each parsed library file yields for the fingerprints below, kept by content in snakemake's own folder.
code_fingerprint.use_disk_cache(Path(".snakemake") / "divpref-code-facts.json")

# --- config lookups and the condition grid ---

DATASETS = list(config["datasets"])
# A tracker that is not installed fails now, not in the first training job.
TRACKING = lookup(dpath="tracking", within=config, default={})
check_backend_installed(TRACKING)
CONDITIONS = config["conditions"]
SEEDS = config["training"]["seeds"]

# Method modules outside the package (config `method_modules`): they register further methods.
METHOD_MODULES = [os.path.expanduser(path) for path in config.get("method_modules", [])]
METHOD_SOURCES = {}  # method name -> the method_modules file that registered it
for _path in METHOD_MODULES:
    _known = set(method_names())
    load_method_modules([_path])
    METHOD_SOURCES.update({name: _path for name in set(method_names()) - _known})

# `method: pretrained` (PRETRAINED) scores with an existing reward model: no training run, one score file per
# dataset.
PRETRAINED_SEED = (
    0  # the seed{seed} of its paths: scoring an existing model involves no seed
)
TRAINED_CONDITIONS = [
    c for c, spec in CONDITIONS.items() if spec["method"] != PRETRAINED
]
PRETRAINED_CONDITIONS = [
    c for c, spec in CONDITIONS.items() if spec["method"] == PRETRAINED
]

# What each dataset supports follows from its format and columns (divpref.data.formats).
DATASET_FORMATS = {d: dataset_format(d, spec) for d, spec in config["datasets"].items()}
DATASETS_WITH_SCORES = {
    d for d, spec in config["datasets"].items() if dataset_has_scores(d, spec)
}


def _alternatives(names):
    """A wildcard regex matching exactly `names` (nothing when empty)."""
    return "|".join(map(re.escape, names)) or "(?!)"


def condition_reward_method(condition):
    """The registered RewardMethod of a trained condition; a config error names an unknown method."""
    name = CONDITIONS[condition]["method"]
    try:
        return get_method(name)
    except KeyError as error:
        raise ValueError(
            f"config key conditions.{condition}.method: {error.args[0]} (or `pretrained`); "
            f"add methods with `method_modules`"
        ) from None


def condition_needs_scores(condition):
    return (
        condition in TRAINED_CONDITIONS
        and condition_reward_method(condition).needs_scores
    )


def supports(condition, dataset):
    """Whether `dataset` has what `condition` needs (Likert scores for a score-based method)."""
    return dataset in DATASETS_WITH_SCORES or not condition_needs_scores(condition)


# Every method-specific condition key (Mean-Var: rho, objective), in a fixed order.
METHOD_SETTING_KEYS = tuple(
    dict.fromkeys(key for keys in METHOD_SETTINGS.values() for key in keys)
)


# condition -> its datasets (the config is fixed once parsed; asked for per job)
_CONDITION_DATASETS = {}


def condition_datasets(condition):
    """Datasets a condition runs on: its `datasets` list, or every configured dataset that supports it."""
    if condition not in _CONDITION_DATASETS:
        default = [dataset for dataset in DATASETS if supports(condition, dataset)]
        _CONDITION_DATASETS[condition] = lookup(
            dpath=f"conditions/{condition}/datasets", within=config, default=default
        )
    return list(_CONDITION_DATASETS[condition])


def _check_condition_grid():
    for name, spec in CONDITIONS.items():
        if not condition_datasets(name):
            raise ValueError(
                f"config key conditions.{name}: method {spec['method']!r} needs Likert scores, "
                f"and no configured dataset has them ({DATASETS})"
            )
        for dataset in condition_datasets(name):
            if dataset not in DATASETS:
                raise ValueError(
                    f"config key conditions.{name}.datasets: unknown dataset {dataset!r} "
                    f"(configured: {DATASETS})"
                )
            if not supports(name, dataset):
                raise ValueError(
                    f"config key conditions.{name}: method {spec['method']!r} needs Likert scores, "
                    f"which dataset {dataset!r} (format {DATASET_FORMATS[dataset]!r}) does not have; "
                    f"remove it from `datasets:` or omit `datasets:` to run on every dataset with scores"
                )
        for key in METHOD_SETTING_KEYS:
            if key in spec and key not in METHOD_SETTINGS.get(spec["method"], ()):
                raise ValueError(
                    f"config key conditions.{name}.{key}: method {spec['method']!r} has no setting {key!r} "
                    f"(only {sorted(METHOD_SETTINGS)} take settings)"
                )


_check_condition_grid()


wildcard_constraints:
    dataset=_alternatives(DATASETS),
    condition=_alternatives(CONDITIONS),
    seed=r"\d+",
    method=_alternatives(method_names()),
    labels=_alternatives(LABEL_SCHEMES),


def training_runs():
    """Every (dataset, condition, seed) of the trained grid, in config order."""
    return [
        (dataset, condition, seed)
        for condition in TRAINED_CONDITIONS
        for dataset in condition_datasets(condition)
        for seed in SEEDS
    ]


def pretrained_runs():
    """Every (dataset, condition, seed) of the pretrained conditions (one scoring per dataset)."""
    return [
        (dataset, condition, PRETRAINED_SEED)
        for condition in PRETRAINED_CONDITIONS
        for dataset in condition_datasets(condition)
    ]


def run_labels(condition):
    """The `labels` cell of a condition's rows: its label scheme, or a pretrained condition's own name."""
    spec = CONDITIONS[condition]
    return condition if spec["method"] == PRETRAINED else spec["labels"]


def get_trainset_layout(wildcards):
    """The training-set layout of a method (RewardMethod.trainset_layout: bt, mse, mean_var, ...)."""
    return get_method(wildcards.method).trainset_layout


def expand_runs(pattern):
    """Format `pattern` for every training run."""
    return [
        pattern.format(dataset=dataset, condition=condition, seed=seed)
        for dataset, condition, seed in training_runs()
    ]


def condition_method(wildcards):
    return CONDITIONS[wildcards.condition]["method"]


def get_method_settings(wildcards):
    """The condition's method settings (Mean-Var: `rho`, `objective`), resolved by the train rule."""
    spec = CONDITIONS[wildcards.condition]
    return {key: spec[key] for key in METHOD_SETTING_KEYS if key in spec}


# condition -> its merged training settings (asked for by several rules per job)
_CONDITION_TRAINING = {}


def get_training_params(wildcards):
    """The condition's training settings: config `training` overridden by `conditions.<name>.training`."""
    condition = wildcards.condition
    if condition not in _CONDITION_TRAINING:
        merged = {k: v for k, v in config["training"].items() if k != "seeds"}
        merged.update(
            lookup(dpath=f"conditions/{condition}/training", within=config, default={})
        )
        _CONDITION_TRAINING[condition] = merged
    return {**_CONDITION_TRAINING[condition], "seed": int(wildcards.seed)}


def get_data_parallel(wildcards):
    """Processes of a training run (`training.data_parallel`, default 1): the train job's threads and GPUs."""
    return int(get_training_params(wildcards).get("data_parallel", 1))


def get_trainset(wildcards):
    spec = CONDITIONS[wildcards.condition]
    base = f"results/{wildcards.dataset}/trainsets/{spec['method']}-{spec['labels']}"
    return {"train": f"{base}/train.parquet", "dev": f"{base}/dev.parquet"}


# --- library code as a param ---

LIBRARY = Path(workflow.basedir) / "scripts" / "divpref"


def library_fingerprint(script):
    """A hash of the divpref code (no docstrings, no comments) that scripts/<script>.py uses, transitively.

    A rule param, so snakemake's params rerun trigger reruns exactly the rules whose library code changed
    (its `code` trigger only sees the rule's own script); see divpref.common.code_fingerprint.
    """
    return code_fingerprint.library_fingerprint(
        LIBRARY, LIBRARY.parent / f"{script}.py"
    )


# --- final targets ---


def get_method_modules(wildcards):
    """The `method_modules` file of a condition's method, if any: an input and a param of the rules that look
    the method up, so editing it reruns exactly that method's jobs (and nothing else changes params).
    """
    method = CONDITIONS[wildcards.condition]["method"]
    return [METHOD_SOURCES[method]] if method in METHOD_SOURCES else []


def get_final_outputs():
    targets = [f"results/{dataset}/divergence_summary.csv" for dataset in DATASETS]
    targets += ["results/tables/divergence.csv"]
    targets += get_gpu_check_outputs()
    targets += get_selection_outputs()
    targets += get_share_outputs()
    targets += get_evaluation_outputs()
    targets += get_detection_outputs()
    targets += get_taxonomy_outputs()
    targets += get_judge_outputs()
    targets += get_judge_bias_outputs()
    targets += get_flag_outputs()
    return targets


# On the submit node, before anything is submitted: the site settings against the cluster (helpers/cluster.smk).
onstart:
    check_site_before_submitting()


# --- stage helpers: one file per rule file, in the order they were written (later ones use earlier ones) ---


include: "helpers/cluster.smk"
include: "helpers/data.smk"
include: "helpers/train.smk"
include: "helpers/select.smk"
include: "helpers/evaluate.smk"
include: "helpers/detection.smk"
include: "helpers/taxonomy.smk"
include: "helpers/judge.smk"
include: "helpers/flag.smk"
include: "helpers/share.smk"
