# Helpers of rules/flag.smk (input functions, params, target lists); included by rules/common.smk.

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


def flag_test_inputs():
    """The flag model's threshold and test scores (the `unflagged` test pairs), when one is configured."""
    if not FLAG:
        return {}
    return {
        "flag_threshold": FLAG_THRESHOLD,
        "flag_scores": flag_model_path("results/scores") + ".parquet",
    }


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


def flag_clean_file(name):
    """`results/flags/<name>.clean.<ext>`, `<ext>` the set file's own (jsonl, parquet or csv)."""
    suffix = os.path.splitext(FLAG_SETS[name])[1].lower().lstrip(".")
    if suffix not in ("jsonl", "parquet", "csv"):
        raise ValueError(
            f"config key flag.sets.{name}: {FLAG_SETS[name]!r} is not a .jsonl, .parquet or .csv file"
        )
    return f"results/flags/{name}.clean.{suffix}"


def get_mitigation_inputs(wildcards):
    """The flag dataset's test pairs and the flag model's flags on them, the tables re-evaluated on the
    unflagged ones (table2.csv; judge.csv with judges), and every flag set's summary."""
    inputs = {
        "test": get_flag_test_pairs(wildcards),
        "table2": "results/tables/table2.csv",
        "summaries": [f"results/flags/{name}.json" for name in FLAG_SETS],
    }
    if JUDGES:
        inputs["judge"] = "results/tables/judge.csv"
    return inputs | flag_test_inputs()


def get_flag_outputs():
    if not FLAG:
        return []
    outputs = [FLAG_THRESHOLD, "results/tables/mitigation.md"]
    for name in FLAG_SETS:
        outputs += [f"results/flags/{name}.parquet", f"results/flags/{name}.json"]
        outputs.append(flag_clean_file(name))
    return outputs
