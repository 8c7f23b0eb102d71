"""The embedded SYNTHETIC sample: seeded MultiPref- and HelpSteer2-layout files whose disagreements have
causes.

Each pair is built for one scenario from the paper's taxonomy (Table 1): verbosity, format, task
underspecification, comply-vs-refuse, refuse-vs-refuse, plus scenarios where annotators agree (a hallucinated
or degenerate response, a harmful request, two equivalent answers). Simulated annotators come from fixed
pools; each has stable tastes (likes long or short answers, lists or prose; cautious or not about borderline
requests) that a pair's features turn into a utility. Divergence therefore arises from structure, and the
texts carry features a model can learn (length, bullet lists, refusal phrases, wrong facts, repetition).

The generator does not look at any reward-model result; it only fixes scenario shares and taste shares. Parts:
:mod:`divpref.synthetic.scenarios` builds the pairs from the text of :mod:`divpref.synthetic.texts`,
:mod:`divpref.synthetic.annotators` turns them into votes and scores; this module writes the published layouts
and the planted truth.
"""

import gzip
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.data.agreement import classify_votes
from divpref.data.helpsteer2 import helpsteer2_pair_id, helpsteer2_strength
from divpref.synthetic.annotators import (
    MULTIPREF_LABELS,
    Annotator,
    clip_score,
    helpfulness_scores,
    make_pool,
    multipref_strength,
    utility_difference,
)
from divpref.synthetic.scenarios import SCENARIO_WEIGHTS, Response, Scenario, make_scenario
from divpref.synthetic.texts import PROMPT_CONTEXTS

# --- records ---------------------------------------------------------------------------------------


@dataclass
class SampleTables:
    """Generated records of one dataset plus the planted truth."""

    records: list[dict] = field(default_factory=list)
    truth: list[dict] = field(default_factory=list)


def _scenarios(n_pairs: int, rng: random.Random) -> list[Scenario]:
    names = rng.choices(list(SCENARIO_WEIGHTS), weights=list(SCENARIO_WEIGHTS.values()), k=n_pairs)
    return [make_scenario(name, rng) for name in names]


def planted_better(scenario: Scenario) -> str | None:
    """The sound side ("a"/"b") when exactly one response is flawed (an error, or complying with harm)."""
    flawed = tuple(bool(response.error or response.harmful) for response in (scenario.a, scenario.b))
    return {(False, True): "a", (True, False): "b"}.get(flawed)


def _truth_row(pair_id: str, votes: list[int], scenario: Scenario) -> dict:
    agreement, substantial = classify_votes(votes)
    return {
        "pair_id": pair_id,
        "votes": votes,
        "expected_agreement": agreement,
        "expected_substantial": substantial,
        "scenario": scenario.name,
        "planted_causes": list(scenario.causes),
        "planted_better": planted_better(scenario),
    }


def generate_multipref(n_pairs: int, seed: int) -> SampleTables:
    """MultiPref HF-layout records: 2 crowdworkers and 2 experts per comparison."""
    rng = random.Random(f"multipref-{seed}")
    crowd, experts = make_pool("crowd-", 60, 0.55, rng), make_pool("expert-", 30, 0.35, rng)
    tables = SampleTables()
    for index, scenario in enumerate(_scenarios(n_pairs, rng)):
        comparison_id = hashlib.sha1(f"multipref-{seed}-{index}".encode()).hexdigest()[:24]
        groups = {
            "normal_worker_annotations": rng.sample(crowd, 2),
            "expert_worker_annotations": rng.sample(experts, 2),
        }
        votes, annotation_lists = [], {}
        for column, annotators in groups.items():
            annotation_lists[column] = []
            for annotator in annotators:
                strength = multipref_strength(utility_difference(annotator, scenario, rng))
                votes.append(strength)
                annotation_lists[column].append(_multipref_annotation(annotator, strength, scenario, rng))
        tables.records.append(
            {
                "comparison_id": comparison_id,
                "prompt_id": hashlib.sha1(scenario.prompt.encode()).hexdigest()[:24],
                "text": scenario.prompt,
                "completion_a": scenario.a.text,
                "model_a": f"sim-model-{rng.randint(1, 6)}",
                "completion_b": scenario.b.text,
                "model_b": f"sim-model-{rng.randint(1, 6)}",
                "source": "synthetic-divpref-sample",
                "category": "Safety"
                if scenario.name in ("comply_vs_refuse", "refuse_vs_refuse", "harmful_request")
                else "Open QA",
                "subject_study": rng.choice(
                    ["Biology", "History", "Computer Science", "Economics", "Physics"]
                ),
                "highest_level_degree": rng.choice(["Bachelor's", "Master's", "PhD"]),
                **annotation_lists,
            }
        )
        tables.truth.append(_truth_row(comparison_id, votes, scenario))
    return tables


