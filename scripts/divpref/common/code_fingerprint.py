"""Fingerprints of the library code a rule script runs, for snakemake's `params` rerun trigger.

A rule's script is seen by snakemake's `code` trigger; the divpref modules it imports are not. Each rule
therefore carries ``library_fingerprint(script)`` as a param: a hash over the modules the script uses,
transitively, of each module's syntax tree without docstrings. Comments and formatting are not in the tree,
docstrings are taken out, so only a change of the code itself changes the fingerprint and reruns the rule.
Torch-free and cheap: the Snakefile calls it at parse time.
"""

import ast
import functools
import hashlib
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


@functools.cache
def _code_tree_of(path: Path, _version: tuple[int, int]) -> ast.Module:
    return code_tree(path.read_text(), filename=str(path))


def imported_modules(package: Path, path: Path) -> frozenset[str]:
    """Modules of ``package`` that a Python file imports, or names as 'divpref.<module>' strings (lazy
    registries), with the packages that importing them runs. Docstrings do not count."""
    return _imported_modules(package, path, _version(path))


@functools.cache
def _imported_modules(package: Path, path: Path, version: tuple[int, int]) -> frozenset[str]:
    found = set()
    for node in ast.walk(_code_tree_of(path, version)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = PACKAGE if node.level else (node.module or "")
            names = [f"{base}.{node.module}"] if node.level and node.module else []
            names += [f"{base}.{alias.name}" for alias in node.names]
            names += [base]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        else:
            continue
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


@functools.cache
def _module_hash(path: Path, version: tuple[int, int]) -> str:
    return _tree_hash(_code_tree_of(path, version))


def library_fingerprint(package: Path, script: Path) -> str:
    """One hash over the code (not the docstrings or comments) of every module of ``package`` that ``script``
    uses, and which modules those are."""
    combined = hashlib.sha256()
    for name in used_modules(package, script):
        combined.update(f"{name}\0{module_hash(package / f'{name}.py')}\n".encode())
    return combined.hexdigest()
