import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

# divpref modules that are cheap to import (no torch) tell the DAG what datasets and methods support.
sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from divpref.common import code_fingerprint
from divpref.common.constants import (
    BT,
    DEV_SCORED_METHODS,
    LABEL_SCHEMES,
    METHOD_SETTINGS,
    MSE,
    PRETRAINED,
)
from divpref.data.formats import dataset_format, dataset_has_scores
from divpref.models.methods import get_method, load_method_modules, method_names

# --- config lookups and the condition grid ---

DATASETS = list(config["datasets"])
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


def condition_datasets(condition):
    """Datasets a condition runs on: its `datasets` list, or every configured dataset that supports it."""
    default = [dataset for dataset in DATASETS if supports(condition, dataset)]
    return lookup(
        dpath=f"conditions/{condition}/datasets", within=config, default=default
    )


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


def get_training_params(wildcards):
    """The condition's training settings: config `training` overridden by `conditions.<name>.training`."""
    params = {k: v for k, v in config["training"].items() if k != "seeds"}
    params.update(
        lookup(
            dpath=f"conditions/{wildcards.condition}/training",
            within=config,
            default={},
        )
    )
    params["seed"] = int(wildcards.seed)
    return params


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
    targets += expand_runs("results/models/{dataset}/{condition}/seed{seed}/best.json")
    targets += get_evaluation_outputs()
    targets += get_detection_outputs()
    targets += get_taxonomy_outputs()
    targets += get_judge_outputs()
    targets += get_flag_outputs()
    return targets


# --- data stage helpers ---

# The configured hub file names, so the download rule's `{hub_file}` wildcard matches nothing else.
HUB_FILES = sorted(
    {spec["hub"]["filename"] for spec in config["datasets"].values() if "hub" in spec}
)


wildcard_constraints:
    hub_file="|".join(map(re.escape, HUB_FILES)),


def get_raw_annotations(wildcards):
    """Raw file of a dataset: resources/hub/<dataset>/<filename> for `source: hub`, else the local path.

    A relative local path stays relative, so snakemake resolves it against the working directory.
    """
    spec = config["datasets"][wildcards.dataset]
    if spec["source"] == "hub":
        if "hub" not in spec:
            raise ValueError(
                f"config key datasets.{wildcards.dataset}.hub: required with `source: hub`"
            )
        return f"resources/hub/{wildcards.dataset}/{spec['hub']['filename']}"
    return os.path.expanduser(spec["source"])


def get_min_annotators(wildcards):
    """`divergence.min_annotators` for this dataset (one value for all, or a per-dataset mapping)."""
    setting = config["divergence"].get("min_annotators")
    if isinstance(setting, dict):
        return setting.get(wildcards.dataset)
    return setting


def get_hub_params(wildcards):
    """repo_id, revision and filename of a dataset's hub file (checked against the requested file)."""
    hub = config["datasets"][wildcards.dataset]["hub"]
    if hub["filename"] != wildcards.hub_file:
        raise ValueError(
            f"config key datasets.{wildcards.dataset}.hub.filename is {hub['filename']!r}, "
            f"but {wildcards.hub_file!r} was requested"
        )
    return hub


# --- training stage helpers ---

BUILT_BACKBONES = "resources/backbones/"


wildcard_constraints:
    backbone=r"[^/]+",


def built_backbone(path):
    """The built backbone folder when `path` points into resources/backbones/, else nothing."""
    return path.rstrip("/") if path.startswith(BUILT_BACKBONES) else []


DOWNLOADED_BACKBONES = "resources/models/"
HUB_MODEL_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def hub_backbone_dir():
    """resources/models/<repo_id>@<revision> when `model.name_or_path` is a hub id (not a local folder), else None.

    Rule download_backbone fills it once on the submit node; training then loads it with the hub offline.
    """
    path = config["model"]["name_or_path"]
    if (
        path.startswith(BUILT_BACKBONES)
        or os.path.exists(path)
        or not HUB_MODEL_ID.fullmatch(path)
    ):
        return None
    return f"{DOWNLOADED_BACKBONES}{path}@{config['model'].get('revision') or 'main'}"


wildcard_constraints:
    model_dir=re.escape((hub_backbone_dir() or "/").removeprefix(DOWNLOADED_BACKBONES)),


def get_backbone_input(wildcards):
    """The backbone folder a training run loads: built (resources/backbones/), downloaded, or nothing (local)."""
    return built_backbone(config["model"]["name_or_path"]) or hub_backbone_dir() or []


