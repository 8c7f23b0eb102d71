"""How long `snakemake -n` takes on the paper config, with no data present and no network.

    .venv/bin/python bench/bench_dryrun.py [--repeat 5] [--json]

The workflow (no results, no resources) is copied to a temporary folder, and each dry-run runs there in a
network namespace of its own (`unshare --net`, when permitted and no local SLURM cluster is configured;
otherwise only the offline variables are set, and the report says so). Side by side: the bare
`snakemake --version` start-up, which no workflow can avoid, and the full dry-run (parse the Snakefile,
validate the config, build the whole DAG, print the plan).
Wall time depends on what else the machine runs, so the CPU time (user + sys) of the process is reported too;
on an idle machine the two agree. The budgets: 2 s of CPU, and at most 1.5x the CPU time of the start-up;
parsing must not import torch or transformers, which the `-X importtime` pass checks. The runs share one
copy, as repeated dry runs in one checkout do, so runs 2-5 find the parse cache of the library fingerprints
(.snakemake/divpref-code-facts.json) that run 1 wrote; the report gives run 1's figure too.
"""

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "rules", "scripts", "schemas", "envs", "report", "profiles", "config.yaml"]
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
HEAVY_MODULES = ("torch", "transformers", "peft", "bitsandbytes", "trl", "datasets")
BUDGET_SECONDS = 2.0
BUDGET_RATIO = 1.5


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow definition, without any data or snakemake state, into `dest`."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            shutil.copy2(source, dest / name)
    return dest


def network_isolation() -> tuple[list[str], str]:
    """`unshare --net` when this user may create a network namespace, and a description of the isolation.

    Not while a SLURM cluster is configured on this machine: snakemake's SLURM plugin asks the controller for
    MinJobAge (`scontrol show config`) whenever the SLURM tools are installed, and a controller on localhost
    is unreachable from a new network namespace, which stalls every call for SLURM's 10 s message timeout.
    """
    if os.environ.get("SLURM_CONF") or Path("/etc/slurm/slurm.conf").exists():
        return [], "offline variables only (a local SLURM controller must stay reachable)"
    unshare = shutil.which("unshare")
    if (
        unshare
        and subprocess.run([unshare, "--net", "true"], capture_output=True, check=False).returncode == 0
    ):
        return [unshare, "--net"], "unshare --net (no network)"
    return [], "offline variables only (unshare not permitted)"


def timed_run(command: list[str], workdir: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run `command`; return its wall seconds, its CPU seconds (user + sys of the children) and the result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=workdir, env={**os.environ, **OFFLINE_ENV}, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def planned_jobs(output: str) -> dict[str, int]:
    """The `Job stats` table of a dry-run as {rule: count}, without the `total` line."""
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.fullmatch(r"(\S+)\s+(\d+)", line.strip())
        if match is None:
            break
        counts[match[1]] = int(match[2])
    counts.pop("total", None)
    return counts


def imported_heavy_modules(importtime_log: str) -> list[str]:
    """Top-level heavy modules that a `python -X importtime` log shows as imported."""
    imported = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and "|" in line:
            module = line.rsplit("|", 1)[1].strip()
            imported.add(module.split(".")[0])
    return sorted(imported & set(HEAVY_MODULES))


def measure(repeat: int) -> dict:
    """Time `snakemake --version` and `snakemake -n` `repeat` times each in a fresh copy of the workflow."""
    isolation, network = network_isolation()
    snakemake = [sys.executable, "-m", "snakemake"]
    with tempfile.TemporaryDirectory(prefix="bench_dryrun_") as tmp:
        workdir = copy_workflow(Path(tmp))
        startup = [timed_run([*isolation, *snakemake, "--version"], workdir) for _ in range(repeat)]
        dryruns = [timed_run([*isolation, *snakemake, "-n"], workdir) for _ in range(repeat)]
        for _, _, proc in startup + dryruns:
            if proc.returncode != 0:
                command = " ".join(proc.args)
                raise RuntimeError(
                    f"{command} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                )
        importtime = subprocess.run(
            [*isolation, sys.executable, "-X", "importtime", "-m", "snakemake", "-n"],
            cwd=workdir,
            env={**os.environ, **OFFLINE_ENV},
            capture_output=True,
            text=True,
            check=False,
        )
        left_behind = sorted(path.name for path in workdir.iterdir() if path.name not in WORKFLOW_FILES)
    output = dryruns[0][2].stdout + dryruns[0][2].stderr
    return {
        "network": network,
        "startup_wall_s": [round(wall, 3) for wall, _, _ in startup],
        "startup_cpu_s": [round(cpu, 3) for _, cpu, _ in startup],
        "dryrun_wall_s": [round(wall, 3) for wall, _, _ in dryruns],
        "dryrun_cpu_s": [round(cpu, 3) for _, cpu, _ in dryruns],
        "planned_jobs": planned_jobs(output),
        "heavy_modules_imported": imported_heavy_modules(importtime.stderr),
        "files_created": left_behind,
        "budget_s": BUDGET_SECONDS,
    }


def report(result: dict) -> str:
    startup_wall, dry_wall = min(result["startup_wall_s"]), min(result["dryrun_wall_s"])
    startup_cpu, dry_cpu = min(result["startup_cpu_s"]), min(result["dryrun_cpu_s"])
    jobs = result["planned_jobs"]
    rounds = len(result["dryrun_wall_s"])
    median_wall = statistics.median(result["dryrun_wall_s"])
    lines = [
        f"snakemake -n on the paper config, no data, {result['network']}; best of {rounds}:",
        f"{'':28}{'wall s':>9}{'cpu s':>9}{'vs start-up':>13}",
        f"{'snakemake --version':28}{startup_wall:>9.2f}{startup_cpu:>9.2f}{1:>12.1f}x",
        f"{'snakemake -n (whole plan)':28}{dry_wall:>9.2f}{dry_cpu:>9.2f}{dry_cpu / startup_cpu:>12.1f}x",
        f"planned: {sum(jobs.values())} jobs in {len(jobs)} rules ({jobs.get('train', 0)} train)",
        f"heavy modules imported at parse time: {', '.join(result['heavy_modules_imported']) or 'none'}",
        (
            f"budget {result['budget_s']:.1f} s: {'met' if dry_cpu < result['budget_s'] else 'MISSED'} "
            f"(cpu time; wall median {median_wall:.2f} s on this machine's current load)"
        ),
        (
            f"budget {BUDGET_RATIO:.1f}x start-up: "
            f"{'met' if dry_cpu <= BUDGET_RATIO * startup_cpu else 'MISSED'} (cpu time, best of {rounds}; "
            f"first run, parse cache cold: {result['dryrun_cpu_s'][0]:.2f} s)"
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the raw measurements as JSON")
    args = parser.parse_args()
    result = measure(args.repeat)
    print(json.dumps(result, indent=1) if args.json else report(result))


if __name__ == "__main__":
    main()
