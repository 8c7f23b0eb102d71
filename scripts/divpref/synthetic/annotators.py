"""Simulated annotators: fixed pools with stable tastes, and the votes and scores they give a scenario.

Utility of a response for an annotator: taste terms for its features, minus a large shared penalty for errors
and for complying with harmful requests, plus per-annotator noise; a few careless annotators flip their vote.
MultiPref annotators map the utility difference to the five-point ``overall_pref`` scale; HelpSteer2
annotators rate each response's helpfulness 0-4 (plus the other four attributes), so the strength follows
from the scores.
"""

import random
from dataclasses import dataclass

from divpref.data.helpsteer2 import HELPSTEER2_SCALE
from divpref.data.multipref import MULTIPREF_STRENGTH
from divpref.synthetic.scenarios import Response, Scenario


@dataclass(frozen=True)
class Annotator:
    """A simulated annotator with stable tastes (utility weights) and a noise level."""

    name: str
    likes_long: float
    likes_lists: float
    caution: float  # utility of refusing a borderline request instead of answering it
    reading: int  # the reading of an ambiguous prompt they have in mind (0 is the more common one)
    noise: float
    careless: float  # probability of flipping their vote


def make_pool(prefix: str, size: int, noise: float, rng: random.Random) -> list[Annotator]:
    """``size`` annotators whose tastes follow fixed population shares (e.g. 62% like longer answers)."""
    return [
        Annotator(
            name=f"{prefix}{index:03d}",
            likes_long=(1 if rng.random() < 0.62 else -1) * rng.uniform(0.6, 2.4),
            likes_lists=(1 if rng.random() < 0.55 else -1) * rng.uniform(0.4, 2.0),
            caution=1.3 if rng.random() < 0.4 else -1.5,
            reading=0 if rng.random() < 0.6 else 1,
            noise=noise,
            careless=0.03,
        )
        for index in range(size)
    ]


def utility(annotator: Annotator, response: Response, scenario: Scenario) -> float:
    """How much ``annotator`` values ``response`` (before noise)."""
    value = 0.0
    value += annotator.likes_long * response.long
    value += annotator.likes_lists * response.listed
    if response.refusal and scenario.borderline:
        value += annotator.caution
    if scenario.name == "task_underspecification":
        value += 1.6 if response.reading == annotator.reading else 0.0
    if response.error:
        value -= 3.5
    if response.harmful:
        value -= 4.0
    return value


def utility_difference(annotator: Annotator, scenario: Scenario, rng: random.Random) -> float:
    """Noisy utility of A minus B; a careless annotator flips it."""
    diff = utility(annotator, scenario.a, scenario) - utility(annotator, scenario.b, scenario)
    diff += rng.gauss(0.0, annotator.noise)
    return -diff if rng.random() < annotator.careless else diff


MULTIPREF_THRESHOLDS = (0.5, 1.6)
"""|utility difference| below the first is a Tie, below the second slightly better, else clearly better."""
MULTIPREF_LABELS = {strength: label for label, strength in MULTIPREF_STRENGTH.items()}
"""The published ``overall_pref`` label of each strength."""


def multipref_strength(diff: float) -> int:
    """Five-point MultiPref vote from a utility difference."""
    tie, clear = MULTIPREF_THRESHOLDS
    level = 0 if abs(diff) < tie else 1 if abs(diff) < clear else 2
    return level if diff >= 0 else -level


def helpfulness_scores(annotator: Annotator, scenario: Scenario, rng: random.Random) -> tuple[int, int]:
    """The annotator's 0-4 helpfulness of A and B: a shared baseline plus 0.9 x utility, each with noise."""
    diff = utility_difference(annotator, scenario, rng)
    base = 2.6 + rng.gauss(0.0, 0.3)
    score_a = base + 0.9 * (utility(annotator, scenario.b, scenario) + diff) + rng.gauss(0.0, 0.2)
    score_b = base + 0.9 * utility(annotator, scenario.b, scenario) + rng.gauss(0.0, 0.2)
    return clip_score(score_a), clip_score(score_b)


def clip_score(value: float) -> int:
    """``value`` rounded onto the HelpSteer2 scale."""
    low, high = HELPSTEER2_SCALE
    return max(low, min(high, round(value)))
