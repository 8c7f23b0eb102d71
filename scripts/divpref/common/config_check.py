"""Unknown config keys: every object of schemas/config.schema.yaml is closed, and a key it does not know is an
error naming the key, where it sits, and the closest valid key ("did you mean `learning_rate`?").

rules/common.smk calls `check_known_keys` before snakemake's own schema validation, whose message for an
unknown key ("Additional properties are not allowed") names neither the path nor an alternative.
"""

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import jsonschema

# Keywords that reject keys no `properties` entry (or `patternProperties` entry) of their schema names.
CLOSING_KEYWORDS = ("additionalProperties", "unevaluatedProperties")


@dataclass(frozen=True)
class UnknownKey:
    """A config key that its block does not define."""

    path: tuple[str, ...]  # the block's keys from the top, e.g. ("conditions", "bt-agg", "training")
    key: str
    valid: tuple[str, ...]  # the keys the block accepts, sorted

    @property
    def dotted(self) -> str:
        return ".".join((*self.path, self.key))

    @property
    def closest(self) -> str | None:
        matches = difflib.get_close_matches(self.key, self.valid, n=1, cutoff=0.6)
        return matches[0] if matches else None

    def message(self) -> str:
        block = ".".join(self.path) or "the top level"
        hint = f": did you mean `{self.closest}`?" if self.closest else ""
        return (
            f"unknown config key {self.key!r} in {block} ({self.dotted}){hint} "
            f"Valid keys there: {', '.join(self.valid)}."
        )


class UnknownConfigKeyError(ValueError):
    """One or more config keys that the schema does not define."""

    def __init__(self, unknown: list[UnknownKey]):
        self.unknown = unknown
        super().__init__("\n".join(item.message() for item in unknown))


def _resolve(node: dict, root: dict) -> dict:
    """The schema a local `$ref` ("#/$defs/<name>") points at."""
    target = root
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return target


def declared_keys(node: dict, root: dict) -> set[str]:
    """Every key `node` declares in `properties`, with those of its `$ref`, `allOf` and if/then/else parts
    (what `unevaluatedProperties` counts as evaluated)."""
    keys = set(node.get("properties", {}))
    parts = [node[name] for name in ("then", "else", "if") if isinstance(node.get(name), dict)]
    parts += node.get("allOf", [])
    if "$ref" in node:
        parts.append(_resolve(node, root))
    for part in parts:
        keys |= declared_keys(part, root)
    return keys


def _unknown_in(error: jsonschema.ValidationError, root: dict) -> Iterator[UnknownKey]:
    valid = declared_keys(error.schema, root)
    patterns = list(error.schema.get("patternProperties", {}))
    path = tuple(str(part) for part in error.absolute_path)
    for key in error.instance:
        if key not in valid and not any(re.search(p, key) for p in patterns):
            yield UnknownKey(path, str(key), tuple(sorted(valid)))


def unknown_keys(config: dict, schema: dict) -> list[UnknownKey]:
    """Every key of `config` that the closed block around it does not define, in config order."""
    validator = jsonschema.Draft202012Validator(schema)
    found: dict[tuple, UnknownKey] = {}
    for error in validator.iter_errors(config):
        for candidate in _walk(error):
            if candidate.validator in CLOSING_KEYWORDS and candidate.validator_value is False:
                for item in _unknown_in(candidate, schema):
                    found.setdefault((item.path, item.key), item)
    return sorted(found.values(), key=lambda item: _config_order(config, item))


def _walk(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    """An error and the errors nested in its context (those of allOf/oneOf/if branches)."""
    yield error
    for child in error.context or ():
        yield from _walk(child)


def _config_order(config: dict, item: UnknownKey) -> tuple:
    """Sort key: the position of each path element among its siblings in the config."""
    order, node = [], config
    for part in (*item.path, item.key):
        keys = list(node) if isinstance(node, dict) else []
        order.append(keys.index(part) if part in keys else len(keys))
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return tuple(order)


def check_known_keys(config: dict, schema: dict) -> None:
    """Raise UnknownConfigKeyError naming every key of `config` that `schema` does not define."""
    unknown = unknown_keys(config, schema)
    if unknown:
        raise UnknownConfigKeyError(unknown)
