"""Per-rule conda envs: every rule has one, every env parses and is pinned, its pins equal requirements.txt.

conda cannot run here (no conda, no conda channel reachable), so these tests check the env files statically:
- every rule with an action names an env file under envs/ that exists (the linter does not check existence);
- every env uses conda-forge + nodefaults and pins every package exactly;
- every pin equals requirements.txt, the project's single source of truth;
- every third-party module a rule's script imports (following divpref imports) is installed by its env,
  including packages loaded only as package data (`importlib.resources.files("pkg")`);
- an env variant (envs/<env>-<variant>.yaml, e.g. train-cu126.yaml: torch's CUDA 12 build) pins exactly what
  its base env pins; only torch's local build tag (`+cu126`) and pip index options differ.
"""

import ast
import functools
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "envs"
CHANNELS = ["conda-forge", "nodefaults"]
# conda-forge names that differ from the PyPI distribution they package.
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib", "pytorch": "torch", "seaborn-base": "seaborn"}
# Installed by every env for conda itself rather than by the workflow's code; pinned, not in requirements.txt.
TOOLING = {"python", "pip"}
# Importable inside a rule script without being in its env: the project's own package, and snakemake, whose
# script preamble puts its own installation on sys.path.
PROVIDED_MODULES = {"divpref", "snakemake"}
# Imported only where installed, never pinned in an env: the judge's optional vLLM backend
# (divpref.judge.vllm_backend, README) and the optional trackers (divpref.training.tracking; the config check
# names the package when one is configured but missing).
OPTIONAL_MODULES = {"vllm", "wandb", "mlflow"}
# Env variants (selected by config, so the CI config's rules do not use them) -> their base env.
ENV_VARIANTS = {"train-cu126.yaml": "train.yaml"}
PIN_PATTERN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<op>==|=)?\s*(?P<version>\S*)$")


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name, with conda-forge names mapped to their PyPI names."""
    name = re.sub(r"[-_.]+", "-", name).lower()
    return CONDA_TO_PYPI.get(name, name)


def parse_requirements(text: str) -> dict[str, str]:
    """`name==version` lines of a requirements file as {normalized name: version}; other lines are errors."""
    pins = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)", line)
        if match is None:
            raise ValueError(f"requirements line {number}: {raw!r} is not an exact `name==version` pin")
        pins[normalize(match["name"])] = match["version"]
    return pins


def parse_env(env: dict, source: str) -> dict[str, str]:
    """An env file's packages as {normalized name: version}; raises on an unpinned or malformed entry."""
    if not isinstance(env, dict) or not isinstance(env.get("dependencies"), list):
        raise TypeError(f"{source}: expected a mapping with a `dependencies` list")
    pins: dict[str, str] = {}
    pip_sections = 0

    def add(spec: object, section: str) -> None:
        if section == "pip" and isinstance(spec, str) and spec.startswith("--"):
            return  # a pip option (`--extra-index-url ...`), not a package
        match = PIN_PATTERN.match(spec) if isinstance(spec, str) else None
        if match is None or not match["op"] or not match["version"]:
            raise ValueError(f"{source}: {section} entry {spec!r} is not pinned (`name==version`)")
        name = normalize(match["name"])
        if name in pins:
            raise ValueError(f"{source}: {name} listed twice")
        pins[name] = match["version"]

    for entry in env["dependencies"]:
        if isinstance(entry, dict) and list(entry) == ["pip"] and isinstance(entry["pip"], list):
            pip_sections += 1
            for spec in entry["pip"]:
                add(spec, "pip")
        else:
            add(entry, "conda")
    if pip_sections > 1:
        raise ValueError(f"{source}: more than one pip section")
    if pip_sections and "pip" not in pins:
        raise ValueError(f"{source}: has a pip section but does not install pip itself")
    return pins


def public_version(version: str) -> str:
    """A version without its local build tag: `2.13.0+cu126` -> `2.13.0`."""
    return version.split("+", 1)[0]


