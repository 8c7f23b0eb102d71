"""The CI-size run: Table 2 covers every condition and subset; the HTML report renders in Chromium."""

import base64
import html as html_lib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import run_snakemake

from divpref.common.constants import SUBSETS
from divpref.evaluation.metrics import METRICS
from divpref.evaluation.reporting import config_html, config_yaml
from divpref.flagging.flags import UNFLAGGED

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPORTED = {
    "results/tables/table2.html": "text/html",
    "results/tables/table2.csv": "text/csv",
    "results/tables/divergence.html": "text/html",
    "results/tables/divergence.csv": "text/csv",
    "results/plots/score_distributions.png": "image/png",
    "results/plots/divergence_rates.png": "image/png",
    "results/plots/decisiveness_vs_agreement.png": "image/png",
    "results/report/config_used.html": "text/html",
    "results/tables/judge.csv": "text/csv",
    "results/plots/judge_winner_rate.png": "image/png",
    "results/tables/judge_bias.csv": "text/csv",
    "results/plots/judge_bias.png": "image/png",
    "results/tables/mitigation.md": "text/markdown",
}
SCREENSHOT_DIR_ENV = "DIVPREF_REPORT_SCREENSHOTS"  # set it to keep the screenshots for a look


def merged_config(workdir: Path) -> dict:
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    overlay = yaml.safe_load((workdir / "tests/config/ci.yaml").read_text())

    def merge(base, update):
        for key, value in update.items():
            base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
        return base

    return merge(config, overlay)


def test_config_html_escapes_and_keeps_order():
    config = {"b": 1, "a": {"note": "<x & y>"}}
    assert config_yaml(config).splitlines()[0] == "b: 1"
    page = config_html(config)
    assert "&lt;x &amp; y&gt;" in page and "<x & y>" not in page


@pytest.mark.slow
def test_table2_has_every_condition_and_subset(ci_run):
    config = merged_config(ci_run)
    table = pl.read_csv(ci_run / "results/tables/table2.csv", schema_overrides={"seed": pl.String})
    assert table.columns == [
        "dataset",
        "method",
        "labels",
        "seed",
        "subset",
        "n",
        "metric",
        "value",
        "ci_low",
        "ci_high",
    ]
    datasets = list(config["datasets"])
    expected = set()
    for spec in config["conditions"].values():
        if spec["method"] in METRICS:
            for dataset in spec.get("datasets", datasets):
                # The flag dataset's rows add the unflagged test pairs (the mitigation, re-evaluated).
                extra = (UNFLAGGED,) if dataset == config["flag"]["dataset"] else ()
                for seed in config["training"]["seeds"]:
                    for subset in (*SUBSETS, *extra):
                        for metric in METRICS[spec["method"]]:
                            expected.add((dataset, spec["method"], spec["labels"], str(seed), subset, metric))
    found = set(table.select("dataset", "method", "labels", "seed", "subset", "metric").iter_rows())
    assert found == expected
    # Subset sizes agree with the test set; non-empty subsets have a finite value inside its interval.
    for dataset in datasets:
        test = pl.read_parquet(ci_run / f"results/{dataset}/test.parquet")
        sizes = dict(table.filter(pl.col("dataset") == dataset).select("subset", "n").unique().iter_rows())
        assert sizes["all"] == test.height
        assert sizes["diverging"] == test.filter(pl.col("agreement") == "diverging").height
        assert (
            sizes["diverging_substantial"]
            == test.filter(pl.col("substantial") & (pl.col("agreement") == "diverging")).height
        )
    filled = table.filter(pl.col("n") > 0)
    assert (
        filled.filter(
            ~((pl.col("ci_low") <= pl.col("value") + 1e-12) & (pl.col("value") <= pl.col("ci_high") + 1e-12))
        ).height
        == 0
    )
    markdown = (ci_run / "results/tables/table2.md").read_text()
    assert (
        "| Subset | MP # Ex. | MP BT-Agg | MP BT-All | HS2 # Ex. | HS2 BT-Agg | HS2 BT-All "
        "| HS2 MSE-Agg | HS2 MSE-All |" in markdown
    )
    divergence = pl.read_csv(ci_run / "results/tables/divergence.csv")
    assert set(divergence["dataset"]) == set(datasets)


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required under CI=true (Debian package `chromium`)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return binary


def _run_chromium(binary: str, profile: Path, *args: str) -> str:
    cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


