"""What judges favour: the three features on hand-made responses, pick rates by hand, the CI DAG's table."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from divpref.common.bootstrap import bootstrap_mean, stable_seed
from divpref.common.constants import SUBSETS
from divpref.flagging.flags import UNFLAGGED
from divpref.judge.bias import (
    BIAS_COLUMNS,
    FEATURES,
    bias_rows,
    bias_table,
    formatting_count,
    length,
    picks_more,
    plot_pick_rates,
    refuses,
    reward_winner,
)
from divpref.synthetic.texts import REFUSALS

# --- the features, on hand-made responses ------------------------------------------------------------------


def test_length_counts_characters_not_bytes_or_words():
    assert length("") == 0
    assert length("two words") == 9
    assert length("naïve café") == 10  # code points, not UTF-8 bytes


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Plain prose, no structure at all. Even 2*3*4 and snake_case_names.", 0),
        ("# Heading\n## Sub heading\n#hashtag is not a heading", 2),
        ("- one\n* two\n+ three\n1. four\n2) five\n-not an item\n   - nested", 6),
        ("Some **bold**, __bold__, *italic* and _italic_ text.", 4),
        ("```python\n# not a heading\n- not an item\n**not bold**\n```\nafter", 1),
        ("| a | b |\n|---|:---:|\n| 1 | 2 |\n| 3 | 4 |", 3),
        ("- **Key point**: with *emphasis*", 3),  # a list item and two spans in it
        ("```\nnever closed\n# still code", 1),
        ("** not bold ** and * not italic *", 0),  # spans must hug their text
    ],
)
def test_formatting_counts_markdown_structure_by_the_documented_rule(text, count):
    assert formatting_count(text) == count


@pytest.mark.parametrize("text", REFUSALS)
def test_the_synthetic_refusal_texts_are_refusals(text):
    assert refuses(text)


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I cannot provide instructions for that.", True),
        ("I\u2019m not able to assist with this request.", True),  # typographic apostrophe
        ("As an AI language model, I can't browse the web.", True),
        ("I must decline to write that.", True),
        ("Sure! Here is how to bake bread: mix flour and water.", False),
        ("I can help with that. First, preheat the oven.", False),
        ("The theorem cannot be proven without the axiom of choice.", False),
        # Beyond the window: a long answer that hedges late is not a refusal.
        ("Bread needs flour, water, salt and yeast. " * 10 + "I can't promise it rises.", False),
        # What the list misses: a refusal without any of its phrases.
        ("That is not something I will do.", False),
    ],
)
def test_refusal_detector_on_hand_made_responses(text, refusal):
    assert refuses(text) is refusal


def test_compliance_is_one_for_a_response_that_does_not_refuse():
    assert FEATURES["compliance"]("Here you go.") == 1
    assert FEATURES["compliance"](REFUSALS[0]) == 0


# --- pick rates, by hand --------------------------------------------------------------------------------


def test_reward_winner_is_the_larger_reward_and_equal_rewards_tie():
    assert reward_winner([1.0, 0.0, 2.0], [0.5, 3.0, 2.0]).tolist() == ["a", "b", "tie"]


def test_picks_more_counts_only_winners_on_pairs_that_differ():
    winner = ["a", "b", "tie", "a", "b"]
    counted, more = picks_more(winner, np.array([5, 5, 5, 1, 4]), np.array([1, 1, 1, 1, 9]))
    assert counted.tolist() == [True, True, False, False, True]
    assert more.tolist() == [True, False, False, False, True]


def hand_pairs():
    """Four pairs: (A longer, A wins), (B longer, A wins), (A longer, tie), (A refuses, B wins)."""
    return pl.DataFrame(
        {
            "response_a": ["a long answer", "short", "a long answer", REFUSALS[0]],
            "response_b": ["short", "a long answer", "short", "- **Sure**: do this"],
        }
    )


def test_bias_rows_by_hand():
    pairs = hand_pairs()
    masks = {"all": np.ones(4, dtype=bool), "first_two": np.array([True, True, False, False])}
    rows = bias_rows("d", "j", "judge", pairs, ["a", "a", "tie", "b"], masks, n_samples=50, ci=0.95, seed=3)
    table = bias_table(rows)
    assert table.columns == list(BIAS_COLUMNS)
    cells = {(row["subset"], row["feature"]): row for row in table.iter_rows(named=True)}
    # length: pairs 0, 1 and 3 count (the tie does not); the winner is longer only in pair 0 (in pair 3 the
    # refusal A, 46 characters, is longer than the winner B, 19).
    assert cells[("all", "length")]["n"] == 3
    assert cells[("all", "length")]["pick_rate"] == pytest.approx(1 / 3)
    assert cells[("first_two", "length")]["pick_rate"] == pytest.approx(1 / 2)
    # formatting: only pair 3 differs (0 vs 2), and its winner B has more.
    assert (cells[("all", "formatting")]["n"], cells[("all", "formatting")]["pick_rate"]) == (1, 1.0)
    # compliance: only pair 3 (A refuses); the winner B complies.
    assert (cells[("all", "compliance")]["n"], cells[("all", "compliance")]["pick_rate"]) == (1, 1.0)
    assert np.isnan(cells[("first_two", "compliance")]["pick_rate"])
    assert cells[("first_two", "compliance")]["n"] == 0
    assert set(table["kind"]) == {"judge"}
    # The CI is the seeded percentile bootstrap of the picked-more indicators.
    expected = bootstrap_mean(
        np.array([1.0, 0.0, 0.0]),
        n_samples=50,
        ci=0.95,
        seed=stable_seed(3, "judge_bias", "d", "j", "all", "length"),
    )
    assert (cells[("all", "length")]["ci_low"], cells[("all", "length")]["ci_high"]) == (
        expected.ci_low,
        expected.ci_high,
    )


def test_bias_rows_refuse_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        bias_rows("d", "j", "critic", hand_pairs(), ["a"] * 4, {}, n_samples=10, ci=0.9, seed=0)


def test_pick_rate_plot_draws_judges_and_reward_models(tmp_path):
    rows = bias_rows(
        "multipref", "j", "judge", hand_pairs(), ["a", "a", "tie", "b"],
        {"all": np.ones(4, dtype=bool)}, n_samples=20, ci=0.9, seed=0,
    )  # fmt: skip
    rows += bias_rows(
        "helpsteer2", "bt-agg", "reward_model", hand_pairs(), ["b", "a", "a", "b"],
        {"all": np.ones(4, dtype=bool), UNFLAGGED: np.array([1, 0, 1, 1], dtype=bool)},
        n_samples=20, ci=0.9, seed=0,
    )  # fmt: skip
    plot_pick_rates(bias_table(rows), tmp_path / "p.png", tmp_path / "p.pdf")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "p.pdf").read_bytes()[:4] == b"%PDF"


# --- the DAG: judge_bias on the CI-size config ------------------------------------------------------------


def length_picks(test: pl.DataFrame, winner: dict, subset: str) -> list[bool]:
    """Plain reference: per counted pair (a winner, texts of unequal len()), is the winner the longer one."""
    return [
        (winner[row["pair_id"]] == "a") == (len(row["response_a"]) > len(row["response_b"]))
        for row in test.iter_rows(named=True)
        if winner[row["pair_id"]] in ("a", "b")
        and len(row["response_a"]) != len(row["response_b"])
        and (subset == "all" or row["agreement"] == subset)
    ]


def assert_pick_rate(row: pl.DataFrame, picked: list[bool]) -> None:
    assert row["n"][0] == len(picked)
    if picked:
        assert row["pick_rate"][0] == pytest.approx(sum(picked) / len(picked))
    else:
        assert row["pick_rate"].is_null()[0] or np.isnan(row["pick_rate"][0])


def test_ci_dag_judge_bias_recomputes_from_the_verdicts_and_the_texts(ci_run: Path):
    table = pl.read_csv(ci_run / "results/tables/judge_bias.csv")
    assert table.columns == list(BIAS_COLUMNS)
    assert set(table["kind"]) == {"judge", "reward_model"}
    assert set(table.filter(kind="reward_model")["judge"]) >= {"bt-agg", "bt-all", "mse-agg", "mse-all"}
    for dataset in ("multipref", "helpsteer2"):
        test = pl.read_parquet(ci_run / f"results/{dataset}/test.parquet")
        verdicts = pl.read_parquet(ci_run / f"results/judge/{dataset}/tiny-llama.parquet")
        rows = table.filter(dataset=dataset, judge="tiny-llama", feature="length")
        expected = list(SUBSETS) + ([UNFLAGGED] if dataset == "multipref" else [])
        assert rows["subset"].to_list() == expected
        verdict = dict(zip(verdicts["pair_id"], verdicts["verdict"], strict=True))
        for subset in ("all", "diverging", "high_agreement_pref"):
            assert_pick_rate(rows.filter(subset=subset), length_picks(test, verdict, subset))
        # The tiny judge's position bias can leave it without a single order-consistent winner (n = 0 above);
        # the same computation on its first order's verdicts has winners, and must match the reference too.
        first_order = dict(zip(verdicts["pair_id"], verdicts["verdict_ab"], strict=True))
        winner = [first_order[pair_id] for pair_id in test["pair_id"]]
        computed = bias_table(
            bias_rows(dataset, "ab", "judge", test, winner, {"all": np.ones(test.height, dtype=bool)},
                      n_samples=10, ci=0.9, seed=0)
        ).filter(feature="length")  # fmt: skip
        picked = length_picks(test, first_order, "all")
        assert picked and computed["n"][0] == len(picked)
        assert_pick_rate(computed, picked)
    # A reward model's winner is its higher-reward side.
    scores = pl.read_parquet(ci_run / "results/scores/multipref/bt-agg/seed0.parquet")
    test = pl.read_parquet(ci_run / "results/multipref/test.parquet")
    rewards = test.select("pair_id").join(scores, on="pair_id", maintain_order="left")
    winner = dict(
        zip(rewards["pair_id"], reward_winner(rewards["reward_a"], rewards["reward_b"]), strict=True)
    )
    for subset in ("all", "diverging"):
        row = table.filter(dataset="multipref", judge="bt-agg", subset=subset, feature="length")
        assert_pick_rate(row, length_picks(test, winner, subset))
    assert table.filter(dataset="multipref", judge="bt-agg", subset="all", feature="length")["n"][0] > 0
    # The unflagged rows cover the pairs the flag model leaves in.
    flags = pl.read_parquet(ci_run / "results/flags/ci_test.parquet")
    kept = set(flags.filter(~pl.col("flagged"))["pair_id"])
    unflagged = table.filter(dataset="multipref", judge="bt-agg", subset=UNFLAGGED, feature="length")
    kept_winner = {pair_id: (side if pair_id in kept else "tie") for pair_id, side in winner.items()}
    assert_pick_rate(unflagged, length_picks(test, kept_winner, "all"))
    assert (ci_run / "results/plots/judge_bias.png").read_bytes()[:4] == b"\x89PNG"