def pin_mismatches(env_pins: dict[str, str], requirement_pins: dict[str, str]) -> list[str]:
    """Every env package that is not tooling and does not carry exactly the requirements.txt pin (a local
    build tag such as torch's `+cu126` aside)."""
    problems = []
    for name, pinned in sorted(env_pins.items()):
        version = public_version(pinned)
        if name in TOOLING:
            continue
        if name not in requirement_pins:
            problems.append(f"{name}=={version} is not in requirements.txt")
        elif requirement_pins[name] != version:
            problems.append(f"{name}=={pinned} but requirements.txt pins {requirement_pins[name]}")
    return problems


RESOURCE_CALLS = ("files", "import_module")
"""`importlib.resources.files("pkg")` and `importlib.import_module("pkg")`: a package used by name only."""


def imported_modules(source: str) -> set[str]:
    """Absolute module names imported anywhere in `source` (including inside functions), except in
    `if TYPE_CHECKING:` blocks. Relative imports come back with their leading dots, e.g. `.losses`. A package
    named by a string constant in `importlib.resources.files(...)` or `importlib.import_module(...)` counts as
    imported: its data is loaded from the installed package."""
    tree = ast.parse(source)
    type_checking_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking_nodes.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    modules = set()
    for node in ast.walk(tree):
        if id(node) in type_checking_nodes:
            continue
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = ast.unparse(node.func).rsplit(".", 1)[-1]
            if name in RESOURCE_CALLS and isinstance(node.args[0].value, str):
                modules.add(node.args[0].value)
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            modules.add(base)
            # `from pkg import sub` may import a submodule: keep both spellings, resolution decides.
            modules.update(
                f"{base}.{alias.name}" if base.strip(".") else base + alias.name for alias in node.names
            )
    return modules


def external_imports(script: Path, package_root: Path) -> set[str]:
    """Top-level names of the modules outside the standard library and `package_root`'s packages that
    `script` imports, directly or through the project's own modules (followed recursively)."""
    seen: set[Path] = set()
    external: set[str] = set()
    pending = [script]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(path.read_text()):
            if module.startswith("."):
                level = len(module) - len(module.lstrip("."))
                anchor = path.parent
                for _ in range(level - 1):
                    anchor = anchor.parent
                parts = anchor.relative_to(package_root).parts + tuple(
                    filter(None, module.lstrip(".").split("."))
                )
            else:
                parts = tuple(module.split("."))
            own = _own_module_file(parts, package_root)
            if own is not None:
                pending.append(own)
            elif (
                parts
                and parts[0] not in sys.stdlib_module_names
                and (package_root / parts[0]).exists() is False
            ):
                external.add(parts[0])
    return external


def _own_module_file(parts: tuple[str, ...], package_root: Path) -> Path | None:
    if not parts:
        return None
    candidate = package_root.joinpath(*parts)
    if candidate.with_suffix(".py").is_file():
        return candidate.with_suffix(".py")
    if (candidate / "__init__.py").is_file():
        return candidate / "__init__.py"
    return None


@functools.cache
def installed_providers() -> dict[str, list[str]]:
    """{top-level module: the installed distributions that provide it}, read once per test session (it
    scans every installed distribution's metadata)."""
    return importlib.metadata.packages_distributions()


def distributions_of(modules: set[str]) -> dict[str, set[str]]:
    """Map each importable top-level module to the normalized names of the installed distributions that
    provide it (empty when none does)."""
    providers = installed_providers()
    return {module: {normalize(name) for name in providers.get(module, [])} for module in modules}


# --- unit tests of the checks themselves, on hand-written inputs ---


def test_parse_requirements_reads_exact_pins_and_rejects_the_rest():
    text = "# comment\ntorch==2.13.0  # note\n\nHuggingface_Hub==2.4.0\n"
    assert parse_requirements(text) == {"torch": "2.13.0", "huggingface-hub": "2.4.0"}
    with pytest.raises(ValueError, match="line 2: 'numpy'"):
        parse_requirements("scipy==1.0\nnumpy\n")
    with pytest.raises(ValueError, match="not an exact"):
        parse_requirements("numpy>=2\n")


