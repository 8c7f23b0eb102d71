"""Fingerprints of the library code a rule script runs, for snakemake's `params` rerun trigger.

A rule's script is seen by snakemake's `code` trigger; the divpref modules it imports are not. Each rule
therefore carries ``library_fingerprint(script)`` as a param: a hash over the modules the script uses,
transitively, of each module's syntax tree without docstrings. Comments and formatting are not in the tree,
docstrings are taken out, so only a change of the code itself changes the fingerprint and reruns the rule.
Torch-free and cheap: the Snakefile calls it at parse time. Parsing every module is most of a dry run's
own work, so the Snakefile keeps what a file's code yields (the dotted names it mentions and its hash) in a
small cache file keyed by the sha256 of the file's bytes (:func:`use_disk_cache`): a file is parsed again
exactly when its bytes, this module's own code or the Python version change, and a lost or corrupt cache only
costs the parsing.
"""

import ast
import atexit
import functools
import hashlib
import json
import os
import sys
from pathlib import Path

PACKAGE = "divpref"


def _is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def code_tree(source: str, filename: str = "<source>") -> ast.Module:
    """The syntax tree of ``source`` without docstrings (of the module, classes, functions and attributes).

    A bare string statement has no effect, wherever it stands; a body left empty gets a ``pass``.
    """
    tree = ast.parse(source, filename=filename)
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and any(_is_docstring(child) for child in body):
                kept = [child for child in body if not _is_docstring(child)]
                setattr(node, field, kept or ([ast.Pass()] if field == "body" else []))
    return tree


def code_hash(source: str, filename: str = "<source>") -> str:
    """sha256 of :func:`code_tree` (line numbers and comments are not part of it)."""
    return _tree_hash(code_tree(source, filename))


def _tree_hash(tree: ast.Module) -> str:
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def library_module(package: Path, dotted: str) -> str | None:
    """The module file (relative to ``package``, no suffix) that a dotted name denotes, or None.

    ``divpref.x`` is ``x.py`` or the package ``x/__init__.py``; ``divpref.x.y`` is ``x/y.py`` (a name imported
    from package ``x`` that is no module of its own is ``x/__init__``).
    """
    parts = dotted.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    if (package / f"{parts[1]}.py").exists():
        return parts[1]
    if len(parts) > 2 and (package / parts[1] / f"{parts[2]}.py").exists():
        return f"{parts[1]}/{parts[2]}"
    if (package / parts[1] / "__init__.py").exists():
        return f"{parts[1]}/__init__"
    return None


def _version(path: Path) -> tuple[int, int]:
    """What the caches below key a file on besides its path: an edited file is read again."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _mentioned_names(tree: ast.Module) -> list[str]:
    """Dotted names of :data:`PACKAGE` that ``tree`` imports or names in a string, sorted, each once."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = PACKAGE if node.level else (node.module or "")
            names += [f"{base}.{node.module}"] if node.level and node.module else []
            names += [f"{base}.{alias.name}" for alias in node.names]
            names += [base]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.append(node.value)
    return sorted({name for name in names if name.startswith(f"{PACKAGE}.")})


_DISK_CACHE: dict[str, object] = {"path": None, "entries": {}, "used": set(), "dirty": False}
_CACHE_SALT = hashlib.sha256(f"{sys.version}\0".encode() + Path(__file__).read_bytes()).digest()
"""Part of every cache key: an edit of this analysis or another Python (its syntax trees) parses afresh."""


def use_disk_cache(path: Path) -> None:
    """Keep parsed files' facts in ``path`` (JSON, keyed by the sha256 of a file's bytes), saved at exit.

    Only the entries this process used are written back, atomically, so the file holds the current code and
    concurrent writers (cluster jobs parsing the Snakefile) each leave a complete, correct file.
    """
    path = Path(path).absolute()
    try:
        entries = json.loads(path.read_text())
        if not isinstance(entries, dict):
            entries = {}
    except (OSError, ValueError):
        entries = {}
    first = _DISK_CACHE["path"] is None
    _DISK_CACHE.update(path=path, entries=entries, used=set(), dirty=False)
    if first:
        atexit.register(_save_disk_cache)


def _save_disk_cache() -> None:
    path = _DISK_CACHE["path"]
    if path is None or not _DISK_CACHE["dirty"]:
        return
    entries = {key: value for key, value in _DISK_CACHE["entries"].items() if key in _DISK_CACHE["used"]}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(entries, sort_keys=True))
        os.replace(tmp, path)
    except OSError:  # a read-only working directory: the cache is only an optimisation
        tmp.unlink(missing_ok=True)


@functools.cache
def _file_facts(path: Path, _version: tuple[int, int]) -> dict[str, object]:
    """``{"names": [...], "hash": ...}`` of a Python file: the :func:`_mentioned_names` of its code tree and
    its :func:`code_hash`, from the disk cache when a file with the same bytes was parsed before."""
    data = path.read_bytes()
    key = hashlib.sha256(_CACHE_SALT + data).hexdigest()
    _DISK_CACHE["used"].add(key)
    facts = _DISK_CACHE["entries"].get(key)
    if not (isinstance(facts, dict) and isinstance(facts.get("names"), list) and "hash" in facts):
        tree = code_tree(data.decode(), filename=str(path))
        facts = {"names": _mentioned_names(tree), "hash": _tree_hash(tree)}
        _DISK_CACHE["entries"][key] = facts
        _DISK_CACHE["dirty"] = True
    return facts


def imported_modules(package: Path, path: Path) -> frozenset[str]:
    """Modules of ``package`` that a Python file imports, or names as 'divpref.<module>' strings (lazy
    registries), with the packages that importing them runs. Docstrings do not count."""
    return _imported_modules(package, path, _version(path))


@functools.cache
def _imported_modules(package: Path, path: Path, version: tuple[int, int]) -> frozenset[str]:
    found = set()
    names = _file_facts(path, version)["names"]
    for module in filter(None, (library_module(package, name) for name in names)):
        found.add(module)
        if "/" in module:
            found.add(module.split("/")[0] + "/__init__")
    return frozenset(found)


def used_modules(package: Path, script: Path) -> list[str]:
    """Every module of ``package`` that ``script`` uses, transitively (``__init__`` included), sorted."""
    seen = set()
    todo = {"__init__", *imported_modules(package, script)}
    while todo:
        name = todo.pop()
        seen.add(name)
        todo |= imported_modules(package, package / f"{name}.py") - seen
    return sorted(seen)


def module_hash(path: Path) -> str:
    """:func:`code_hash` of a module file."""
    return _module_hash(path, _version(path))


def _module_hash(path: Path, version: tuple[int, int]) -> str:
    return str(_file_facts(path, version)["hash"])


def library_fingerprint(package: Path, script: Path) -> str:
    """One hash over the code (not the docstrings or comments) of every module of ``package`` that ``script``
    uses, and which modules those are."""
    combined = hashlib.sha256()
    for name in used_modules(package, script):
        combined.update(f"{name}\0{module_hash(package / f'{name}.py')}\n".encode())
    return combined.hexdigest()
