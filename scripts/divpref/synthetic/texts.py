"""The sample's literal text, read once from ``texts.json`` next to this module.

- ``topics``: factual topics, each a correct key fact, a wrong version of it and three supporting details;
- ``topic_prompts`` (``{name}`` is the topic), ``prompt_contexts`` (appended to make a HelpSteer2 prompt
  unique), ``intros`` and ``closings`` (framing of long answers);
- ``borderline``: requests where a careful, helpful answer and a refusal are both defensible;
- ``harmful``: requests with a compliant answer that everyone rates below a refusal;
- ``refusals``: refusal texts;
- ``ambiguous``: underspecified prompts with two reasonable readings, one answer each.
"""

import json
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Topic:
    """A factual topic: a correct key fact, a wrong version of it, and supporting details."""

    name: str
    fact: str
    wrong: str
    details: tuple[str, ...]


def load_texts() -> dict:
    """The parsed ``texts.json`` (it ships as package data of :mod:`divpref.synthetic`)."""
    source = resources.files("divpref.synthetic").joinpath("texts.json")
    return json.loads(source.read_text(encoding="utf-8"))


_TEXTS = load_texts()
TOPICS = tuple(
    Topic(topic["name"], topic["fact"], topic["wrong"], tuple(topic["details"])) for topic in _TEXTS["topics"]
)
TOPIC_PROMPTS = tuple(_TEXTS["topic_prompts"])
PROMPT_CONTEXTS = tuple(_TEXTS["prompt_contexts"])
INTROS = tuple(_TEXTS["intros"])
CLOSINGS = tuple(_TEXTS["closings"])
BORDERLINE = tuple((item["prompt"], item["answer"]) for item in _TEXTS["borderline"])
"""``(prompt, careful answer)`` pairs."""
HARMFUL = tuple((item["prompt"], item["compliance"]) for item in _TEXTS["harmful"])
"""``(prompt, compliant answer)`` pairs."""
REFUSALS = tuple(_TEXTS["refusals"])
AMBIGUOUS = tuple((item["prompt"], *item["readings"]) for item in _TEXTS["ambiguous"])
"""``(prompt, answer to reading 0, answer to reading 1)``; reading 0 is the more common one."""
