"""`snakemake -n` on the paper config: the whole plan, no data, no network, under 2 s, no torch at parse time.

The rule graph drawn in docs/rulegraph.svg is the Snakefile's own.
"""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_dryrun", REPO / "bench" / "bench_dryrun.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_dryrun = _load_bench()


def expected_training_runs(config: dict) -> int:
    """Training runs of the condition grid: datasets of each condition (default: all) times seeds."""
    seeds = len(config["training"]["seeds"])
    all_datasets = list(config["datasets"])
    return sum(len(spec.get("datasets", all_datasets)) * seeds for spec in config["conditions"].values())


def test_planned_jobs_reads_the_job_stats_table():
    output = (
        "Building DAG of jobs...\nJob stats:\njob        count\n-------  -------\n"
        "download       2\ntrain         10\nall            1\ntotal         13\n\nReasons:\n"
    )
    assert bench_dryrun.planned_jobs(output) == {"download": 2, "train": 10, "all": 1}


def test_imported_heavy_modules_reads_importtime_lines():
    log = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        120 |   torch._C\n"
        "import time:        80 |         80 | polars\n"
        "import time:        50 |         50 |     transformers.utils\n"
    )
    assert bench_dryrun.imported_heavy_modules(log) == ["torch", "transformers"]


@pytest.fixture(scope="module")
def measurement() -> dict:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_dryrun.py"), "--repeat", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_dry_run_plans_the_whole_paper_grid_without_data(measurement):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    jobs = measurement["planned_jobs"]
    assert jobs["train"] == expected_training_runs(config)
    assert jobs["select_checkpoint"] == jobs["score"] == jobs["train"]
    hub_datasets = [name for name, spec in config["datasets"].items() if spec["source"] == "hub"]
    assert jobs.get("download", 0) == len(hub_datasets)
    assert jobs["all"] == 1
    # A dry-run writes no data: only snakemake's own bookkeeping folder may appear.
    assert set(measurement["files_created"]) <= {".snakemake"}


@pytest.mark.slow
def test_dry_run_imports_no_model_libraries(measurement):
    assert measurement["heavy_modules_imported"] == []


def rulegraph_edges_from_dot(dot: str) -> set[tuple[str, str]]:
    """(upstream rule, downstream rule) pairs of `snakemake --rulegraph` output (graphviz dot text)."""
    labels = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.MULTILINE))
    edges = re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.MULTILINE)
    return {(labels[src], labels[dst]) for src, dst in edges} | {(label, label) for label in labels.values()}


def rulegraph_edges_from_svg(svg: str) -> set[tuple[str, str]]:
    """The same pairs read back from the SVG that `dot -Tsvg` drew (node ids in <title>, rule in <text>)."""
    root = ElementTree.fromstring(svg)
    namespace = {"svg": "http://www.w3.org/2000/svg"}
    labels, edges = {}, set()
    for group in root.iter("{http://www.w3.org/2000/svg}g"):
        title = group.findtext("svg:title", namespaces=namespace)
        if group.get("class") == "node":
            labels[title] = group.findtext("svg:text", namespaces=namespace)
        elif group.get("class") == "edge":
            edges.add(tuple(title.split("->")))
    return {(labels[src], labels[dst]) for src, dst in edges} | {(label, label) for label in labels.values()}


def test_rulegraph_readers_agree_on_a_hand_drawn_graph():
    dot = (
        'digraph {\n\t0[label = "all", color = "0 0 0"];\n\t1[label = "train", color = "0 0 0"];\n\t1 -> 0\n}'
    )
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg"><g class="graph">'
        '<g id="node1" class="node"><title>0</title><text>all</text></g>'
        '<g id="node2" class="node"><title>1</title><text>train</text></g>'
        '<g id="edge1" class="edge"><title>1&#45;&gt;0</title></g></g></svg>'
    )
    expected = {("train", "all"), ("all", "all"), ("train", "train")}
    assert rulegraph_edges_from_dot(dot) == rulegraph_edges_from_svg(svg) == expected


@pytest.mark.slow
def test_readme_rulegraph_image_is_current():
    # docs/rulegraph.svg is drawn by `make rulegraph`; it must show the rules and edges the Snakefile has now.
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("snakemake")), "--rulegraph"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    image = REPO / "docs" / "rulegraph.svg"
    assert image.is_file(), "docs/rulegraph.svg is missing: run `make rulegraph`"
    assert rulegraph_edges_from_svg(image.read_text()) == rulegraph_edges_from_dot(proc.stdout), (
        "docs/rulegraph.svg is stale: run `make rulegraph`"
    )
