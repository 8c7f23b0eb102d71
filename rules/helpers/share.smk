# Helpers of rules/share.smk (input functions, params, target lists); included by rules/common.smk.

SHARE_FOLDER = "results/share/{dataset}/{condition}/seed{seed}"


def get_share_inputs(wildcards):
    """A run's selected adapter, best.json, training log and the tables that hold its test results."""
    key = (wildcards.dataset, wildcards.condition, int(wildcards.seed))
    run = "{dataset}/{condition}/seed{seed}".format(**wildcards)
    tables = {}
    if CONDITIONS[wildcards.condition]["method"] in TABLE2_METHODS:
        tables["table2"] = "results/tables/table2.csv"
    if key in _detection_keys():
        tables["detection"] = "results/tables/divergence_detection.csv"
    return {
        "adapter": f"results/models/{run}/adapter",
        "best": f"results/models/{run}/best.json",
        "train_log": f"results/train/{run}/train_log.json",
        **tables,
    }


def get_share_run(wildcards):
    """{dataset, condition, method, labels, seed} of a run, for its model card."""
    return {
        "dataset": wildcards.dataset,
        "condition": wildcards.condition,
        "method": CONDITIONS[wildcards.condition]["method"],
        "labels": run_labels(wildcards.condition),
        "seed": int(wildcards.seed),
    }


def get_share_dataset(wildcards):
    """The card's dataset reference: the hub repo id and revision of a `source: hub` dataset, else the name."""
    spec = config["datasets"][wildcards.dataset]
    hub = spec.get("hub", {}) if spec.get("source") == "hub" else {}
    return {
        "reference": hub.get("repo_id", wildcards.dataset),
        "revision": hub.get("revision"),
    }


def get_share_load_path(wildcards):
    """What the card's snippet loads: the hub repo (with `hub:`), else the shareable folder itself."""
    from divpref.sharing.hub import repo_id

    hub = lookup(dpath="hub", within=config, default={})
    if hub:
        return repo_id(hub, wildcards.dataset, wildcards.condition, wildcards.seed)
    return SHARE_FOLDER.format(**wildcards)


def get_share_outputs():
    """The shareable folder (adapter + model card) of every training run."""
    return expand_runs(SHARE_FOLDER)


def get_push_hub(wildcards):
    """Config `hub` (target push only: without it, a config error naming the key)."""
    from divpref.sharing.hub import require_hub

    return require_hub(config)
