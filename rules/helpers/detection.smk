# Helpers of rules/detection.smk (input functions, params, target lists); included by rules/common.smk.


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
