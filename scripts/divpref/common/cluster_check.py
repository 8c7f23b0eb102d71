"""cluster_check: the site settings (config `cluster:`) against what `sinfo` says, on the submit node, before
anything is submitted (rules/common.smk's `onstart`, where `sinfo` exists).

It checks that both partitions exist, that the GPU partition's nodes carry `gpu:<gpu_model>:<n>` in their
gres, and that `max_runtime_minutes` does not exceed either partition's time limit (MaxTime). A mismatch is a
ClusterCheckError naming the config key and quoting sinfo's lines. Imported by the Snakefile: no torch here.
"""

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

# One line per partition and node group: partition (default marked *), generic resources, time limit.
SINFO_COMMAND = ("sinfo", "--noheader", "--format=%P|%G|%l")
SINFO = " ".join(SINFO_COMMAND)
GPU_TYPE = re.compile(r"(?:^|,)gpu:(?P<model>[^:(),]+):\d+")
UNLIMITED = {"infinite", "unlimited"}


class ClusterCheckError(ValueError):
    """The site settings do not match the cluster."""


@dataclass(frozen=True)
class Partition:
    name: str
    gpu_models: frozenset[str]  # the types in its nodes' gres, gpu:<type>:<n>
    max_minutes: int | None  # its time limit; None = unlimited
    lines: tuple[str, ...]  # what sinfo printed for it


def time_limit_minutes(text: str) -> int | None:
    """A SLURM time limit as sinfo prints it ([days-]hours:minutes:seconds, minutes:seconds, or `infinite`),
    in minutes, rounded down (a job asking for that many minutes fits); None when unlimited."""
    text = text.strip()
    if text.lower() in UNLIMITED:
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if match is None:
        raise ValueError(f"not a SLURM time limit: {text!r}")
    days, first, second, third = match.groups()
    if days is not None or third is not None:  # days-hours[:minutes[:seconds]] or hours:minutes:seconds
        hours, minutes = int(first), int(second or 0)
    else:  # minutes[:seconds]
        hours, minutes = 0, int(first)
    return (int(days or 0) * 24 + hours) * 60 + minutes


def parse_sinfo(text: str) -> dict[str, Partition]:
    """`sinfo --noheader --format=%P|%G|%l` output as {partition: Partition} (node groups merged)."""
    groups: dict[str, dict] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, gres, limit = (field.strip() for field in line.split("|"))
        name = name.rstrip("*")
        group = groups.setdefault(name, {"models": set(), "limit": time_limit_minutes(limit), "lines": []})
        group["models"] |= {match["model"] for match in GPU_TYPE.finditer(gres)}
        group["lines"].append(line.strip())
    return {
        name: Partition(name, frozenset(group["models"]), group["limit"], tuple(group["lines"]))
        for name, group in groups.items()
    }


def _quoted(lines) -> str:
    return "\n".join(f"    {line}" for line in lines)


def site_problems(cluster: Mapping, sinfo_text: str) -> list[str]:
    """Every mismatch between the site settings `cluster` and the cluster `sinfo_text` describes."""
    partitions = parse_sinfo(sinfo_text)
    said = f"`{SINFO}` said:\n{_quoted(sinfo_text.strip().splitlines())}"
    problems = []
    for key in ("cpu_partition", "gpu_partition"):
        if cluster[key] not in partitions:
            problems.append(
                f"config key cluster.{key}: partition {cluster[key]!r} does not exist "
                f"(partitions: {', '.join(sorted(partitions))}); {said}"
            )
    gpu = partitions.get(cluster["gpu_partition"])
    if gpu is not None and cluster["gpu_model"] not in gpu.gpu_models:
        models = ", ".join(sorted(gpu.gpu_models)) or "none"
        problems.append(
            f"config key cluster.gpu_model: no node of partition {gpu.name!r} has GPUs of type "
            f"{cluster['gpu_model']!r} in its gres (types there: {models}); "
            f"`{SINFO}` said:\n{_quoted(gpu.lines)}"
        )
    limit = cluster["max_runtime_minutes"]
    for key in ("gpu_partition", "cpu_partition"):
        partition = partitions.get(cluster[key])
        if partition is not None and partition.max_minutes is not None and limit > partition.max_minutes:
            problems.append(
                f"config key cluster.max_runtime_minutes: {limit} minutes exceeds the time limit of "
                f"partition {partition.name!r} ({partition.max_minutes} minutes); set it to at most "
                f"{partition.max_minutes}; `{SINFO}` said:\n{_quoted(partition.lines)}"
            )
    return problems


def run_sinfo(env: Mapping[str, str] | None = None, timeout: float = 30) -> str:
    """What sinfo says about every partition; a ClusterCheckError when it fails."""
    try:
        proc = subprocess.run(
            SINFO_COMMAND, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        raise ClusterCheckError(f"cluster_check: `{SINFO}` gave no answer in {timeout} s") from None
    if proc.returncode != 0:
        raise ClusterCheckError(
            f"cluster_check: `{SINFO}` failed (exit {proc.returncode}): {proc.stderr.strip()}"
        )
    return proc.stdout


def cluster_check(cluster: Mapping, env: Mapping[str, str] | None = None) -> str | None:
    """Check the site settings against sinfo; the summary line, or None where sinfo does not exist.

    Raises ClusterCheckError listing every mismatch.
    """
    if shutil.which("sinfo", path=(env or {}).get("PATH")) is None:
        return None
    sinfo_text = run_sinfo(env)
    problems = site_problems(cluster, sinfo_text)
    if problems:
        raise ClusterCheckError(
            "cluster_check: the site settings do not match this cluster:\n" + "\n".join(problems)
        )
    partitions = parse_sinfo(sinfo_text)
    limits = [partitions[cluster[key]].max_minutes for key in ("cpu_partition", "gpu_partition")]
    shown = ", ".join("unlimited" if limit is None else f"{limit} min" for limit in limits)
    return (
        f"cluster_check: partitions {cluster['cpu_partition']!r} (CPU) and {cluster['gpu_partition']!r} "
        f"(GPU, {cluster['gpu_model']} in gres) exist; max_runtime_minutes {cluster['max_runtime_minutes']} "
        f"is within their time limits ({shown})"
    )
