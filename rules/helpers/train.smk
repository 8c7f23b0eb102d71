# Helpers of rules/train.smk (input functions, params, target lists); included by rules/common.smk.

BUILT_BACKBONES = "resources/backbones/"

# The torch stack's env: PyPI's torch (CUDA 13.0), or config `cuda_build: cu126` for the same torch built with
# CUDA 12.6 (older drivers; README, CUDA builds).
TRAIN_ENV = (
    "../envs/train-cu126.yaml"
    if config.get("cuda_build", "pypi") == "cu126"
    else "../envs/train.yaml"
)
GPU_CHECK_FILE = "results/gpu_check.json"  # divpref.training.memory.GPU_CHECK_FILE


wildcard_constraints:
    backbone=r"[^/]+",


def built_backbone(path):
    """The built backbone folder when `path` points into resources/backbones/, else nothing."""
    return path.rstrip("/") if path.startswith(BUILT_BACKBONES) else []


DOWNLOADED_BACKBONES = "resources/models/"
HUB_MODEL_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def hub_model_dir(model_block):
    """resources/models/<repo_id>@<revision> when a model block's `name_or_path` is a hub id, else None.

    A local folder (built under resources/backbones/, or any existing path) needs no download. Rule
    download_backbone fills the folder once on the submit node; train, score, score_pretrained and judge jobs
    then load it with the hub offline.
    """
    path = model_block["name_or_path"]
    if (
        path.startswith(BUILT_BACKBONES)
        or os.path.exists(path)
        or not HUB_MODEL_ID.fullmatch(path)
    ):
        return None
    return f"{DOWNLOADED_BACKBONES}{path}@{model_block.get('revision') or 'main'}"


def hub_backbone_dir():
    """The downloaded folder of `model` (the reward-model backbone), or None for a local folder."""
    return hub_model_dir(config["model"])


def hub_model_dirs():
    """Downloaded folders of the backbone, every pretrained condition's model and every judge."""
    blocks = [config["model"]]
    blocks += [
        spec["model"] for spec in CONDITIONS.values() if spec["method"] == PRETRAINED
    ]
    blocks += list(lookup(dpath="judges", within=config, default={}).values())
    return sorted({folder for folder in map(hub_model_dir, blocks) if folder})


def with_downloaded_folder(model_block):
    """A model block whose hub id is replaced by its downloaded folder (local folders unchanged)."""
    folder = hub_model_dir(model_block)
    return (
        dict(model_block) if folder is None else {**model_block, "name_or_path": folder}
    )


def downloaded_model_dir(wildcards):
    """Repo id and revision of resources/models/{model_dir}: `<repo_id>@<revision>`."""
    repo_id, revision = wildcards.model_dir.rsplit("@", 1)
    return {"repo_id": repo_id, "revision": revision}


wildcard_constraints:
    model_dir="|".join(
        re.escape(folder.removeprefix(DOWNLOADED_BACKBONES))
        for folder in hub_model_dirs()
    )
    or "(?!)",


def get_backbone_input(wildcards):
    """The backbone folder a training run loads: built (resources/backbones/), downloaded, or nothing (local)."""
    return built_backbone(config["model"]["name_or_path"]) or hub_backbone_dir() or []


def get_train_model(wildcards):
    """The `model` block a training run uses: a hub id is replaced by its downloaded folder."""
    return with_downloaded_folder(config["model"])


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


# --- gpu_check ---


def get_gpu_check_outputs():
    """results/gpu_check.json, a final target, unless config `gpu_check: false`. Not an input of train: with
    snakemake 9.27 an `ancient` input hides a train job's own param changes whenever the check reruns in the
    same invocation, and a plain input would retrain the whole grid whenever the check reruns.
    """
    return [GPU_CHECK_FILE] if config.get("gpu_check", True) else []


def get_gpu_check_processes(wildcards):
    """Processes, and GPUs on a cluster, of the GPU check: training.data_parallel, as a training job."""
    return int(config["training"].get("data_parallel", 1))


def get_gpu_check_training(wildcards):
    """The `training` block gpu_check measures (the grid's defaults; conditions may override them)."""
    return {k: v for k, v in config["training"].items() if k != "seeds"}


def _grid_runs():
    """(dataset, condition) of every trained run, once per seed list."""
    return sorted({(dataset, condition) for dataset, condition, _ in training_runs()})


def get_grid_trainsets(wildcards):
    """Every trainset file the grid trains on (gpu_check estimates the grid's GPU-hours from them)."""
    files = set()
    for dataset, condition in _grid_runs():
        files.update(
            get_trainset(SimpleNamespace(dataset=dataset, condition=condition)).values()
        )
    return sorted(files)


def get_gpu_check_runs(wildcards):
    """One entry per (dataset, condition): its trainsets, training settings and number of seeds."""
    runs = []
    for dataset, condition in _grid_runs():
        run = SimpleNamespace(dataset=dataset, condition=condition, seed=SEEDS[0])
        runs.append(
            {
                "dataset": dataset,
                "condition": condition,
                **get_trainset(run),
                # Only what the hours depend on: a learning-rate change does not rerun the check.
                "training": {
                    key: value
                    for key, value in get_training_params(run).items()
                    if key in COST_KEYS
                },
                "seeds": len(SEEDS),
            }
        )
    return runs
