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
    if FLAG:
        inputs["flag_threshold"] = FLAG_THRESHOLD
        inputs["flag_scores"] = flag_model_path("results/scores") + ".parquet"
    return inputs


def get_judge_outputs():
    if not JUDGES:
        return []
    tables = [f"results/tables/judge.{ext}" for ext in ("csv", "md")]
    return tables + [f"results/plots/judge_winner_rate.{ext}" for ext in ("png", "pdf")]
