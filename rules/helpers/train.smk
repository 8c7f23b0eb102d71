# Helpers of rules/train.smk (input functions, params, target lists); included by rules/common.smk.

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
