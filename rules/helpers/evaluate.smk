# Helpers of rules/evaluate.smk (input functions, params, target lists); included by rules/common.smk.

# Table 2 and the score plots cover these methods (the distributional ones have their own detection table).
TABLE2_METHODS = (BT, MSE, PRETRAINED)


def get_score_max_length(wildcards):
    """Token limit of scoring: the condition's training max_length, so scoring sees what training saw."""
    return get_training_params(wildcards)["max_length"]


def get_pretrained_model(wildcards):
    """A pretrained condition's `model` block (name_or_path, revision, load_in_8bit, ...); a hub id is
    replaced by its downloaded folder (rule download_backbone), loaded with the hub offline.
    """
    return with_downloaded_folder(CONDITIONS[wildcards.condition]["model"])


def get_pretrained_backbone(wildcards):
    """The model folder of a pretrained condition: built (demo/CI), downloaded, or nothing (a local folder)."""
    spec = CONDITIONS[wildcards.condition]["model"]
    return built_backbone(spec["name_or_path"]) or hub_model_dir(spec) or []


def get_pretrained_gpus(wildcards):
    """GPUs of a pretrained condition (`model.gpus`, default 1): rule score_pretrained's threads, which
    profiles/slurm turns into the job's GPU count; the loader spreads the model over them.
    """
    return int(get_pretrained_model(wildcards).get("gpus", 1))


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


def get_table2_table_inputs(wildcards):
    """Rule table2's inputs: those of get_table2_inputs and, with a flag model, its threshold and test scores
    (the `unflagged` rows)."""
    return get_table2_inputs(wildcards) | flag_test_inputs()


def get_evaluation_outputs():
    tables = [f"results/tables/table2.{ext}" for ext in ("csv", "md", "tex", "html")]
    tables += ["results/tables/divergence.csv", "results/tables/divergence.html"]
    plots = ["score_distributions", "divergence_rates", "decisiveness_vs_agreement"]
    plots = [f"results/plots/{name}.{ext}" for name in plots for ext in ("png", "pdf")]
    config_snapshot = [f"results/report/config_used.{ext}" for ext in ("yaml", "html")]
    return tables + plots + config_snapshot
