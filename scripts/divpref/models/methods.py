"""Reward-model training methods: the registry, and the one module a method (built-in or yours) imports from.

A method (:class:`RewardMethod`, defined with its shared helpers in :mod:`divpref.models.reward_method`
and re-exported here) turns the per-response head outputs of a pair into an unreduced per-row loss, dev
metrics and score-file columns. The built-in ``bt`` and ``mse`` (:mod:`divpref.models.builtin_methods`) are
registered when this module is imported.

Extending: define a :class:`RewardMethod` in your own module and call :func:`register` at import time.
Modules named in :data:`EXTENSION_MODULES` are imported by :func:`get_method` / :func:`method_names`,
so their methods are available wherever the registry is used. A module outside the package is named by its
file path in the config key ``method_modules`` and imported by :func:`load_method_modules` (the Snakefile at
parse time, and every rule script that looks a method up), so adding a method never touches the workflow.

torch is imported inside the functions only, so this module is cheap to import at Snakefile parse time.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from divpref.models.builtin_methods import BUILTIN_SCALAR_METHODS
from divpref.models.reward_method import (
    LIST_SCORE_COLUMNS,
    OPTIONAL_SCORE_COLUMNS,
    ROW_WEIGHT,
    SCORE_COLUMNS,
    RewardMethod,
    Targets,
    finite_float_column,
    mean_loss,
    optional_row_weight,
    pair_keys,
    require_columns,
    row_weights,
    scalar_rewards,
    scalar_score_columns,
    scores_frame,
    weighted_loss_sum,
)

__all__ = [
    "EXTENSION_MODULES",
    "LIST_SCORE_COLUMNS",
    "OPTIONAL_SCORE_COLUMNS",
    "REGISTRY",
    "ROW_WEIGHT",
    "SCORE_COLUMNS",
    "RewardMethod",
    "Targets",
    "finite_float_column",
    "get_method",
    "load_method_modules",
    "mean_loss",
    "method_names",
    "optional_row_weight",
    "pair_keys",
    "register",
    "require_columns",
    "row_weights",
    "scalar_rewards",
    "scalar_score_columns",
    "scores_frame",
    "weighted_loss_sum",
]

EXTENSION_MODULES = ("divpref.models.distributional", "divpref.models.likert")
"""Modules that register further methods (imported lazily, skipped if absent)."""


REGISTRY: dict[str, RewardMethod] = {}
_extensions_loaded = False


def register(method: RewardMethod) -> RewardMethod:
    """Add ``method`` to the registry (re-registering the identical object is a no-op)."""
    existing = REGISTRY.get(method.name)
    if existing is not None and existing is not method:
        raise ValueError(f"reward method {method.name!r} is already registered")
    if method.selection_metric in ("", None):
        raise ValueError(f"reward method {method.name!r} needs a selection_metric")
    REGISTRY[method.name] = method
    return method


def _load_extensions() -> None:
    global _extensions_loaded
    if _extensions_loaded:
        return
    _extensions_loaded = True
    for module in EXTENSION_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:  # the extension exists but one of ITS imports is missing
                raise


_loaded_modules: dict[Path, ModuleType] = {}


def load_method_modules(paths: Sequence[str | Path]) -> list[ModuleType]:
    """Import each Python file of ``paths`` once (config ``method_modules``); they register their methods.

    A file is keyed by its resolved path, so the Snakefile and a rule script may both load it. Errors name
    the file.
    """
    modules = []
    for path in paths:
        resolved = Path(path).expanduser().resolve()
        if resolved not in _loaded_modules:
            if not resolved.is_file():
                raise FileNotFoundError(f"config key method_modules: {path}: no such file")
            name = "divpref_method_module_" + "".join(c if c.isalnum() else "_" for c in str(resolved))
            spec = importlib.util.spec_from_file_location(name, resolved)
            if spec is None or spec.loader is None:
                raise ImportError(f"config key method_modules: {path}: not an importable Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception:
                del sys.modules[name]
                raise
            _loaded_modules[resolved] = module
        modules.append(_loaded_modules[resolved])
    return modules


def get_method(name: str, options: Mapping[str, Any] | None = None) -> RewardMethod:
    """The registered method ``name``, configured with ``options`` if given; ``KeyError`` lists the known.

    ``options`` are resolved condition settings (see :mod:`divpref.models.method_options`).
    """
    _load_extensions()
    if name not in REGISTRY:
        raise KeyError(f"unknown reward method {name!r}; known: {sorted(REGISTRY)}")
    method = REGISTRY[name]
    if not options:
        return method
    if method.configure is None:
        raise ValueError(f"reward method {name!r} takes no settings, got {dict(options)}")
    return method.configure(options)


def method_names() -> list[str]:
    """Names of all registered methods, sorted."""
    _load_extensions()
    return sorted(REGISTRY)


for _builtin in BUILTIN_SCALAR_METHODS:
    register(_builtin)