def _multipref_annotation(
    annotator: Annotator, strength: int, scenario: Scenario, rng: random.Random
) -> dict:
    """One annotation dict with every field of the published layout."""
    label = MULTIPREF_LABELS[strength]
    truthful = MULTIPREF_LABELS[2 * (bool(scenario.b.error) - bool(scenario.a.error))]
    harmless = MULTIPREF_LABELS[2 * (scenario.b.harmful - scenario.a.harmful)]
    confidence = "very-confident" if abs(strength) == 2 else "somewhat-confident"
    annotation = {
        "evaluator": annotator.name,
        "time_spent": rng.randint(60, 900),
        "timestamp": f"2024-07-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00",
    }
    for aspect, pref in (
        ("overall", label),
        ("helpful", label),
        ("truthful", truthful),
        ("harmless", harmless),
    ):
        annotation[f"{aspect}_pref"] = pref
        annotation[f"{aspect}_confidence"] = confidence
        if aspect != "overall":
            annotation[f"{aspect}_checked_reasons"] = []
            annotation[f"{aspect}_own_reason"] = ""
    return annotation


def generate_helpsteer2(n_pairs: int, seed: int) -> SampleTables:
    """HelpSteer2 ``disagreements`` records: two consecutive rows per prompt, 3-5 annotators' score lists."""
    rng = random.Random(f"helpsteer2-{seed}")
    pool = make_pool("hs2-", 40, 0.45, rng)
    tables, used_prompts = SampleTables(), set()
    for scenario in _scenarios(n_pairs, rng):
        prompt = _unique_prompt(scenario.prompt, used_prompts, rng)
        annotators = rng.sample(pool, rng.choices((3, 4, 5), weights=(0.5, 0.3, 0.2))[0])
        scores = [helpfulness_scores(annotator, scenario, rng) for annotator in annotators]
        for position, response in enumerate((scenario.a, scenario.b)):
            helpfulness = [pair[position] for pair in scores]
            tables.records.append(
                {
                    "prompt": prompt,
                    "response": response.text,
                    "helpfulness": helpfulness,
                    **_other_attributes(response, len(annotators), rng),
                }
            )
        votes = [helpsteer2_strength(a - b) for a, b in scores]
        pair_id = helpsteer2_pair_id(prompt, scenario.a.text, scenario.b.text)
        tables.truth.append(_truth_row(pair_id, votes, scenario))
    return tables


def _unique_prompt(prompt: str, used: set[str], rng: random.Random) -> str:
    """HelpSteer2 pairs are found by prompt, so every pair needs its own: add a context sentence if needed."""
    candidates = [prompt + context for context in PROMPT_CONTEXTS]
    rng.shuffle(candidates)
    for candidate in candidates:
        if candidate not in used:
            used.add(candidate)
            return candidate
    number = 2
    while f"{prompt} (Question {number}.)" in used:
        number += 1
    used.add(f"{prompt} (Question {number}.)")
    return f"{prompt} (Question {number}.)"


def _other_attributes(response: Response, n: int, rng: random.Random) -> dict[str, list[int]]:
    """Correctness, coherence, complexity and verbosity lists (0-4) that fit the response's features."""

    def noisy(centre: float) -> list[int]:
        return [clip_score(centre + rng.gauss(0.0, 0.5)) for _ in range(n)]

    return {
        "correctness": noisy(0.8 if response.error or response.harmful else 3.5),
        "coherence": noisy(1.0 if response.error else 3.6),
        "complexity": noisy(2.2 if response.long else 1.3),
        "verbosity": noisy(3.0 if response.long else 1.2),
    }


# --- writing ---------------------------------------------------------------------------------------

TRUTH_SCHEMA = {
    "pair_id": pl.String,
    "votes": pl.List(pl.Int64),
    "expected_agreement": pl.String,
    "expected_substantial": pl.Boolean,
    "scenario": pl.String,
    "planted_causes": pl.List(pl.String),
    "planted_better": pl.String,
}
GENERATORS = {"multipref": generate_multipref, "helpsteer2": generate_helpsteer2}


def write_jsonl_gz(records: list[dict], target: str | Path) -> None:
    """Byte-reproducible gzipped JSON lines (fixed gzip mtime), written atomically."""
    with (
        atomic_path(target) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as out,
    ):
        for record in records:
            out.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))


def write_sample(
    dataset: str, n_pairs: int, seed: int, records_path: str | Path, truth_path: str | Path
) -> SampleTables:
    """Generate one dataset's sample and write its records and planted truth."""
    tables = GENERATORS[dataset](n_pairs, seed)
    write_jsonl_gz(tables.records, records_path)
    with atomic_path(truth_path) as tmp:
        pl.DataFrame(tables.truth, schema=TRUTH_SCHEMA).write_parquet(tmp)
    return tables
