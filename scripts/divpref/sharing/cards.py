"""Shareable adapter folders: the selected adapter plus a hub model card (``README.md``).

The card is written with ``huggingface_hub``'s model-card support: :class:`huggingface_hub.ModelCardData`
gives the YAML front matter (``base_model``, ``library_name: peft``, ``datasets``, ``tags`` incl.
``reward-model``, ``license`` where the base model's card names one) and :class:`huggingface_hub.ModelCard`
the file. The body says what the model is, how it was selected (with the dev curve), its test results from
the workflow's tables and a loading snippet (:func:`loading_snippet`) that a test runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from divpref.common.render import format_number, markdown_table

CARD_FILE = "README.md"
TAGS = ("reward-model", "divpref", "peft", "lora")
DETECTION_SUBSETS = {"accuracy": "high-agreement preferences", "auroc": "diverging vs high agreement"}
"""The test pairs each divergence_detection.csv metric is computed on."""
BODY_METRICS = 4
"""Decimals of the card's numbers."""


def base_model_license(base_folder: str | Path) -> str | None:
    """The ``license`` of the base model's own card (``README.md`` in the folder training loaded), if any."""
    from huggingface_hub import ModelCard

    card = Path(base_folder) / CARD_FILE
    if not card.is_file():
        return None
    return ModelCard.load(card).data.to_dict().get("license")


def dataset_reference(name: str, spec: Mapping[str, Any]) -> str:
    """A card's ``datasets`` entry: the hub repo id of a ``source: hub`` dataset, else the config name."""
    if spec.get("source") == "hub":
        return str(spec["hub"]["repo_id"])
    return name


def loading_snippet(load_path: str, head: Mapping[str, Any], max_length: int) -> str:
    """Python that loads the adapter from ``load_path`` (hub repo id or folder) and scores one response.

    The inputs are those of training and scoring (divpref.models.tokenization.encode_text): with a chat
    template a user/assistant conversation, otherwise the tokenizer's pair encoding; the head reads the last
    token. Inputs longer than ``max_length`` tokens were cut from the prompt's start in training.
    """
    return "\n".join(
        [
            "import torch",
            "from peft import AutoPeftModelForSequenceClassification",
            "from transformers import AutoTokenizer",
            "",
            f"path = {load_path!r}",
            "tokenizer = AutoTokenizer.from_pretrained(path)",
            "model = AutoPeftModelForSequenceClassification.from_pretrained(",
            f"    path, num_labels={int(head['num_labels'])}, pad_token_id={int(head['pad_token_id'])}",
            ").eval()",
            f"model.config.pad_token_id = {int(head['pad_token_id'])}",
            "",
            "",
            "def head_outputs(prompt: str, response: str) -> list[float]:",
            f'    """The reward head\'s outputs for one response (inputs of at most {max_length} tokens)."""',
            "    if tokenizer.chat_template:",
            "        messages = [",
            '            {"role": "user", "content": prompt},',
            '            {"role": "assistant", "content": response},',
            "        ]",
            "        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)",
            "    else:",
            '        ids = tokenizer(prompt, response)["input_ids"]',
            "    with torch.no_grad():",
            "        return model(input_ids=torch.tensor([ids])).logits[0].tolist()",
        ]
    )


def curve_table(best: Mapping[str, Any]) -> list[str]:
    """The dev curve as markdown: step, epoch, mean train loss, the selection metric; the selection marked."""
    metric = best["metric"]
    body = []
    for entry in sorted(best["curve"], key=lambda e: int(e["step"])):
        selected = int(entry["step"]) == int(best["step"])
        value = entry.get(metric)
        body.append(
            [
                str(entry["step"]),
                f"{float(entry['epoch']):.2f}",
                format_number(entry.get("train_loss"), decimals=BODY_METRICS),
                format_number(None if value is None else float(value), decimals=BODY_METRICS),
                "\N{BLACK STAR} selected" if selected else "",
            ]
        )
    return markdown_table(["step", "epoch", "train loss", f"dev {metric}", ""], body)


