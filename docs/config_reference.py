"""Render the README's configuration reference from schemas/config.schema.yaml and config.yaml.

`make docs` rewrites the block between the CONFIG-REFERENCE markers in README.md;
tests/test_docs.py fails when that block is stale.
"""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- CONFIG-REFERENCE:BEGIN -->", "<!-- CONFIG-REFERENCE:END -->"


def _resolve(node: dict, defs: dict) -> dict:
    """Inline `$ref` and `allOf` so a node carries all its properties."""
    if "$ref" in node:
        merged = dict(_resolve(defs[node["$ref"].split("/")[-1]], defs))
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return merged
    if "allOf" in node:
        merged, props = {}, {}
        for part in node["allOf"]:
            part = _resolve(part, defs)
            merged.update(part)
            props.update(part.get("properties", {}))
        merged.update({k: v for k, v in node.items() if k != "allOf"})
        merged["properties"] = {**props, **node.get("properties", {})}
        return merged
    return node


def _value(config: dict, path: list[str]):
    for key in path:
        if not isinstance(config, dict) or key not in config:
            return None
        config = config[key]
    return config


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _shown(value) -> str:
    if value is None or isinstance(value, dict):
        return ""
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return _cell(f"`{value}`")


def reference_rows(schema: dict, config: dict) -> list[str]:
    defs = schema.get("$defs", {})
    rows = []

    def walk(node: dict, path: list[str]) -> None:
        node = _resolve(node, defs)
        for key, sub in node.get("properties", {}).items():
            sub = _resolve(sub, defs)
            here = [*path, key]
            choices = [str(v).lower() if isinstance(v, bool) else str(v) for v in sub.get("enum", [])]
            kind = " \\| ".join(choices) if "enum" in sub else _cell(sub.get("type", ""))
            default = _shown(_value(config, here))
            rows.append(f"| `{'.'.join(here)}` | {kind} | {default} | {_cell(sub.get('description', ''))} |")
            walk(sub, here)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            extra = _resolve(extra, defs)
            if extra.get("properties"):
                walk(extra, [*path, "<name>"])

    walk(schema, [])
    return rows


def render() -> str:
    schema = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    header = "| key | type | paper config | meaning |\n|---|---|---|---|"
    return "\n".join([BEGIN, header, *reference_rows(schema, config), END])


def update_readme(readme: Path = ROOT / "README.md") -> bool:
    """Rewrite the reference block; return True if README.md changed."""
    text = readme.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + render() + text[stop:]
    if new != text:
        readme.write_text(new)
    return new != text


if __name__ == "__main__":
    changed = update_readme()
    print("README.md configuration reference", "updated" if changed else "up to date", file=sys.stderr)
