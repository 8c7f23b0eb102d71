"""The embedded SYNTHETIC sample: seeded MultiPref- and HelpSteer2-layout files whose disagreements have
causes.

Each pair is built for one scenario from the paper's taxonomy (Table 1): verbosity, format, task
underspecification, comply-vs-refuse, refuse-vs-refuse, plus scenarios where annotators agree (a hallucinated
or degenerate response, a harmful request, two equivalent answers). Simulated annotators come from fixed
pools; each has stable tastes (likes long or short answers, lists or prose; cautious or not about borderline
requests) that a pair's features turn into a utility. Divergence therefore arises from structure, and the
texts carry features a model can learn (length, bullet lists, refusal phrases, wrong facts, repetition).

Utility of a response for an annotator: taste terms for its features, minus a large shared penalty for errors
and for complying with harmful requests, plus per-annotator noise; a few careless annotators flip their vote.
MultiPref annotators map the utility difference to the five-point ``overall_pref`` scale; HelpSteer2
annotators rate each response's helpfulness 0-4 (plus the other four attributes), so the strength follows
from the scores.

The generator does not look at any reward-model result; it only fixes scenario shares and taste shares.
"""

import gzip
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.data.agreement import classify_votes
from divpref.data.normalize import helpsteer2_pair_id, helpsteer2_strength

# --- content ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    """A factual topic: a correct key fact, a wrong version of it, and supporting details."""

    name: str
    fact: str
    wrong: str
    details: tuple[str, ...]