def results_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Test-set rows of the workflow's tables (subset, metric, n, value, CI) as markdown."""
    if not rows:
        return ["No test-set table covers this method."]
    body = []
    for row in rows:

        def number(key: str, row: Mapping[str, Any] = row) -> str:
            value = row.get(key)
            return format_number(None if value in (None, "") else float(value), decimals=BODY_METRICS)

        body.append(
            [
                str(row["table"]),
                str(row.get("subset") or "all"),
                str(row["metric"]),
                str(row.get("n", "")),
                number("value"),
                f"[{number('ci_low')}, {number('ci_high')}]",
            ]
        )
    return markdown_table(["table", "test subset", "metric", "n", "value", "CI"], body)


def card_text(
    *,
    run: Mapping[str, Any],
    best: Mapping[str, Any],
    train_log: Mapping[str, Any],
    adapter_config: Mapping[str, Any],
    head: Mapping[str, Any],
    dataset_ref: str,
    dataset_revision: str | None,
    license_name: str | None,
    results: Sequence[Mapping[str, Any]],
    load_path: str,
) -> str:
    """The whole model card (front matter and body) of one selected adapter."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        base_model=adapter_config["base_model_name_or_path"],
        library_name="peft",
        datasets=[dataset_ref],
        tags=list(TAGS),
        license=license_name,
        pipeline_tag="text-classification",
    )
    name = f"{run['dataset']}/{run['condition']}/seed{run['seed']}"
    revision = adapter_config.get("revision")
    base = adapter_config["base_model_name_or_path"] + (f" at revision `{revision}`" if revision else "")
    options = train_log.get("method_options") or {}
    lines = [
        f"# Reward model {name}",
        "",
        "A LoRA reward model (PEFT adapter with its sequence-classification head) trained by the",
        "diverging-preferences workflow.",
        "",
        markdown_table(
            ["", ""],
            [
                ["condition", str(run["condition"])],
                ["method", str(run["method"])],
                ["labels", str(run["labels"])],
                ["method options", json.dumps(options, sort_keys=True) if options else "none"],
                ["seed", str(run["seed"])],
                ["dataset", f"{run['dataset']} (`{dataset_ref}`)"],
                ["dataset revision", f"`{dataset_revision}`" if dataset_revision else "local file"],
                ["base model", base],
                ["head outputs", str(head["num_labels"])],
                ["max length", str(train_log["params"]["max_length"])],
            ],
        ),
        "",
        "## Selection",
        "",
        f"The checkpoint of step {best['step']} (epoch {float(best['epoch']):.2f}) was selected: it has the "
        f"best dev {best['metric']} ({'higher' if best['greater_is_better'] else 'lower'} is better), "
        f"{format_number(float(best['value']), decimals=BODY_METRICS)}, of the {len(best['curve'])} "
        "evaluations (ties go to the earliest step). The dev curve:",
        "",
        *curve_table(best),
        "",
        "## Test results",
        "",
        "From the workflow's tables (`results/tables/`), this run's rows on the test pairs, by "
        "annotator-agreement subset, with bootstrap confidence intervals:",
        "",
        *results_table(results),
        "",
        "## Loading",
        "",
        "```python",
        loading_snippet(load_path, head, int(train_log["params"]["max_length"])),
        "```",
        "",
    ]
    lines = [line for item in lines for line in ([item] if isinstance(item, str) else item)]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
    return str(card)


def table_rows(
    table2: Sequence[Mapping[str, Any]], detection: Sequence[Mapping[str, Any]], run: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """This run's rows of table2.csv (by dataset, method, labels, seed) and divergence_detection.csv
    (by dataset, condition, seed), each with a ``table`` field."""
    seed = str(run["seed"])
    rows = [
        {**row, "table": "table2"}
        for row in table2
        if (row["dataset"], row["method"], row["labels"], str(row["seed"]))
        == (run["dataset"], run["method"], run["labels"], seed)
    ]
    rows += [
        {**row, "table": "divergence_detection", "subset": DETECTION_SUBSETS.get(row["metric"])}
        for row in detection
        if (row["dataset"], row["condition"], str(row["seed"])) == (run["dataset"], run["condition"], seed)
    ]
    return rows


def write_shareable(adapter_dir: str | Path, out_dir: str | Path, card: str) -> Path:
    """Copy the adapter folder into ``out_dir`` and add the card (the selected adapter is not touched)."""
    out_dir = Path(out_dir)
    shutil.copytree(adapter_dir, out_dir)
    (out_dir / CARD_FILE).write_text(card)
    return out_dir
