"""Condition settings are checked at workflow load: a clear error naming the config key, before any job."""

import pytest
import yaml
from conftest import copy_workflow, run_snakemake

pytestmark = pytest.mark.slow  # every test here dry-runs snakemake


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("settings"))


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        (
            {"likert-mp": {"method": "likert_classification", "labels": "all", "datasets": ["multipref"]}},
            "conditions.likert-mp: method 'likert_classification' needs Likert scores",
        ),
        ({"bt-rho": {"method": "bt", "labels": "agg", "rho": 0.5}}, "conditions.bt-rho.rho: method 'bt'"),
        ({"mv-bad": {"method": "mean_var", "labels": "all", "rho": "often"}}, "often"),
        ({"mv-one": {"method": "mean_var", "labels": "all", "rho": 1.0}}, "rho"),
        ({"mv-obj": {"method": "mean_var", "labels": "all", "objective": "mse"}}, "objective"),
    ],
)
def test_bad_condition_settings_fail_at_load_time(workdir, conditions, message):
    overlay = workdir / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"conditions": conditions}))
    proc = run_snakemake(workdir, "-n", "--configfile", str(overlay), check=False)
    assert proc.returncode != 0
    assert message in proc.stdout, proc.stdout[-3000:]


def test_valid_settings_plan_their_jobs(workdir):
    overlay = workdir / "overlay.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "conditions": {
                    "mv-fixed": {"method": "mean_var", "labels": "all", "rho": -0.3, "objective": "nll"},
                    "likert-agg": {
                        "method": "likert_classification",
                        "labels": "agg",
                        "datasets": ["helpsteer2"],
                    },
                },
                "splits": {"group_by": "pair"},
                "divergence": {"min_annotators": {"multipref": 4, "helpsteer2": None}},
            }
        )
    )
    proc = run_snakemake(workdir, "-n", "--configfile", str(overlay), check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "results/models/helpsteer2/likert-agg/seed0/best.json" in proc.stdout
    assert "results/models/multipref/mv-fixed/seed0/best.json" in proc.stdout