# Injected into a copy of the report: shows each result through the report's own app.setView (what a click on
# a result does), waits for it to render, and writes what the browser shows into <pre id="probe">.
PROBE_SCRIPT = """
<script>
window.addEventListener("load", () => setTimeout(async () => {
  const probe = {categories: Object.keys(categories), shown: {}};
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  for (const [path, entry] of Object.entries(results)) {
    const mime = entry.mime_type;
    const kind = mime.startsWith("image/") ? "img" : (mime === "text/html" ? "html" : null);
    if (kind === null) { continue; }
    app.setView({content: kind, contentPath: entry.data_uri, resultPath: path});
    await sleep(500);
    if (kind === "img") {
      const img = Array.from(document.querySelectorAll("img")).find((i) => i.src === entry.data_uri);
      probe.shown[path] = img
        ? {width: img.naturalWidth, height: img.naturalHeight, complete: img.complete} : null;
    } else {
      const frame = Array.from(document.querySelectorAll("iframe")).find((f) => f.src === entry.data_uri);
      probe.shown[path] = frame ? {iframe: true} : null;
    }
  }
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(probe);
  document.body.appendChild(pre);
}, 1000));
</script>
"""

# Shows one result, for a screenshot.
SHOW_SCRIPT = """
<script>
window.addEventListener("load", () => setTimeout(() => {
  const entry = results[%(path)s];
  app.setView({content: %(kind)s, contentPath: entry.data_uri, resultPath: %(path)s});
}, 1000));
</script>
"""


def _inject(html: str, script: str) -> str:
    """``html`` with ``script`` before the LAST closing body tag (embedded libraries contain others)."""
    head, tag, tail = html.rpartition("</body>")
    assert tag, "report has no </body>"
    return head + script + tag + tail


def _embedded_json(html: str, variable: str) -> dict:
    match = re.search(rf'<script id="{variable}">\s*var {variable} = (.*?);\s*</script>', html, flags=re.S)
    assert match, f"report has no `var {variable}`"
    return json.loads(match.group(1))


def _decode(data_uri: str) -> bytes:
    return base64.b64decode(data_uri.split("base64,", 1)[1])


@pytest.mark.slow
def test_html_report_renders_tables_images_and_config(ci_run, tmp_path):
    chromium = _chromium()
    report = tmp_path / "report.html"
    run_snakemake(ci_run, "--report", str(report), timeout=600)
    html = report.read_text()

    # Self-contained: no script, stylesheet or image is fetched from elsewhere.
    assert not re.search(r"<(script|img)[^>]+src=[\"']https?:", html)
    assert not re.search(r"<link[^>]+href=[\"']https?:", html)

    results = _embedded_json(html, "results")
    for path, mime in REPORTED.items():
        assert path in results, f"{path} is not a report() output; reported: {sorted(results)}"
        assert results[path]["mime_type"] == mime
        assert results[path]["caption"].strip(), f"{path} has no caption"
        assert results[path]["data_uri"].startswith(f"data:{mime}")
    assert _decode(results["results/plots/score_distributions.png"]["data_uri"]).startswith(b"\x89PNG")
    table2 = _decode(results["results/tables/table2.html"]["data_uri"]).decode()
    assert "<table>" in table2 and "Diverging (substantial)" in table2 and "HS2 MSE-All" in table2
    config_page = _decode(results["results/report/config_used.html"]["data_uri"]).decode()
    assert "bootstrap_samples: 200" in config_page  # the CI overlay's value, so the merged config is shown
    assert "(200 resamples)" in results["results/tables/table2.html"]["caption"]  # captions see the config

    probe_page = tmp_path / "probe.html"
    probe_page.write_text(_inject(html, PROBE_SCRIPT))
    dom = _run_chromium(chromium, tmp_path / "profile-probe", "--dump-dom", probe_page.as_uri())
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, flags=re.S)
    assert match, f"the report's scripts did not run; DOM starts {dom[:500]!r}"
    probe = json.loads(html_lib.unescape(match.group(1)))
    assert {"Table 2", "Plots", "Divergence", "Taxonomy", "Configuration"} <= set(probe["categories"])
    for path, mime in REPORTED.items():
        if mime == "image/png":
            shown = probe["shown"][path]
            assert shown and shown["complete"] and shown["width"] > 600 and shown["height"] > 300, (
                path,
                shown,
            )
        elif mime == "text/html":
            assert probe["shown"][path] == {"iframe": True}, path

    # Screenshots of a figure and of Table 2 as the report shows them.
    keep = Path(os.environ.get(SCREENSHOT_DIR_ENV, tmp_path))
    keep.mkdir(parents=True, exist_ok=True)
    for name, path, kind in (
        ("figure", "results/plots/score_distributions.png", "img"),
        ("table2", "results/tables/table2.html", "html"),
    ):
        page = tmp_path / f"show-{name}.html"
        page.write_text(_inject(html, SHOW_SCRIPT % {"path": json.dumps(path), "kind": json.dumps(kind)}))
        shot = keep / f"report-{name}.png"
        _run_chromium(
            chromium,
            tmp_path / f"profile-{name}",
            f"--screenshot={shot}",
            "--window-size=1400,1000",
            page.as_uri(),
        )
        image = shot.read_bytes()
        assert image.startswith(b"\x89PNG") and len(image) > 20_000, f"{shot} looks blank"