def test_parse_env_maps_conda_names_and_reads_the_pip_section():
    env = {
        "channels": CHANNELS,
        "dependencies": ["python=3.11", "pip==26.3", "matplotlib-base==3.11.2", {"pip": ["torch==2.13.0"]}],
    }
    assert parse_env(env, "e.yaml") == {
        "python": "3.11",
        "pip": "26.3",
        "matplotlib": "3.11.2",
        "torch": "2.13.0",
    }


@pytest.mark.parametrize(
    ("dependencies", "message"),
    [
        (["numpy"], "not pinned"),
        (["numpy>=2"], "not pinned"),
        (["numpy==2", "numpy==2"], "listed twice"),
        ([{"pip": ["torch==2.13.0"]}], "does not install pip"),
        (["pip==26.3", {"pip": ["torch"]}], "pip entry 'torch' is not pinned"),
    ],
)
def test_parse_env_rejects_unpinned_or_malformed_entries(dependencies, message):
    with pytest.raises(ValueError, match=message):
        parse_env({"dependencies": dependencies}, "e.yaml")


def test_pin_mismatches_names_each_disagreement():
    requirements = {"numpy": "2.4.6", "torch": "2.13.0"}
    env = {"python": "3.11", "numpy": "2.4.5", "torch": "2.13.0", "rich": "13.0"}
    assert pin_mismatches(env, requirements) == [
        "numpy==2.4.5 but requirements.txt pins 2.4.6",
        "rich==13.0 is not in requirements.txt",
    ]


def test_external_imports_follow_the_own_package_and_skip_stdlib(tmp_path):
    package = tmp_path / "scripts" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import json\n")
    (package / "model.py").write_text("from . import losses\n\ndef build():\n    import torch\n")
    (package / "losses.py").write_text(
        "import numpy as np\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pandas\n"
    )
    script = tmp_path / "scripts" / "train.py"
    script.write_text("import os\nfrom pkg.model import build\nfrom polars import DataFrame\n")
    assert external_imports(script, tmp_path / "scripts") == {"torch", "numpy", "polars"}
    (package / "data.py").write_text(
        "import importlib.resources\n\ndef vocab():\n    return importlib.resources.files('tokpkg')\n"
    )
    script.write_text("from pkg.data import vocab\n")
    assert external_imports(script, tmp_path / "scripts") == {"tokpkg"}


# --- the real workflow ---


@pytest.fixture(scope="module")
def rules(rule_inventory) -> list[dict]:
    """Every rule of the workflow (CI config), with its env and script resolved to absolute paths."""
    return rule_inventory


@pytest.fixture(scope="module")
def requirement_pins() -> dict[str, str]:
    return parse_requirements((REPO / "requirements.txt").read_text())


def env_files() -> list[Path]:
    return sorted(ENV_DIR.glob("*.yaml"))


def acting_rules(rules: list[dict]) -> list[dict]:
    """Rules that run code (a script, shell or run block); `all` and other input-only rules have no env."""
    return [rule for rule in rules if not rule["local"] or rule["script"] or rule["conda"]]


def test_every_rule_that_runs_code_declares_an_existing_env(rules):
    acting = acting_rules(rules)
    assert acting, "the workflow has no rules with an action"
    problems = []
    for rule in acting:
        conda = rule["conda"]
        if conda is None:
            problems.append(f"rule {rule['name']} ({rule['snakefile']}) has no conda: directive")
        elif not Path(conda).is_file():
            problems.append(f"rule {rule['name']}: conda env {conda} does not exist")
        elif Path(conda).parent != ENV_DIR:
            problems.append(f"rule {rule['name']}: conda env {conda} is not under envs/")
    assert not problems, "\n".join(problems)


def test_every_env_file_is_used_by_some_rule(rules):
    used = {Path(rule["conda"]) for rule in rules if rule["conda"]}
    unused = [path.name for path in env_files() if path not in used and path.name not in ENV_VARIANTS]
    assert not unused, f"env files no rule uses: {unused}"


