"""Print every rule of the workflow as JSON: name, conda env file, script file, whether it runs locally.

    python tests/rule_inventory.py [--configfile tests/config/ci.yaml]

Run in the workflow directory, in a subprocess of the tests (the snakemake API changes the working
directory and sets up logging). The file paths are resolved the way snakemake resolves them: relative to
the rule file that declares them. Snakemake has no public call for a rule's directives, so this reads the
parsed workflow through the API's `_workflow` property.
"""

import argparse
import json
import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings


def rule_records(snakefile: Path, configfiles: list[Path]) -> list[dict]:
    """One record per rule: name, conda and script (absolute paths or null), local (never submitted)."""
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=configfiles),
            snakefile=snakefile,
        )
        workflow = workflow_api._workflow
        records = []
        for rule in workflow.rules:
            rule_dir = Path(rule.snakefile).parent
            records.append(
                {
                    "name": rule.name,
                    "conda": _resolve(rule.conda_env, rule_dir),
                    "script": _resolve(rule.script, rule_dir),
                    # Local even under a cluster executor: `localrule: True` / `localrules:`, or no action.
                    "local": rule.name in workflow._localrules or rule.norun,
                    "snakefile": str(rule.snakefile),
                }
            )
        return records


def _resolve(value, rule_dir: Path) -> str | None:
    """A directive's path relative to its rule file, made absolute; callables are reported by name."""
    if value is None:
        return None
    if callable(value):
        return f"<callable {getattr(value, '__name__', value)!r}>"
    path = Path(str(value))
    return str(path if path.is_absolute() else (rule_dir / path).resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snakefile", type=Path, default=Path("Snakefile"))
    parser.add_argument("--configfile", type=Path, action="append", default=[])
    args = parser.parse_args()
    records = rule_records(args.snakefile.resolve(), [path.resolve() for path in args.configfile])
    json.dump(records, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