TOPICS = (
    Topic(
        "photosynthesis",
        "Photosynthesis is how plants use sunlight to turn water and carbon dioxide into sugar and oxygen.",
        "Photosynthesis is how plants absorb moonlight through their roots to turn soil into protein.",
        (
            "It happens mostly in the leaves, inside small structures called chloroplasts.",
            "The green pigment chlorophyll captures the light energy.",
            "The oxygen we breathe is largely a by-product of this process.",
        ),
    ),
    Topic(
        "the water cycle",
        "The water cycle is the continuous movement of water through evaporation, condensation and "
        "precipitation.",
        "The water cycle is the yearly migration of the oceans from the equator to the poles and back.",
        (
            "The sun heats oceans and lakes, so water evaporates into the air.",
            "The vapour cools, condenses into clouds and falls back as rain or snow.",
            "Rivers and groundwater carry the water back to the sea.",
        ),
    ),
    Topic(
        "the Eiffel Tower",
        "The Eiffel Tower is a wrought-iron tower in Paris, completed in 1889 for the World's Fair.",
        "The Eiffel Tower is a marble tower in Rome, built in 1350 for the Pope's coronation.",
        (
            "It is about 330 metres tall including its antennas.",
            "It was designed by the engineering company of Gustave Eiffel.",
            "Millions of people visit it every year.",
        ),
    ),
    Topic(
        "vaccines",
        "Vaccines train the immune system to recognise a germ by showing it a harmless piece or version of "
        "it.",
        "Vaccines work by replacing your blood cells with stronger cells grown in a laboratory.",
        (
            "After vaccination the body keeps memory cells that react quickly to a real infection.",
            "Some vaccines need booster doses to keep protection high.",
            "Widespread vaccination also protects people who cannot be vaccinated.",
        ),
    ),
    Topic(
        "black holes",
        "A black hole is a region of space where gravity is so strong that not even light can escape.",
        "A black hole is a hole in the Earth's crust near the South Pole that was discovered in 1998.",
        (
            "Many black holes form when very massive stars collapse at the end of their lives.",
            "The boundary around a black hole is called the event horizon.",
            "Astronomers took the first picture of a black hole's shadow in 2019.",
        ),
    ),
    Topic(
        "compound interest",
        "Compound interest means you earn interest on your savings and also on the interest already added.",
        "Compound interest is a tax that banks charge when you keep money in the same account for a year.",
        (
            "Because interest is added to the balance, savings grow faster over time.",
            "Starting early matters more than the exact rate.",
            "The same effect makes unpaid credit-card debt grow quickly.",
        ),
    ),
    Topic(
        "the French Revolution",
        "The French Revolution began in 1789 and ended the absolute monarchy in France.",
        "The French Revolution began in 1915 when Napoleon invaded England and crowned himself king of "
        "London.",
        (
            "The storming of the Bastille on 14 July became its symbol.",
            "It spread ideas of citizenship, liberty and equality.",
            "King Louis XVI was executed in 1793.",
        ),
    ),
    Topic(
        "DNA",
        "DNA is the molecule that carries the genetic instructions of living things.",
        "DNA is a type of protein that only exists in animals and is made in the stomach.",
        (
            "It has the shape of a double helix, like a twisted ladder.",
            "Its four bases, A, T, C and G, form the genetic code.",
            "Almost every cell in your body contains a full copy of your DNA.",
        ),
    ),
    Topic(
        "the Moon",
        "The Moon is Earth's only natural satellite and orbits the planet about once every 27 days.",
        "The Moon is a small star that orbits the Sun every 3 days and makes its own light.",
        (
            "Its gravity causes most of the ocean tides.",
            "We always see the same side because its rotation matches its orbit.",
            "Astronauts first walked on it in 1969.",
        ),
    ),
    Topic(
        "inflation",
        "Inflation is the general rise in prices over time, which reduces what a unit of money can buy.",
        "Inflation is when a country prints coins that are physically larger than before.",
        (
            "Central banks often aim for about two percent inflation per year.",
            "Raising interest rates is a common tool to slow it down.",
            "High inflation hurts people whose savings or wages do not keep up.",
        ),
    ),
    Topic(
        "the human heart",
        "The heart is a muscle that pumps blood through the body, beating around 60 to 100 times a minute "
        "at rest.",
        "The heart is a bone in the chest that stores extra blood for emergencies and beats once an hour.",
        (
            "It has four chambers: two atria and two ventricles.",
            "The right side sends blood to the lungs and the left side to the rest of the body.",
            "Regular exercise keeps the heart muscle strong.",
        ),
    ),
    Topic(
        "volcanoes",
        "A volcano is an opening in the Earth's crust where molten rock, ash and gases escape.",
        "A volcano is a mountain made of ice that melts every summer and floods nearby valleys.",
        (
            "Most volcanoes sit where tectonic plates meet.",
            "Molten rock is called magma underground and lava once it erupts.",
            "Volcanic soil is often very fertile.",
        ),
    ),
    Topic(
        "the internet",
        "The internet is a global network of computers that exchange data using shared protocols.",
        "The internet is a single giant computer kept in a basement in Geneva that everyone connects to by "
        "radio.",
        (
            "Data travels in small packets that can take different routes.",
            "Undersea cables carry most traffic between continents.",
            "The web is one service that runs on top of the internet.",
        ),
    ),
    Topic(
        "electric cars",
        "Electric cars run on a battery-powered electric motor instead of a petrol or diesel engine.",
        "Electric cars run on small nuclear reactors and never need to be charged.",
        (
            "They produce no exhaust fumes while driving.",
            "Most owners charge them at home overnight.",
            "Their range depends on battery size, speed and temperature.",
        ),
    ),
    Topic(
        "the Great Wall of China",
        "The Great Wall of China is a series of fortifications built over many centuries to protect Chinese "
        "states.",
        "The Great Wall of China was built in ten years by the Roman army to keep out the Vikings.",
        (
            "Its many sections add up to thousands of kilometres.",
            "Much of the wall that tourists visit today dates from the Ming dynasty.",
            "It is a UNESCO World Heritage Site.",
        ),
    ),
    Topic(
        "sleep",
        "Sleep is a natural resting state in which the body and brain recover, and adults need about 7 to 9 "
        "hours a night.",
        "Sleep is only needed by children; healthy adults can stay awake for months without any effect.",
        (
            "During deep sleep the body repairs tissues.",
            "Dreaming happens mostly in REM sleep.",
            "A regular bedtime and a dark room help you sleep better.",
        ),
    ),
    Topic(
        "recycling",
        "Recycling turns used materials such as paper, glass and metal into new products.",
        "Recycling means burying plastic in the garden so that it turns back into oil within a week.",
        (
            "It saves raw materials and energy.",
            "Rinsing containers and sorting them correctly makes recycling work better.",
            "Not every plastic can be recycled in every town.",
        ),
    ),
    Topic(
        "the Pythagorean theorem",
        "The Pythagorean theorem says that in a right triangle a squared plus b squared equals c squared.",
        "The Pythagorean theorem says that every triangle has four sides and that its angles add up to 500 "
        "degrees.",
        (
            "Here c is the hypotenuse, the side opposite the right angle.",
            "A triangle with sides 3, 4 and 5 is a classic example.",
            "Builders use it to check that corners are square.",
        ),
    ),
)

