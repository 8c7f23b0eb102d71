"""Helpers for tests that really run snakemake: run it under `timeout -k`, read the jobs a run or dry-run
prints, and compute which jobs lie downstream of others (the reference for "reruns exactly its
dependents")."""

import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
JOB_HEADER = re.compile(r"^(?P<local>local)?(?:rule|checkpoint) (?P<rule>\S+):$")
NOTHING_TO_BE_DONE = "Nothing to be done"


@dataclass(frozen=True)
class Job:
    """One job as snakemake prints it in a run or dry-run."""

    rule: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    wildcards: tuple[tuple[str, str], ...] = ()
    local: bool = False
    jobid: int | None = None
    reason: str = ""

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        """Identity across runs: the rule and its outputs (job ids differ between runs)."""
        return self.rule, self.outputs

    def wildcard(self, name: str) -> str | None:
        return dict(self.wildcards).get(name)


def parse_jobs(text: str) -> list[Job]:
    """Every job block (`rule x:` / `localrule x:` followed by indented fields) in snakemake's output."""
    jobs = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        header = JOB_HEADER.match(line.strip()) if not line.startswith(" ") else None
        if header is None:
            continue
        fields: dict[str, str] = {}
        for field_line in lines[index + 1 :]:
            if not field_line.startswith("    "):
                break
            name, _, value = field_line.strip().partition(": ")
            fields[name.rstrip(":")] = value
        jobs.append(
            Job(
                rule=header["rule"],
                outputs=_split_list(fields.get("output", "")),
                inputs=_split_list(fields.get("input", "")),
                wildcards=tuple(
                    tuple(item.split("=", 1)) for item in _split_list(fields.get("wildcards", ""))
                ),
                local=bool(header["local"]),
                jobid=int(fields["jobid"]) if fields.get("jobid", "").isdigit() else None,
                reason=fields.get("reason", ""),
            )
        )
    return jobs


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def depends_on(consumer: Job, producer: Job) -> bool:
    """True when `consumer` reads a file (or a file inside a folder) that `producer` writes."""
    return any(
        path == output or path.startswith(output.rstrip("/") + "/")
        for path in consumer.inputs
        for output in producer.outputs
    )


def downstream_closure(jobs: Iterable[Job], is_changed: Callable[[Job], bool]) -> set[tuple]:
    """Keys of the jobs selected by `is_changed` and of every job that depends on them, transitively."""
    jobs = list(jobs)
    selected = {job.key for job in jobs if is_changed(job)}
    frontier = [job for job in jobs if job.key in selected]
    while frontier:
        producer = frontier.pop()
        for consumer in jobs:
            if consumer.key not in selected and depends_on(consumer, producer):
                selected.add(consumer.key)
                frontier.append(consumer)
    return selected


def deep_merge(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied recursively (nested mappings merge, other values replace), the way
    snakemake merges config files and the way a profile's settings are overridden here."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def snakemake_command() -> list[str]:
    return [str(Path(sys.executable).with_name("snakemake"))]


def timed_snakemake_command(timeout: int, *args: str) -> list[str]:
    """snakemake with `args` under `timeout -k 10` (a hung run is killed, and says so by exit 124 or 137)."""
    return ["timeout", "-k", "10", str(timeout), *snakemake_command(), *args]


def run_snakemake(
    workdir: Path, *args: str, timeout: int = 900, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run snakemake in `workdir` under `timeout -k 10`, offline, capturing stdout and stderr together."""
    return subprocess.run(
        timed_snakemake_command(timeout, *args),
        cwd=workdir,
        env={**os.environ, **OFFLINE_ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def start_snakemake(workdir: Path, *args: str, log: Path, timeout: int = 900) -> subprocess.Popen:
    """Start snakemake in `workdir` like `run_snakemake`, without waiting: stdout and stderr go to `log`."""
    with log.open("w") as out:
        return subprocess.Popen(
            timed_snakemake_command(timeout, *args),
            cwd=workdir,
            env={**os.environ, **OFFLINE_ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def describe_failure(proc: subprocess.CompletedProcess, tail: int = 6000) -> str:
    return f"{' '.join(map(str, proc.args))} exited {proc.returncode}\n{proc.stdout[-tail:]}"
