"""Pieces of the Snakemake HTML report that snakemake does not render itself (the configuration used)."""

from collections.abc import Mapping
from html import escape
from typing import Any

import yaml

from divpref.common.render import html_page

CONFIG_STYLE = (
    "body{font-family:sans-serif;font-size:14px}pre{background:#f6f6f6;padding:1em;border:1px solid #ddd}"
)


def config_yaml(config: Mapping[str, Any]) -> str:
    """The merged config as YAML, keys in their original order."""
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False, allow_unicode=True)


def config_html(config: Mapping[str, Any], *, title: str = "Configuration used for this run") -> str:
    """A self-contained HTML page showing the merged config as YAML."""
    return html_page(
        f"<h3>{escape(title)}</h3><p>config.yaml merged with every --configfile overlay and --config value, "
        "as validated by schemas/config.schema.yaml.</p>"
        f"<pre id='config'>{escape(config_yaml(config))}</pre>",
        style=CONFIG_STYLE,
    )