def get_train_model(wildcards):
    """The `model` block a training run uses: a hub id is replaced by its downloaded folder."""
    folder = hub_backbone_dir()
    return (
        dict(config["model"])
        if folder is None
        else {**config["model"], "name_or_path": folder}
    )


def _model_blocks():
    """`model` and every pretrained condition's `model`, with where they are configured."""
    yield "model", config["model"]
    for condition in PRETRAINED_CONDITIONS:
        yield f"conditions.{condition}.model", CONDITIONS[condition]["model"]


def get_backbone_build(wildcards):
    """The `build` block of the model that lives at resources/backbones/{backbone} (demo/CI models)."""
    target = BUILT_BACKBONES + wildcards.backbone
    builds = {
        key: block.get("build", {})
        for key, block in _model_blocks()
        if block["name_or_path"].rstrip("/") == target
    }
    if len({repr(build) for build in builds.values()}) > 1:
        raise ValueError(
            f"config keys {sorted(builds)}: one folder {target}, different `build` blocks"
        )
    # Another folder (e.g. a judge's): the backbone's build, as before pretrained models had their own.
    return next(
        iter(builds.values()), lookup(dpath="model/build", within=config, default={})
    )


def get_checkpoint_root(wildcards):
    """Where a run's checkpoints live (outside snakemake's outputs, so a failed job resumes)."""
    return f"checkpoints/{wildcards.dataset}/{wildcards.condition}/seed{wildcards.seed}"


# --- evaluation helpers ---


# Table 2 and the score plots cover these methods (the distributional ones have their own detection table).
TABLE2_METHODS = (BT, MSE, PRETRAINED)


def get_score_max_length(wildcards):
    """Token limit of scoring: the condition's training max_length, so scoring sees what training saw."""
    return get_training_params(wildcards)["max_length"]


def get_pretrained_model(wildcards):
    """A pretrained condition's `model` block (name_or_path, revision, load_in_8bit, ...)."""
    return CONDITIONS[wildcards.condition]["model"]


def get_pretrained_backbone(wildcards):
    """The built model folder of a pretrained condition (demo/CI), else nothing."""
    return built_backbone(get_pretrained_model(wildcards)["name_or_path"])


def get_pretrained_max_length(wildcards):
    """Token limit of a pretrained condition: its `max_length`, else `training.max_length`."""
    spec = get_pretrained_model(wildcards)
    return spec.get("max_length", config["training"]["max_length"])


def score_file(dataset, condition, seed):
    """The test-score file of a run (rules score and score_pretrained write it)."""
    return f"results/scores/{dataset}/{condition}/seed{seed}.parquet"


def dev_score_file(dataset, condition, seed):
    """The dev-score file of a run (rules score_dev and score_pretrained write it)."""
    return f"results/scores_dev/{dataset}/{condition}/seed{seed}.parquet"


def _table2_keys():
    return [
        (dataset, condition, seed)
        for dataset, condition, seed in training_runs() + pretrained_runs()
        if CONDITIONS[condition]["method"] in TABLE2_METHODS
    ]


def get_table2_runs():
    """Every bt/mse/pretrained run as {dataset, condition, method, labels, seed} (its scores: input `scores`)."""
    return [
        {
            "dataset": dataset,
            "condition": condition,
            "method": CONDITIONS[condition]["method"],
            "labels": run_labels(condition),
            "seed": seed,
        }
        for dataset, condition, seed in _table2_keys()
    ]


def get_table2_tests():
    """{dataset: test.parquet} for the datasets that Table 2 covers, in config order."""
    covered = {dataset for dataset, _, _ in _table2_keys()}
    return {d: f"results/{d}/test.parquet" for d in DATASETS if d in covered}


def get_table2_inputs(wildcards):
    """The score file of each run of get_table2_runs (same order) and the test pairs of get_table2_tests."""
    return {
        "scores": [score_file(*key) for key in _table2_keys()],
        "tests": list(get_table2_tests().values()),
    }


def get_evaluation_outputs():
    tables = [f"results/tables/table2.{ext}" for ext in ("csv", "md", "tex", "html")]
    tables += ["results/tables/divergence.csv", "results/tables/divergence.html"]
    plots = ["score_distributions", "divergence_rates", "decisiveness_vs_agreement"]
    plots = [f"results/plots/{name}.{ext}" for name in plots for ext in ("png", "pdf")]
    config_snapshot = [f"results/report/config_used.{ext}" for ext in ("yaml", "html")]
    return tables + plots + config_snapshot