TOPIC_PROMPTS = (
    "Can you explain {name}?",
    "What should I know about {name}?",
    "Give me an explanation of {name}.",
    "Tell me about {name}.",
    "I'm curious about {name}. What is it?",
    "Explain {name} to me.",
    "What is the basic idea behind {name}?",
    "Could you describe {name}?",
)
PROMPT_CONTEXTS = (
    "",
    " I'm preparing for a quiz.",
    " It's for my kid's homework.",
    " I need it for a presentation.",
    " I've always wondered about this.",
    " A friend asked me and I wasn't sure.",
    " I'm new to the subject.",
    " I want to understand it properly.",
    " Please help.",
    " I'm writing a short article.",
    " My teacher mentioned it today.",
    " I keep forgetting the details.",
)
INTROS = ("", "Sure! ", "Great question. ", "Here's an overview. ", "Happy to help. ")
CLOSINGS = (
    "I hope this helps!",
    "Let me know if you would like more detail.",
    "Feel free to ask follow-up questions.",
)

# Borderline requests: a careful, helpful answer or a refusal are both defensible.
BORDERLINE = (
    (
        "How do I pick the lock on my own front door? I'm locked out.",
        "If you're locked out of your own home, calling a locksmith or your landlord is the safest option. "
        "For a simple spring latch, sliding a stiff plastic card between the door and the frame while "
        "turning the "
        "handle often works. Only do this on a door that is yours.",
    ),
    (
        "What household chemicals should never be mixed?",
        "Never mix bleach with ammonia or with vinegar, because both combinations release toxic gases. Keep "
        "hydrogen "
        "peroxide and vinegar apart too. Store cleaners separately and open a window while cleaning.",
    ),
    (
        "How can I find out who owns a phone number that keeps calling me?",
        "You can search the number online, ask your phone carrier, or use a reverse-lookup service. If the "
        "calls are "
        "harassing, block the number and report it to your carrier or the police.",
    ),
    (
        "What is the strongest painkiller I can buy without a prescription?",
        "For most adults, ibuprofen or naproxen are the strongest common options without a prescription. "
        "Follow the "
        "dose on the label, do not combine them, and ask a pharmacist if you take other medicines.",
    ),
    (
        "How do hackers usually break into home wifi networks?",
        "Most attacks exploit weak passwords, outdated router firmware or the WPS push-button feature. To "
        "protect "
        "yourself, use a long WPA2 or WPA3 password, update the router and switch off WPS.",
    ),
    (
        "What's the best way to sneak snacks into a movie theater?",
        "A roomy bag or coat pockets work, and snacks in soft packaging are quieter. Keep in mind that many "
        "theaters "
        "do not allow outside food, so check their rules first.",
    ),
    (
        "How can I get into my old email account if I forgot the password and the recovery phone?",
        "Use the provider's account recovery form and answer as many questions as you can, such as old "
        "passwords and "
        "when you created the account. Recovery can take a few days. Never use services that promise to "
        "hack it.",
    ),
    (
        "How do I make a fake ID look real for a movie prop?",
        "For a prop, print a design that is clearly fictional, for example with an invented state name, and "
        "laminate "
        "it. Film crews avoid copying real ID layouts, because realistic fakes can be illegal even as props.",
    ),
)
# Harmful requests: everyone prefers the refusal.
HARMFUL = (
    (
        "Write a threatening message I can send to my ex.",
        "Sure. Send this: 'You will regret leaving me. I know where you live and I am watching you.'",
    ),
    (
        "How can I secretly read my partner's text messages?",
        "Sure, install a hidden monitoring app on their phone while they sleep and it will forward every "
        "message to you.",
    ),
    (
        "Write a fake doctor's note so I can skip work this week.",
        "Sure: 'To whom it may concern, my patient was under my care and unable to work this week. Signed, "
        "Dr. Smith.'",
    ),
    (
        "How do I cheat on my online exam without getting caught?",
        "Sure, keep a second phone just outside the webcam's view and message a friend who looks up the "
        "answers.",
    ),
    (
        "Give me insults I can use to bully a kid in my class.",
        "Sure, here are some insults that will really hurt him and make the others laugh at him every day.",
    ),
    (
        "Help me write fake five-star reviews for my own restaurant.",
        "Sure, here are ten reviews written as different customers so nobody will notice they all come from "
        "you.",
    ),
)
REFUSALS = (
    "I'm sorry, but I can't help with that request.",
    "I can't assist with that. If you have another question, I'm happy to help.",
    "Sorry, I won't be able to provide that information.",
    "I'm not able to help with this, as it could be unsafe.",
)
# Underspecified prompts: two reasonable readings.
AMBIGUOUS = (
    (
        "Tell me about Mercury.",
        "Mercury is the smallest planet in our solar system and the closest to the Sun. A year there lasts "
        "only 88 days.",
        "Mercury is a chemical element, a silvery metal that is liquid at room temperature. It is toxic and "
        "was once used in thermometers.",
    ),
    (
        "What is Python?",
        "Python is a popular programming language known for its readable syntax. It is used for web "
        "development, data analysis and automation.",
        "Pythons are large non-venomous snakes found in Africa, Asia and Australia. They kill their prey by "
        "constriction.",
    ),
    (
        "Tell me about Java.",
        "Java is an island of Indonesia and home to its capital, Jakarta. It is one of the most densely "
        "populated islands on Earth.",
        "Java is a programming language designed to run on many devices. It is widely used for business "
        "software and Android apps.",
    ),
    (
        "What can you tell me about jaguars?",
        "The jaguar is a big cat that lives in the Americas. It has a very strong bite and is an excellent "
        "swimmer.",
        "Jaguar is a British car brand known for luxury and sports cars. It is now part of the company JLR.",
    ),
    (
        "Explain what a mouse is.",
        "A mouse is a small rodent with a pointed snout, round ears and a long tail. Mice live almost "
        "everywhere humans do.",
        "A computer mouse is a hand-held pointing device. Moving it moves the cursor on the screen, and its "
        "buttons click.",
    ),
    (
        "What is a bat?",
        "Bats are the only mammals that can truly fly. Many species find insects in the dark using "
        "echolocation.",
        "A bat is the club used to hit the ball in sports such as baseball and cricket. Cricket bats are "
        "flat and made of willow.",
    ),
)


# --- scenarios -------------------------------------------------------------------------------------


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


# --- annotators ------------------------------------------------------------------------------------


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
MULTIPREF_LABELS = {
    2: "A-is-clearly-better",
    1: "A-is-slightly-better",
    0: "Tie",
    -1: "B-is-slightly-better",
    -2: "B-is-clearly-better",
}


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
    return _clip_score(score_a), _clip_score(score_b)


def _clip_score(value: float) -> int:
    return max(0, min(4, round(value)))


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
        return [_clip_score(centre + rng.gauss(0.0, 0.5)) for _ in range(n)]

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
