"""The README's configuration reference is generated from the schema and must not go stale."""

import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load_generator():
    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "docs" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_config_reference_is_current():
    generator = _load_generator()
    assert generator.render() in (ROOT / "README.md").read_text(), "run `make docs` to refresh README.md"


def test_reference_lists_every_key_of_the_paper_config():
    generator = _load_generator()
    rendered = generator.render()

    def keys(node, prefix=""):
        for key, value in node.items():
            path = f"{prefix}{key}"
            yield path
            if isinstance(value, dict) and key not in ("conditions", "filled_sheets"):
                yield from keys(value, path + ".")

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    missing = [key for key in keys(config) if f"| `{key}` |" not in rendered]
    assert not missing, f"config keys without a schema description: {missing}"


def _condition_schema() -> dict:
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    return schema["properties"]["conditions"]["additionalProperties"]


def test_the_schemas_method_and_label_names_are_the_constants():
    # The schema is JSON Schema and cannot import divpref.common.constants: it must spell the same names.
    from divpref.common.constants import BUILTIN_METHODS, LABEL_SCHEMES, PRETRAINED

    condition = _condition_schema()
    assert condition["if"]["properties"]["method"]["const"] == PRETRAINED
    assert tuple(condition["properties"]["labels"]["enum"]) == LABEL_SCHEMES
    described = condition["properties"]["method"]["description"]
    named = re.findall(r"\b([a-z][a-z_]*) \(", described)
    assert named == [*BUILTIN_METHODS, PRETRAINED], f"the method description names {named}"