# --- detection helpers ---


def detection_datasets():
    """Datasets with at least one trained or pretrained condition, in config order."""
    scored = {dataset for dataset, _, _ in training_runs() + pretrained_runs()}
    return [dataset for dataset in DATASETS if dataset in scored]


def get_detection_outputs():
    """The divergence-detection table (csv, md) and one ROC plot (png, pdf) per dataset."""
    tables = [f"results/tables/divergence_detection.{ext}" for ext in ("csv", "md")]
    plots = [
        f"results/plots/roc_{dataset}.{ext}"
        for dataset in detection_datasets()
        for ext in ("png", "pdf")
    ]
    return tables + plots


def _detection_keys():
    """(dataset, condition, seed) of every run the detection table covers, in config order."""
    keys = []
    for dataset, condition, seed in training_runs() + pretrained_runs():
        method = CONDITIONS[condition]["method"]
        if method in DEV_SCORED_METHODS or _single_value(condition):
            keys.append((dataset, condition, seed))
        # else: a registered method without a detection rule (RewardMethod.single_value)
    return keys


def _single_value(condition):
    spec = CONDITIONS[condition]
    return (
        spec["method"] == PRETRAINED or condition_reward_method(condition).single_value
    )


def detection_runs():
    """One record per trained model: its keys and whether it has dev scores (its files: the rule's inputs)."""
    return [
        {
            "dataset": dataset,
            "condition": condition,
            "method": CONDITIONS[condition]["method"],
            "labels": run_labels(condition),
            "rho": CONDITIONS[condition].get("rho"),
            "objective": CONDITIONS[condition].get("objective"),
            "seed": seed,
            "dev_scored": CONDITIONS[condition]["method"] in DEV_SCORED_METHODS,
            "single_value": _single_value(condition),
        }
        for dataset, condition, seed in _detection_keys()
    ]


def get_detection_inputs(wildcards):
    """Test pairs and all pairs of each dataset (detection_datasets order), each run's test-score file
    (detection_runs order) and the dev-score files of the dev-scored runs (same order).
    """
    datasets = detection_datasets()
    keys = _detection_keys()
    return {
        "tests": [f"results/{dataset}/test.parquet" for dataset in datasets],
        "pairs": [f"results/{dataset}/pairs.parquet" for dataset in datasets],
        "scores": [score_file(*key) for key in keys],
        "dev_scores": [
            dev_score_file(*key)
            for key in keys
            if CONDITIONS[key[1]]["method"] in DEV_SCORED_METHODS
        ],
    }


def get_dev_pairs(wildcards):
    """The condition's dev trainset: the dev pairs its checkpoint was selected on (texts + label_dist)."""
    return get_trainset(wildcards)["dev"]


# --- taxonomy helpers ---


def filled_sheets(dataset):
    """Filled annotation sheets of a dataset (config taxonomy.filled_sheets), one per annotator."""
    return lookup(dpath=f"taxonomy/filled_sheets/{dataset}", within=config, default=[])


def get_filled_sheets(wildcards):
    return filled_sheets(wildcards.dataset)


def get_taxonomy_outputs():
    """Sheets for every dataset; agreement where at least two filled sheets are configured."""
    targets = []
    for dataset in DATASETS:
        targets += [f"results/taxonomy/{dataset}_sheet.csv"]
        targets += [f"results/taxonomy/{dataset}_instructions.md"]
        if len(filled_sheets(dataset)) >= 2:
            targets += [f"results/taxonomy/{dataset}_agreement.json"]
            targets += [f"results/taxonomy/{dataset}_cause_frequencies.csv"]
    return targets


# --- LLM-as-judge helpers ---

JUDGES = lookup(dpath="judges", within=config, default={})


wildcard_constraints:
    judge="|".join(map(re.escape, JUDGES)) or "(?!)",


def get_judge_config(wildcards):
    """The judge's config block (name_or_path, revision, load_in_8bit)."""
    return JUDGES[wildcards.judge]


def get_judge_model_input(wildcards):
    """The judge's folder when it is built offline under resources/backbones/ (rule build_backbone), else nothing."""
    path = JUDGES[wildcards.judge]["name_or_path"]
    return path.rstrip("/") if path.startswith(BUILT_BACKBONES) else []


