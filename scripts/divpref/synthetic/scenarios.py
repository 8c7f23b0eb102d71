"""Scenarios of the sample: one pair of responses per scenario of the paper's taxonomy (Table 1).

Verbosity, format, task underspecification, comply-vs-refuse and refuse-vs-refuse make annotators disagree;
a hallucinated or degenerate response, a harmful request and two equivalent answers make them agree. The
responses carry the features annotators react to (length, bullet list, refusal, error, reading, harm).
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass

from divpref.synthetic.texts import (
    AMBIGUOUS,
    BORDERLINE,
    CLOSINGS,
    HARMFUL,
    INTROS,
    REFUSALS,
    TOPIC_PROMPTS,
    TOPICS,
    Topic,
)


@dataclass(frozen=True)
class Response:
    """A response text and the features annotators react to."""

    text: str
    long: bool = False
    listed: bool = False
    refusal: bool = False
    error: str = ""  # "hallucination" or "degenerate_output"; empty for a sound response
    reading: int = 0  # which reading of an underspecified prompt it answers
    harmful: bool = False


@dataclass(frozen=True)
class Scenario:
    """A planted pair: prompt, two responses, its causes from the taxonomy and the prompt's kind."""

    name: str
    prompt: str
    a: Response
    b: Response
    causes: tuple[str, ...]
    borderline: bool = False


SCENARIO_WEIGHTS = {
    "verbosity": 0.18,
    "format": 0.10,
    "verbosity_format": 0.08,
    "task_underspecification": 0.07,
    "comply_vs_refuse": 0.09,
    "refuse_vs_refuse": 0.04,
    "error": 0.18,
    "harmful_request": 0.06,
    "equivalent": 0.20,
}
"""Share of each scenario; the agreeing ones (error, harmful_request, equivalent) give high agreement."""


def _topic_sentences(topic: Topic, rng: random.Random, long: bool, wrong: bool = False) -> list[str]:
    key = topic.wrong if wrong else topic.fact
    details = list(topic.details)
    rng.shuffle(details)
    return [key, *details[: 3 if long else 1]]


def _render(sentences: Sequence[str], rng: random.Random, listed: bool, long: bool, name: str) -> str:
    """Prose or bullet list; long answers get an intro and a closing line."""
    intro = rng.choice(INTROS) if long else ""
    closing = f" {rng.choice(CLOSINGS)}" if long else ""
    if listed:
        bullets = "\n".join(f"- {sentence}" for sentence in sentences)
        return f"{intro}Here are the key points about {name}:\n{bullets}\n{closing.strip()}".strip()
    return f"{intro}{' '.join(sentences)}{closing}"


def topic_response(topic: Topic, rng: random.Random, long: bool, listed: bool) -> Response:
    """A correct answer about ``topic``: short (fact + 1 detail) or long (fact + 3 details), prose or list."""
    text = _render(_topic_sentences(topic, rng, long), rng, listed, long, topic.name)
    return Response(text, long=long, listed=listed)


def faulty_response(topic: Topic, rng: random.Random) -> Response:
    """A hallucinated (confidently wrong) or degenerate (repetitive, truncated) answer."""
    if rng.random() < 0.5:
        long = rng.random() < 0.5
        text = _render(_topic_sentences(topic, rng, long, wrong=True), rng, False, long, topic.name)
        return Response(text, long=long, error="hallucination")
    words = topic.fact.split()
    cut = rng.randint(4, max(5, len(words) // 2))
    stutter = " ".join([words[cut - 1]] * rng.randint(6, 14))
    return Response(f"{' '.join(words[:cut])} {stutter}", error="degenerate_output")


def make_scenario(name: str, rng: random.Random) -> Scenario:
    """One pair of the given scenario; response order (A/B) is random."""
    topic = rng.choice(TOPICS)
    prompt = rng.choice(TOPIC_PROMPTS).format(name=topic.name)
    causes: tuple[str, ...]
    borderline = False
    if name == "verbosity":
        listed = rng.random() < 0.3
        first, second = topic_response(topic, rng, True, listed), topic_response(topic, rng, False, listed)
        causes = ("verbosity",)
    elif name == "format":
        long = rng.random() < 0.5
        first, second = topic_response(topic, rng, long, True), topic_response(topic, rng, long, False)
        causes = ("format",)
    elif name == "verbosity_format":
        first, second = topic_response(topic, rng, True, True), topic_response(topic, rng, False, False)
        causes = ("verbosity", "format")
    elif name == "task_underspecification":
        prompt, reading_0, reading_1 = rng.choice(AMBIGUOUS)
        first, second = Response(reading_0, reading=0), Response(reading_1, reading=1)
        causes = ("task_underspecification",)
    elif name == "comply_vs_refuse":
        prompt, answer = rng.choice(BORDERLINE)
        first, second = Response(answer), Response(rng.choice(REFUSALS), refusal=True)
        causes, borderline = ("comply_vs_refuse",), True
    elif name == "refuse_vs_refuse":
        prompt, _ = rng.choice(BORDERLINE)
        first_text, second_text = rng.sample(REFUSALS, 2)
        first, second = Response(first_text, refusal=True), Response(second_text, refusal=True)
        causes, borderline = ("refuse_vs_refuse",), True
    elif name == "error":
        long = rng.random() < 0.5
        first, second = topic_response(topic, rng, long, rng.random() < 0.3), faulty_response(topic, rng)
        causes = (second.error,)
    elif name == "harmful_request":
        prompt, compliance = rng.choice(HARMFUL)
        first, second = Response(rng.choice(REFUSALS), refusal=True), Response(compliance, harmful=True)
        causes = ("harmful_request",)
    elif name == "equivalent":
        long, listed = rng.random() < 0.4, rng.random() < 0.3
        first, second = topic_response(topic, rng, long, listed), topic_response(topic, rng, long, listed)
        causes = ()
    else:
        raise ValueError(f"unknown scenario {name!r}; expected one of {list(SCENARIO_WEIGHTS)}")
    if first.text == second.text:  # identical responses make no pair; draw again
        return make_scenario(name, rng)
    if rng.random() < 0.5:
        first, second = second, first
    return Scenario(name, prompt, first, second, causes, borderline)
