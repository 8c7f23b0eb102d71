"""LLM-as-judge: verdicts from label probabilities, the order-flip rule, truncation, the winner-rate table."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from divpref.common.bootstrap import stable_seed
from divpref.common.constants import SUBSETS
from divpref.common.paper_numbers import JUDGE_WINNER_RATE
from divpref.judge import verdicts as judge
from divpref.judge.table import (
    JUDGE_COLUMNS,
    UNFLAGGED,
    join_verdicts,
    judge_rows,
    judge_table,
    render_markdown,
)
from divpref.models.tiny_backbone import build_backbone, build_tokenizer

# --- verdicts and the order-flip rule, on hand-made label log-probabilities (columns A, B, tie) -------------


def test_order_verdict_is_the_most_probable_label_and_a_shared_maximum_is_a_tie():
    logprobs = np.log([[0.6, 0.3, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.45, 0.45, 0.1]])
    assert judge.order_verdicts(logprobs).tolist() == ["A", "B", "tie", "tie"]


def test_both_orders_combine_and_a_verdict_that_flips_with_the_order_is_a_tie():
    # Order ab shows response_a as "A"; order ba shows response_b as "A".
    ab = np.log([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.2, 0.7, 0.1], [0.2, 0.1, 0.7]])
    ba = np.log([[0.2, 0.7, 0.1], [0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    frame = judge.verdict_frame(["p1", "p2", "p3", "p4", "p5"], ab, ba)
    # p1: A then B (= response_a both times) -> a; p2: "A" both times = position bias -> tie (inconsistent);
    # p3, p5: tie both times -> tie (consistent); p4: B then A (= response_b both times) -> b.
    assert frame["verdict_ab"].to_list() == ["a", "a", "tie", "b", "tie"]
    assert frame["verdict_ba"].to_list() == ["a", "b", "tie", "b", "tie"]
    assert frame["verdict"].to_list() == ["a", "tie", "tie", "b", "tie"]
    assert frame["order_consistent"].to_list() == [True, False, True, True, True]
    assert frame["logprob_tie_ba"].to_list() == pytest.approx(np.log([0.1, 0.1, 0.7, 0.1, 0.7]).tolist())


def test_a_winner_against_a_tie_in_the_other_order_is_an_inconsistent_tie():
    final, consistent = judge.combine_orders(np.array(["a", "tie", "b"]), np.array(["tie", "b", "b"]))
    assert final.tolist() == ["tie", "tie", "b"] and consistent.tolist() == [False, False, True]


class LastTokenLogits(torch.nn.Module):
    """A hand-made 'causal LM': the next-token logits are a fixed row of ``table`` chosen by the last token.

    Written for this test so the expected log-probabilities can be worked out by hand (not a stand-in for a
    missing dependency); the real tiny Llama is exercised below.
    """

    def __init__(self, table):
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)

    def forward(self, input_ids, attention_mask, position_ids, logits_to_keep):
        assert logits_to_keep == 1
        # Left padding: every row's last real token is the last column; positions count real tokens only.
        assert bool((attention_mask[:, -1] == 1).all())
        assert (position_ids[:, -1] + 1).tolist() == attention_mask.sum(dim=1).tolist()
        return type("Output", (), {"logits": self.table[input_ids[:, -1]][:, None, :]})


def test_label_logprobs_are_next_token_log_softmax_at_the_label_ids():
    table = [[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 1.0], [0.0, 0.0, 3.0, 0.0]]
    encoded = [[0, 0, 1], [2], [0, 2]]  # last tokens 1, 2, 2; pad id 0 on the left
    result = judge.label_logprobs(
        LastTokenLogits(table), encoded, [0, 3, 2], pad_id=0, batch_size=2, device="cpu", progress=False
    )
    log_z1 = np.log(np.exp(2) + 1 + 1 + np.exp(1))
    log_z2 = np.log(3 + np.exp(3))
    expected = [
        [2 - log_z1, 1 - log_z1, -log_z1],
        [-log_z2, -log_z2, 3 - log_z2],
        [-log_z2, -log_z2, 3 - log_z2],
    ]
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    assert judge.order_verdicts(result).tolist() == ["A", "tie", "tie"]


# --- prompts, label tokens and truncation with the offline tokenizer --------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_label_tokens_continue_the_answer_prefix(tokenizer):
    ids = judge.label_token_ids(tokenizer)
    assert tokenizer.convert_ids_to_tokens(ids) == ["a", "b", "tie"]  # the offline vocabulary is uncased


@pytest.mark.parametrize(
    ("lengths", "budget", "expected"),
    [
        ([10, 20, 30], 100, [10, 20, 30]),
        ([10, 100, 100], 110, [10, 50, 50]),
        ([50, 50, 50], 100, [34, 33, 33]),
    ],
)
def test_truncation_caps_cut_the_longest_fields_to_a_common_cap(lengths, budget, expected):
    assert judge.truncation_caps(lengths, budget) == expected


def test_truncation_caps_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = rng.integers(0, 60, size=3).tolist()
        budget = int(rng.integers(0, 150))
        kept = judge.truncation_caps(lengths, budget)
        assert all(0 <= k <= n for k, n in zip(kept, lengths, strict=True))
        assert sum(kept) == min(budget, sum(lengths))
        # Reference: the largest cap c with sum(min(n, c)) <= budget; every field keeps at least min(n, c).
        cap = max(c for c in range(0, 61) if sum(min(n, c) for n in lengths) <= budget)
        assert all(k >= min(n, cap) for k, n in zip(kept, lengths, strict=True))


def test_build_inputs_truncates_texts_but_never_the_template(tokenizer):
    prompt = "background " * 100 + "which tower is taller?"
    long_a, short_b = "alpha " * 300, "the eiffel tower."
    ids, cut = judge.build_inputs(tokenizer, prompt, long_a, short_b, max_length=260)
    assert cut and len(ids) <= 260
    text = tokenizer.decode(ids)
    assert text.endswith("verdict :") and "which tower is taller?" in text and "the eiffel tower." in text
    assert text.startswith("[CLS] you are an impartial judge")
    untouched, cut = judge.build_inputs(tokenizer, "hi", "a", "b", max_length=260)
    assert not cut and untouched == judge.encode_prompt(
        tokenizer, judge.render_prompt(tokenizer, "hi", "a", "b")
    )


def test_batched_left_padded_judging_equals_one_pair_at_a_time(tmp_path):
    small = {
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 64,
    }
    model, tok = judge.load_judge({"name_or_path": str(build_backbone(small, tmp_path / "tiny"))}, "cpu")
    test = pl.DataFrame(
        {
            "pair_id": ["x", "y", "z"],
            "prompt": ["hi", "tell me about paris " * 5, "why?"],
            "response_a": ["hello", "paris is the capital of france. " * 4, "because"],
            "response_b": ["hey there, how can i help?", "it is a city", "no reason " * 10],
        }
    )
    batched = judge.judge_pairs(model, tok, test, max_length=512, batch_size=4, device="cpu")
    for row in range(test.height):
        single = judge.judge_pairs(
            model, tok, test[row : row + 1], max_length=512, batch_size=1, device="cpu"
        )
        for column in [c for c in batched.columns if c.startswith("logprob_")]:
            assert single[column][0] == pytest.approx(batched[column][row], abs=1e-4)
        assert single["verdict"][0] == batched["verdict"][row]
    assert set(batched["verdict"].to_list()) <= {"a", "b", "tie"}


# --- the table: winner rate with bootstrap CIs -------------------------------------------------------------


def _pairs(verdicts, agreement, substantial, ab=None, ba=None):
    ab = ab or verdicts
    ba = ba or verdicts
    return pl.DataFrame(
        {
            "pair_id": [f"p{i}" for i in range(len(verdicts))],
            "agreement": agreement,
            "substantial": substantial,
            "verdict": verdicts,
            "verdict_ab": ab,
            "verdict_ba": ba,
            "order_consistent": [x == y for x, y in zip(ab, ba, strict=True)],
        }
    )


def test_winner_rate_ci_is_the_percentile_bootstrap_over_pairs():
    rng = np.random.default_rng(3)
    n = 60
    ab = rng.choice(["a", "b", "tie"], size=n).tolist()
    ba = [x if rng.random() < 0.7 else "tie" for x in ab]
    final = [x if x == y else "tie" for x, y in zip(ab, ba, strict=True)]
    agreement = rng.choice(
        ["diverging", "high_agreement_pref", "high_agreement_tie", "other"], size=n
    ).tolist()
    substantial = [a == "diverging" and bool(rng.random() < 0.5) for a in agreement]
    pairs = _pairs(final, agreement, substantial, ab, ba)
    rows = {
        r["subset"]: r
        for r in judge_rows("multipref", "j", pairs, unflagged=None, n_samples=300, ci=0.9, seed=5)
    }
    assert list(rows) == list(SUBSETS)
    for subset, row in rows.items():
        mask = (
            np.ones(n, bool) if subset == "all" else np.array(agreement) == subset.replace("_substantial", "")
        )
        if subset == "diverging_substantial":
            mask &= np.array(substantial)
        winners = np.isin(np.array(final)[mask], ["a", "b"]).astype(float)
        # Reference: resample the subset's pairs with the row's seed, 5th and 95th percentiles of the means.
        draws = np.random.default_rng(stable_seed(5, "judge", "multipref", "j", subset)).integers(
            0, winners.size, size=(300, winners.size)
        )
        low, high = np.percentile(winners[draws].mean(axis=1), [5, 95])
        assert row["n"] == mask.sum()
        assert row["winner_rate"] == pytest.approx(winners.mean())
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
        assert row["ci_low"] <= row["winner_rate"] <= row["ci_high"]
        explicit_ties = ((np.array(ab) == "tie") & (np.array(ba) == "tie"))[mask].mean()
        assert row["tie_rate"] == pytest.approx(explicit_ties)
        assert row["winner_rate"] + row["tie_rate"] + (1 - row["order_consistency"]) == pytest.approx(1.0)


def test_constant_verdicts_give_zero_width_intervals_and_empty_subsets_nan():
    pairs = _pairs(["a", "b", "a"], ["diverging", "diverging", "other"], [False, False, False])
    rows = {
        r["subset"]: r
        for r in judge_rows(
            "d", "j", pairs, unflagged=np.array([True, False, True]), n_samples=50, ci=0.95, seed=0
        )
    }
    assert (rows["diverging"]["winner_rate"], rows["diverging"]["ci_low"], rows["diverging"]["ci_high"]) == (
        1,
        1,
        1,
    )
    assert rows["high_agreement_tie"]["n"] == 0 and np.isnan(rows["high_agreement_tie"]["winner_rate"])
    assert rows[UNFLAGGED]["n"] == 2 and rows[UNFLAGGED]["winner_rate"] == 1.0
    table = judge_table(list(rows.values()))
    assert tuple(table.columns) == JUDGE_COLUMNS


def test_markdown_sets_the_paper_figures_beside_the_judges():
    pairs = _pairs(["a", "tie"], ["diverging", "high_agreement_tie"], [True, False])
    table = judge_table(judge_rows("multipref", "tiny", pairs, unflagged=None, n_samples=20, ci=0.95, seed=0))
    markdown = render_markdown(table, ci=0.95)
    assert "MultiPref: tiny" in markdown and "MultiPref: paper" in markdown
    assert f"{100 * JUDGE_WINNER_RATE['multipref']['diverging']:.1f}%" in markdown
    assert "| Diverging (all) | 100.0% [100.0%, 100.0%] (1) | 73.8% |" in markdown


def test_every_test_pair_needs_one_verdict():
    test = pl.DataFrame(
        {"pair_id": ["p0", "p1"], "agreement": ["other", "other"], "substantial": [False, False]}
    )
    verdicts = _pairs(["a"], ["other"], [False]).drop("agreement", "substantial")
    with pytest.raises(ValueError, match=r"verdicts\.parquet: test pair_id 'p1' has no verdict"):
        join_verdicts(test, verdicts, "verdicts.parquet")


# --- the DAG: judge stage on the CI-size config -----------------------------------------------------------


def test_ci_dag_judges_every_test_pair_and_writes_the_table(ci_run: Path):
    table = pl.read_csv(ci_run / "results/tables/judge.csv")
    assert tuple(table.columns) == JUDGE_COLUMNS
    flags = pl.read_parquet(ci_run / "results/flags/ci_test.parquet")
    for dataset in ("multipref", "helpsteer2"):
        test = pl.read_parquet(ci_run / f"results/{dataset}/test.parquet")
        verdicts = pl.read_parquet(ci_run / f"results/judge/{dataset}/tiny-llama.parquet")
        assert verdicts["pair_id"].to_list() == test["pair_id"].to_list()
        rows = table.filter(dataset=dataset, judge="tiny-llama")
        expected = list(SUBSETS) + ([UNFLAGGED] if dataset == "multipref" else [])
        assert rows["subset"].to_list() == expected
        n = dict(zip(rows["subset"], rows["n"], strict=True))
        assert n["all"] == test.height
        assert n["diverging"] == (test["agreement"] == "diverging").sum()
        winners = verdicts["verdict"].is_in(["a", "b"]).mean()
        assert rows.filter(subset="all")["winner_rate"][0] == pytest.approx(winners)
    # The unflagged rows use the flag model's test flags (the same as flagging the test pairs as a file).
    assert n_unflagged(table) == (~flags["flagged"]).sum()
    markdown = (ci_run / "results/tables/judge.md").read_text()
    assert "MultiPref: paper" in markdown and "Unflagged (mitigation)" in markdown
    assert (ci_run / "results/plots/judge_winner_rate.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((ci_run / "results/flags/ci_test.json").read_text())["n_pairs"] == flags.height


def n_unflagged(table: pl.DataFrame) -> int:
    return table.filter(dataset="multipref", subset=UNFLAGGED)["n"][0]


# --- the optional vLLM backend (vLLM is not installed here) -----------------------------------------------


def test_backend_falls_back_to_transformers_unless_vllm_can_run():
    from divpref.judge.vllm_backend import choose_backend

    cfg = {"name_or_path": "m", "backend": "vllm"}
    assert choose_backend(cfg, "cuda", vllm_installed=True) == "vllm"
    assert choose_backend(cfg, "cuda", vllm_installed=False) == "transformers"
    assert choose_backend(cfg, "cpu", vllm_installed=True) == "transformers"
    assert choose_backend({**cfg, "load_in_8bit": True}, "cuda", vllm_installed=True) == "transformers"
    assert choose_backend({"name_or_path": "m"}, "cuda", vllm_installed=True) == "transformers"


def test_vllm_prompts_append_each_label_and_read_its_prompt_logprob():
    from divpref.judge.vllm_backend import label_prompts, read_prompt_logprobs

    prompts = label_prompts([[5, 6], [7]], [1, 2, 3])
    assert [p["prompt_token_ids"] for p in prompts] == [
        [5, 6, 1],
        [5, 6, 2],
        [5, 6, 3],
        [7, 1],
        [7, 2],
        [7, 3],
    ]

    # Stand-in for vLLM's RequestOutput (vLLM cannot be installed here): prompt_logprobs holds, per prompt
    # position, {token id: Logprob} for the prompt's own token; the first position has none.
    class Logprob:
        def __init__(self, value):
            self.logprob = value

    class Output:
        def __init__(self, ids, value):
            self.prompt_logprobs = (
                [None] + [{token: Logprob(-9.0)} for token in ids[1:-1]] + [{ids[-1]: Logprob(value)}]
            )

    values = [-0.1, -2.0, -3.0, -1.5, -0.5, -4.0]
    outputs = [Output(p["prompt_token_ids"], v) for p, v in zip(prompts, values, strict=True)]
    np.testing.assert_allclose(
        read_prompt_logprobs(outputs, [1, 2, 3]), [[-0.1, -2.0, -3.0], [-1.5, -0.5, -4.0]]
    )


def test_judge_precision_follows_device_and_config():
    assert judge.judge_load_kwargs({"name_or_path": "m", "load_in_8bit": True}, "cpu") == {}
    assert judge.judge_load_kwargs({"name_or_path": "m"}, "cuda") == {"dtype": torch.bfloat16}
    eight_bit = judge.judge_load_kwargs({"name_or_path": "m", "load_in_8bit": True}, "cuda")
    assert eight_bit["quantization_config"].load_in_8bit and eight_bit["device_map"] == {"": 0}


def test_winner_rate_plot_handles_several_judges_and_a_subset_only_one_dataset_has(tmp_path):
    from divpref.judge.table import plot_winner_rates

    pairs = _pairs(
        ["a", "tie", "b"], ["diverging", "high_agreement_tie", "high_agreement_pref"], [True, False, False]
    )
    rows = []
    for judge_name in ("j1", "j2"):
        rows += judge_rows(
            "multipref",
            judge_name,
            pairs,
            unflagged=np.array([True, True, False]),
            n_samples=20,
            ci=0.9,
            seed=0,
        )
        rows += judge_rows("helpsteer2", judge_name, pairs, unflagged=None, n_samples=20, ci=0.9, seed=0)
    plot_winner_rates(judge_table(rows), tmp_path / "w.png", tmp_path / "w.pdf")
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "w.pdf").read_bytes()[
        :4
    ] == b"%PDF"
