"""How a job asks SLURM for GPUs (config `cluster.gpu_request`), and how many it asked for.

`gpus`: the resources `gpu=<n>` and `gpu_model=<model>`, which the executor plugin turns into
`sbatch --gpus=<model>:<n>`. `gres`: the one resource `gres=gpu:<model>:<n>` (`sbatch --gres=...`), for
clusters whose select plugin refuses `--gpus`. A job script reads the count back with `requested_gpus` either
way, so a GPU job that sees no GPU fails at once in both forms. Imported by rules/common.smk: no torch here.
"""

import re
from collections.abc import Mapping
from typing import Any

GPU_REQUESTS = ("gpus", "gres")
GRES = re.compile(r"gpu(?::(?P<model>[A-Za-z0-9_.]+))?:(?P<count>\d+)")


def gres_string(model: str, count: int) -> str:
    """The `gres` resource of `count` GPUs of `model`: gpu:<model>:<count>."""
    return f"gpu:{model}:{int(count)}"


def gpu_resources(request: str, model: str, count: int) -> dict[str, Any]:
    """The job resources that ask for `count` GPUs of `model` in form `request` (`gpus` or `gres`)."""
    if request not in GPU_REQUESTS:
        raise ValueError(f"config key cluster.gpu_request: {request!r} is not one of {list(GPU_REQUESTS)}")
    if request == "gres":
        return {"gres": gres_string(model, count)}
    return {"gpu": int(count), "gpu_model": model}


def requested_gpus(resources: Mapping[str, Any]) -> int:
    """GPUs a job asked for: its `gpu` resource, else the count in its `gres=gpu[:<model>]:<n>`, or 0."""
    gpu = resources.get("gpu", 0) or 0
    if int(gpu) > 0:
        return int(gpu)
    gres = str(resources.get("gres", "") or "")
    counts = [int(match["count"]) for match in GRES.finditer(gres)]
    return sum(counts)