def judge_runs():
    """One record per (dataset, judge) (its verdict file: input `verdicts`, same order)."""
    return [
        {"dataset": dataset, "judge": judge} for dataset in DATASETS for judge in JUDGES
    ]


def judge_datasets():
    """The datasets of the judge table, in config order (its test pairs: input `tests`, same order)."""
    return DATASETS if JUDGES else []


def get_judge_table_inputs(wildcards):
    """Verdicts and test pairs of every run; the flag model's threshold and test scores when one is configured."""
    inputs = {
        "verdicts": [
            f"results/judge/{run['dataset']}/{run['judge']}.parquet"
            for run in judge_runs()
        ],
        "tests": [f"results/{dataset}/test.parquet" for dataset in judge_datasets()],
    }
    if FLAG:
        inputs["flag_threshold"] = FLAG_THRESHOLD
        inputs["flag_scores"] = flag_model_path("results/scores") + ".parquet"
    return inputs


def get_judge_outputs():
    if not JUDGES:
        return []
    tables = [f"results/tables/judge.{ext}" for ext in ("csv", "md")]
    return tables + [f"results/plots/judge_winner_rate.{ext}" for ext in ("png", "pdf")]


# --- flagging helpers ---

FLAG = lookup(dpath="flag", within=config, default={})
FLAG_SETS = lookup(dpath="flag/sets", within=config, default={})
FLAG_THRESHOLD = "results/flag_model/threshold.json"


wildcard_constraints:
    flag_set="|".join(map(re.escape, FLAG_SETS)) or "(?!)",


def _check_flag_config():
    if not FLAG:
        return
    condition, dataset = FLAG["condition"], FLAG["dataset"]
    if condition not in TRAINED_CONDITIONS:
        raise ValueError(
            f"config key flag.condition: unknown or untrained condition {condition!r} "
            f"(trained conditions: {TRAINED_CONDITIONS})"
        )
    if dataset not in condition_datasets(condition):
        raise ValueError(
            f"config key flag.dataset: condition {condition!r} is not trained on {dataset!r} "
            f"(it runs on {condition_datasets(condition)})"
        )


_check_flag_config()


def flag_model():
    """The flag model: the flag condition's selected model on the flag dataset, for the first training seed."""
    condition = FLAG["condition"]
    return {
        "dataset": FLAG["dataset"],
        "condition": condition,
        "seed": SEEDS[0],
        "method": CONDITIONS[condition]["method"],
    }


def flag_model_path(root):
    """The flag model's run folder under `root` (append `.parquet` for its score files)."""
    model = flag_model()
    return f"{root}/{model['dataset']}/{model['condition']}/seed{model['seed']}"


def flag_wildcards():
    """The flag model's (dataset, condition, seed) as rule wildcards, for the training-config helpers."""
    model = flag_model()
    return SimpleNamespace(
        dataset=model["dataset"], condition=model["condition"], seed=str(model["seed"])
    )


def get_flag_set_path(wildcards):
    return os.path.expanduser(FLAG_SETS[wildcards.flag_set])


def get_flag_model(wildcards):
    return flag_model()


def get_flag_threshold_inputs(wildcards):
    """The flag model's dev scores (as divergence detection uses them) and the flag dataset's pairs."""
    return {
        "dev_scores": flag_model_path("results/scores_dev") + ".parquet",
        "pairs": f"results/{FLAG['dataset']}/pairs.parquet",
    }


def get_flag_adapter(wildcards):
    return os.path.join(flag_model_path("results/models"), "adapter")


def get_flag_train_log(wildcards):
    """The flag model's training log: rule score reads its resolved method settings (Mean-Var's rho)."""
    return os.path.join(flag_model_path("results/train"), "train_log.json")


def get_flag_test_pairs(wildcards):
    return f"results/{FLAG['dataset']}/test.parquet"


def get_flag_method(wildcards):
    return flag_model()["method"]


def get_flag_method_modules(wildcards):
    """The `method_modules` file of the flag model's method, if any (as get_method_modules)."""
    return get_method_modules(flag_wildcards())


def get_flag_max_length(wildcards):
    """The flag model's scoring token limit: its training max_length, as rule score uses."""
    return get_score_max_length(flag_wildcards())


def get_flag_outputs():
    if not FLAG:
        return []
    outputs = [FLAG_THRESHOLD]
    for name in FLAG_SETS:
        outputs += [f"results/flags/{name}.parquet", f"results/flags/{name}.json"]
    return outputs
