"""Strict config: every block of schemas/config.schema.yaml rejects a key it does not define, and the error
names the key, its path and the closest valid key (divpref.common.config_check)."""

import copy
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from divpref.common.config_check import (
    UnknownConfigKeyError,
    UnknownKey,
    check_known_keys,
    declared_keys,
    unknown_keys,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
PAPER_CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
A_CONDITION = "bt-agg"
A_PRETRAINED_MODEL = {"name_or_path": "resources/backbones/tiny-rm", "build": {"reward_model": True}}

# (where, typo, the key it was meant to be): one typo in every block that used to accept any key, at the top
# level and inside a condition, plus the top level itself.
TYPOS = [
    (("training",), "learning_rat", "learning_rate"),
    (("conditions", A_CONDITION, "training"), "learning_rat", "learning_rate"),
    (("model",), "load_in_8bits", "load_in_8bit"),
    (("model", "lora"), "dropuot", "dropout"),
    (("model", "build"), "hidden_sise", "hidden_size"),
    (("conditions", "rm", "model", "build"), "reward_modle", "reward_model"),
    (("evaluation",), "bootstrap_sample", "bootstrap_samples"),
    (("taxonomy",), "sheet_sise", "sheet_size"),
    ((), "trainig", "training"),
]


def with_key(config: dict, path: tuple[str, ...], key: str, value=1) -> dict:
    config = copy.deepcopy(config)
    config["conditions"]["rm"] = {"method": "pretrained", "model": copy.deepcopy(A_PRETRAINED_MODEL)}
    config["model"].setdefault("build", {})
    config["conditions"][A_CONDITION].setdefault("training", {})
    node = config
    for part in path:
        node = node[part]
    node[key] = value
    return config


def test_the_paper_config_and_the_overlays_have_no_unknown_keys():
    assert unknown_keys(PAPER_CONFIG, SCHEMA) == []
    assert unknown_keys(with_key(PAPER_CONFIG, ("model", "build"), "seed", 0), SCHEMA) == []


@pytest.mark.parametrize(("path", "typo", "meant"), TYPOS, ids=[".".join((*p, t)) for p, t, _ in TYPOS])
def test_a_typo_in_each_block_names_the_key_its_path_and_the_closest_key(path, typo, meant):
    config = with_key(PAPER_CONFIG, path, typo)
    # The plain schema rejects it too (snakemake's own validation), so no block is open any more...
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(config)
    # ...and the error names the key, where it sits and the key that was meant.
    with pytest.raises(UnknownConfigKeyError) as raised:
        check_known_keys(config, SCHEMA)
    [unknown] = raised.value.unknown
    assert (unknown.path, unknown.key, unknown.closest) == (path, typo, meant)
    message = str(raised.value)
    assert f"{'.'.join((*path, typo))}" in message
    assert f"did you mean `{meant}`?" in message
    assert meant in unknown.valid


def test_the_top_level_training_block_accepts_seeds_but_a_condition_does_not():
    # `seeds` is declared beside the shared training keys (allOf + unevaluatedProperties), not inside them.
    [unknown] = unknown_keys(with_key(PAPER_CONFIG, ("conditions", A_CONDITION, "training"), "seeds"), SCHEMA)
    assert unknown.dotted == f"conditions.{A_CONDITION}.training.seeds"
    assert "seeds" not in unknown.valid and "learning_rate" in unknown.valid


def test_every_unknown_key_is_reported_in_config_order():
    config = with_key(with_key(PAPER_CONFIG, ("evaluation",), "seeed"), ("training",), "bacth_size")
    assert list(config).index("training") < list(config).index("evaluation")
    unknown = unknown_keys(config, SCHEMA)
    assert [(item.dotted, item.closest) for item in unknown] == [
        ("training.bacth_size", "batch_size"),
        ("evaluation.seeed", "seed"),
    ]
    assert str(UnknownConfigKeyError(unknown)).splitlines() == [item.message() for item in unknown]


def test_a_key_far_from_every_valid_key_gets_no_guess_but_the_valid_keys():
    item = UnknownKey(("model", "lora"), "rank", ("alpha", "dropout", "r", "target_modules"))
    assert item.closest is None
    assert item.message() == (
        "unknown config key 'rank' in model.lora (model.lora.rank) Valid keys there: alpha, dropout, r, "
        "target_modules."
    )


def test_declared_keys_follow_refs_and_allof():
    root = {
        "$defs": {"base": {"properties": {"a": {}, "b": {}}}},
        "properties": {"x": {"allOf": [{"$ref": "#/$defs/base"}], "properties": {"c": {}}}},
    }
    assert declared_keys(root["properties"]["x"], root) == {"a", "b", "c"}
    assert declared_keys({"$ref": "#/$defs/base"}, root) == {"a", "b"}


def test_maps_keyed_by_name_stay_open():
    # Dataset, condition, judge and flag-set names are the user's own: only their entries are closed.
    config = copy.deepcopy(PAPER_CONFIG)
    config["datasets"]["my_data"] = {"source": "data/my.csv", "format": "long"}
    config["taxonomy"]["filled_sheets"] = {"my_data": ["sheet.csv"]}
    assert unknown_keys(config, SCHEMA) == []
    config["datasets"]["my_data"]["fromat"] = "long"
    assert [item.dotted for item in unknown_keys(config, SCHEMA)] == ["datasets.my_data.fromat"]


def test_snakemake_stops_at_a_typo_with_that_message(tmp_path):
    overlay = tmp_path / "typo.yaml"
    overlay.write_text(yaml.safe_dump({"conditions": {A_CONDITION: {"training": {"learning_rat": 1e-4}}}}))
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("snakemake")), "-n", "-q", "--configfile", str(overlay)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert (
        f"unknown config key 'learning_rat' in conditions.{A_CONDITION}.training "
        f"(conditions.{A_CONDITION}.training.learning_rat): did you mean `learning_rate`?"
    ) in output
    assert "Job stats:" not in output  # nothing was planned