@pytest.mark.parametrize(("variant", "base"), sorted(ENV_VARIANTS.items()))
def test_env_variant_pins_what_its_base_env_pins(variant, base):
    variant_pins = parse_env(yaml.safe_load((ENV_DIR / variant).read_text()), variant)
    base_pins = parse_env(yaml.safe_load((ENV_DIR / base).read_text()), base)
    assert {name: public_version(v) for name, v in variant_pins.items()} == base_pins
    assert variant_pins["torch"] == f"{base_pins['torch']}+cu126"
    pip = next(
        entry["pip"]
        for entry in yaml.safe_load((ENV_DIR / variant).read_text())["dependencies"]
        if isinstance(entry, dict)
    )
    assert "--extra-index-url https://download.pytorch.org/whl/cu126" in pip


def test_cuda_build_cu126_makes_the_torch_rules_use_the_variant():
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "rule_inventory.py"),
            "--configfile",
            "tests/config/ci.yaml",
            "--configfile",
            "tests/config/cuda_build_cu126.yaml",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    envs = {rule["name"]: Path(rule["conda"]).name for rule in json.loads(proc.stdout) if rule["conda"]}
    torch_rules = {
        "build_backbone",
        "gpu_check",
        "train",
        "select_checkpoint",
        "score",
        "score_dev",
        "score_pretrained",
        "judge",
        "flag_score",
    }
    assert {name: envs[name] for name in torch_rules} == dict.fromkeys(torch_rules, "train-cu126.yaml")
    assert envs["normalize"] == "data.yaml"


@pytest.mark.parametrize("env_path", env_files(), ids=lambda path: path.name)
def test_env_parses_uses_conda_forge_only_and_pins_every_package(env_path):
    env = yaml.safe_load(env_path.read_text())
    assert env["channels"] == CHANNELS, f"{env_path.name}: channels must be {CHANNELS}"
    pins = parse_env(env, env_path.name)
    assert "python" in pins, f"{env_path.name}: python itself is not pinned"
    assert len(pins) > 1


@pytest.mark.parametrize("env_path", env_files(), ids=lambda path: path.name)
def test_env_pins_equal_requirements_txt(env_path, requirement_pins):
    pins = parse_env(yaml.safe_load(env_path.read_text()), env_path.name)
    problems = pin_mismatches(pins, requirement_pins)
    assert not problems, f"{env_path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("env_path", env_files(), ids=lambda path: path.name)
def test_env_python_satisfies_requires_python(env_path):
    pyproject = (REPO / "pyproject.toml").read_text()
    minimum = re.search(r'requires-python\s*=\s*">=(\d+)\.(\d+)"', pyproject)
    assert minimum, "pyproject.toml: requires-python is not of the form >=X.Y"
    pins = parse_env(yaml.safe_load(env_path.read_text()), env_path.name)
    version = tuple(int(part) for part in pins["python"].split(".")[:2])
    assert version >= (int(minimum[1]), int(minimum[2])), f"{env_path.name}: python={pins['python']}"


def test_each_rule_script_imports_only_what_its_env_installs(rules):
    scripts_root = REPO / "scripts"
    problems = []
    for rule in rules:
        if not rule["script"] or not rule["conda"] or not Path(rule["conda"]).is_file():
            continue
        script = Path(rule["script"])
        installed = set(parse_env(yaml.safe_load(Path(rule["conda"]).read_text()), rule["conda"]))
        modules = external_imports(script, scripts_root) - PROVIDED_MODULES - OPTIONAL_MODULES
        for module, distributions in sorted(distributions_of(modules).items()):
            if not distributions:
                problems.append(
                    f"rule {rule['name']}: {script.name} imports {module}, which nothing installs"
                )
            elif not distributions & installed:
                names = "/".join(sorted(distributions))
                problems.append(
                    f"rule {rule['name']}: {script.name} imports {module} ({names}), "
                    f"missing from {Path(rule['conda']).name}"
                )
    assert not problems, "\n".join(problems)
