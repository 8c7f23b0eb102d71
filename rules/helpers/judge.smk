# Helpers of rules/judge.smk (input functions, params, target lists); included by rules/common.smk.

JUDGES = lookup(dpath="judges", within=config, default={})


wildcard_constraints:
    judge="|".join(map(re.escape, JUDGES)) or "(?!)",


def get_judge_config(wildcards):
    """The judge's config block (name_or_path, revision, load_in_8bit); a hub id is replaced by its downloaded
    folder (rule download_backbone), loaded with the hub offline."""
    return with_downloaded_folder(JUDGES[wildcards.judge])


def get_judge_model_input(wildcards):
    """The judge's folder: built offline (rule build_backbone), downloaded (rule download_backbone), or nothing."""
    spec = JUDGES[wildcards.judge]
    return built_backbone(spec["name_or_path"]) or hub_model_dir(spec) or []


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
    return inputs | flag_test_inputs()


def get_judge_outputs():
    if not JUDGES:
        return []
    tables = [f"results/tables/judge.{ext}" for ext in ("csv", "md")]
    return tables + [f"results/plots/judge_winner_rate.{ext}" for ext in ("png", "pdf")]


# --- what judges favour (rule judge_bias) ---


def judge_bias_runs():
    """One record per judge and per bt/mse/pretrained reward model on each dataset, judges first.

    A reward model is its condition's run of the first training seed (a pretrained one: its only scoring),
    as the flag model is. Its file is a verdict file (`kind: judge`) or a score file (`kind: reward_model`).
    """
    runs = [
        {
            **run,
            "kind": "judge",
            "path": f"results/judge/{run['dataset']}/{run['judge']}.parquet",
        }
        for run in judge_runs()
    ]
    first_seed = {}
    for dataset, condition, seed in _table2_keys():
        first_seed[(dataset, condition)] = min(
            seed, first_seed.get((dataset, condition), seed)
        )
    runs += [
        {
            "dataset": dataset,
            "judge": condition,
            "kind": "reward_model",
            "path": score_file(dataset, condition, seed),
        }
        for (dataset, condition), seed in first_seed.items()
    ]
    return runs


def judge_bias_datasets():
    """The datasets of judge_bias_runs, in config order (their test pairs: input `tests`, same order)."""
    covered = {run["dataset"] for run in judge_bias_runs()}
    return [dataset for dataset in DATASETS if dataset in covered]


def get_judge_bias_inputs(wildcards):
    """Every run's verdict or score file (judge_bias_runs order), the test pairs, and the flag model's flags."""
    return {
        "runs": [run["path"] for run in judge_bias_runs()],
        "tests": [
            f"results/{dataset}/test.parquet" for dataset in judge_bias_datasets()
        ],
    } | flag_test_inputs()


def get_judge_bias_outputs():
    if not judge_bias_runs():
        return []
    return ["results/tables/judge_bias.csv"] + [
        f"results/plots/judge_bias.{ext}" for ext in ("png", "pdf")
    ]
