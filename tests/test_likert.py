"""The full paper's Classification (KL): per-response Likert targets, loss, preference, divergence scores."""

import itertools
import math

import numpy as np
import polars as pl
import pytest
import torch

from divpref.data.records import ANNOTATIONS_SCHEMA
from divpref.data.trainsets import build_parts, build_trainset
from divpref.detection import candidates, tuning
from divpref.models import likert_targets as likert
from divpref.models.methods import get_method, scores_frame


def annotations(rows):
    """rows: (pair_id, annotator, helpfulness_a, helpfulness_b)."""
    return pl.DataFrame(
        [(p, "q", "a", "b", k, 0, ha, hb) for p, k, ha, hb in rows], schema=ANNOTATIONS_SCHEMA, orient="row"
    )


PAIRS = pl.DataFrame(
    {
        "pair_id": ["p1", "p2"],
        "prompt": ["q", "q"],
        "response_a": ["a1", "a2"],
        "response_b": ["b1", "b2"],
        "mean_helpfulness_a": [3.0, 0.5],
        "mean_helpfulness_b": [1.0, 2.5],
    }
)
ANNOTATIONS = annotations(
    [("p1", 0, 4, 1), ("p1", 1, 2, 1), ("p1", 2, 3, 1), ("p2", 0, 0, 2), ("p2", 1, 1, 3)]
)


def test_helpsteer2_scores_0_to_4_map_to_likert_classes_1_to_5():
    assert [likert.likert_class(s) for s in range(5)] == [1, 2, 3, 4, 5]
    for bad in (5, -1, 2.0, True):
        with pytest.raises(ValueError, match=r"0\.\.4"):
            likert.likert_class(bad)


def test_target_distribution_by_hand():
    # p1, response A: scores 4, 2, 3 -> classes 5, 3, 4 -> one third each on classes 3, 4, 5
    assert likert.score_distribution([4, 2, 3]) == pytest.approx([0, 0, 1 / 3, 1 / 3, 1 / 3])
    assert likert.score_distribution([1, 1, 1]) == [0, 1.0, 0, 0, 0]
    assert likert.score_distribution([0, 4]) == [0.5, 0, 0, 0, 0.5]
    # agg: the rounded mean score (halves up): mean 3 -> class 4; mean 0.5 -> class 2; mean 2.5 -> class 4
    assert likert.majority_distribution([4, 2, 3]) == [0, 0, 0, 1.0, 0]
    assert likert.majority_distribution([0, 1]) == [0, 1.0, 0, 0, 0]
    assert likert.majority_distribution([2, 3]) == [0, 0, 0, 1.0, 0]
    with pytest.raises(ValueError, match="at least one"):
        likert.score_distribution([])


def test_trainset_rows_per_pair_and_dev_uses_the_same_labels():
    table = build_trainset("likert_classification", "all", PAIRS, ANNOTATIONS)
    assert table.columns == [
        "pair_id",
        "prompt",
        "response_a",
        "response_b",
        "likert_dist_a",
        "likert_dist_b",
    ]
    rows = {row["pair_id"]: row for row in table.iter_rows(named=True)}
    assert rows["p1"]["likert_dist_a"] == pytest.approx([0, 0, 1 / 3, 1 / 3, 1 / 3])
    assert rows["p1"]["likert_dist_b"] == [0, 1.0, 0, 0, 0]
    assert rows["p2"]["likert_dist_a"] == [0.5, 0.5, 0, 0, 0]
    assert rows["p2"]["likert_dist_b"] == [0, 0, 0.5, 0.5, 0]
    parts = build_parts("likert_classification", "all", {"train": PAIRS, "dev": PAIRS}, ANNOTATIONS)
    assert parts["dev"].equals(parts["train"])
    no_scores = ANNOTATIONS.with_columns(pl.lit(None, dtype=pl.Int64).alias("helpfulness_a"))
    with pytest.raises(ValueError, match="needs helpfulness scores"):
        build_trainset("likert_classification", "all", PAIRS, no_scores)


def test_loss_preference_and_score_columns_by_hand():
    method = get_method("likert_classification")
    assert method.head_outputs == 5 and method.selection_metric == "kl" and not method.greater_is_better
    # uniform prediction for A, all mass (numerically) on class 5 for B
    out_a = torch.zeros(1, 5, dtype=torch.float64)
    out_b = torch.tensor([[-50.0, -50.0, -50.0, -50.0, 50.0]], dtype=torch.float64)
    target = {
        "likert_dist_a": torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]], dtype=torch.float64),
        "likert_dist_b": torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]], dtype=torch.float64),
    }
    # KL(t_A || uniform) = ln 5 (smoothing aside), KL(t_B || q_B) ~ 0: mean of the two = ln 5 / 2
    assert method.loss(out_a, out_b, target).shape == (1,)  # one unreduced loss per row
    assert float(method.loss(out_a, out_b, target)) == pytest.approx(math.log(5) / 2, abs=1e-4)
    columns = scores_frame(method, ["p"], out_a.numpy(), out_b.numpy()).row(0, named=True)
    assert columns["reward_a"] == pytest.approx(3.0, abs=1e-4)  # expected score of uniform over 1..5
    assert columns["reward_b"] == pytest.approx(5.0, abs=1e-4)
    assert columns["likert_probs_a"] == pytest.approx([0.2] * 5, abs=1e-5)
    assert columns["label_probs"] is None and columns["sigma_a"] is None
    metrics = method.dev_metrics(out_a, out_b, target)
    assert math.isnan(metrics["accuracy"])  # the targets' expected scores are equal: no side to be right on


def test_a_few_steps_learn_a_planted_score_distribution():
    method = get_method("likert_classification")
    torch.manual_seed(0)
    features_a, features_b = torch.randn(64, 6), torch.randn(64, 6)
    true = torch.nn.Linear(6, 5)
    with torch.no_grad():
        targets = {
            "likert_dist_a": true(features_a).softmax(-1),
            "likert_dist_b": true(features_b).softmax(-1),
        }
    head = torch.nn.Linear(6, 5)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = method.loss(head(features_a), head(features_b), targets).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_divergence_scores_by_hand():
    polarised = np.array([[0.5, 0, 0, 0, 0.5]])  # annotators split between 1 and 5
    certain = np.array([[0, 0, 1.0, 0, 0]])
    assert likert.extreme_mass(polarised, certain)[0] == pytest.approx(0.5)  # (1 + 0) / 2
    assert likert.extreme_joint(polarised, certain)[0] == pytest.approx(0.125)  # (0.5 * 0.5 + 0) / 2
    # all annotators give a 1 (agreement at an extreme): all extreme mass, but no joint 1-and-5 probability
    all_ones = np.array([[1.0, 0, 0, 0, 0]])
    assert (
        likert.extreme_mass(all_ones, all_ones)[0] == 1.0
        and likert.extreme_joint(all_ones, all_ones)[0] == 0.0
    )
    assert likert.likert_divergence_score(polarised, all_ones, "extreme_joint")[0] == pytest.approx(0.125)
    # S_A in {1, 5} w.p. 1/2 each, S_B = 3: P(S_A > S_B) = P(S_B > S_A) = 1/2
    assert likert.opposite_mass(polarised, certain)[0] == pytest.approx(0.5)
    assert likert.opposite_mass(certain, certain)[0] == 0.0
    # Var of {1, 5} w.p. 1/2 = 4; certain: 0
    assert likert.score_variance(polarised, certain)[0] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="known"):
        likert.likert_divergence_score(polarised, certain, "entropy")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([0.5, 0.5], "not a distribution"),
        ([0.5, 0.5, 0.5, 0, 0], "not a distribution"),
        (None, "not a distribution"),
    ],
)
def test_bad_targets_name_the_file_pair_and_value(row, message):
    frame = pl.DataFrame(
        {"pair_id": ["p9"], "likert_dist_a": [row], "likert_dist_b": [[0, 0, 1.0, 0, 0]]},
        schema={
            "pair_id": pl.String,
            "likert_dist_a": pl.List(pl.Float64),
            "likert_dist_b": pl.List(pl.Float64),
        },
    )
    with pytest.raises(ValueError, match=f"train.parquet: pair_id 'p9': likert_dist_a=.*{message}"):
        likert.encode_likert(frame, "train.parquet")


def _likert_scores(probs_a, probs_b, ids):
    values = np.array([1, 2, 3, 4, 5], dtype=float)
    dist = pl.List(pl.Float64)
    return pl.DataFrame(
        {
            "pair_id": ids,
            "reward_a": [float(np.dot(p, values)) for p in probs_a],
            "reward_b": [float(np.dot(p, values)) for p in probs_b],
            "likert_probs_a": pl.Series(probs_a, dtype=dist),
            "likert_probs_b": pl.Series(probs_b, dtype=dist),
        }
    )


def test_detection_chooses_the_likert_score_on_dev_and_labels_the_row():
    from divpref.detection import table as det

    pairs = pl.DataFrame(
        {
            "pair_id": ["t1", "t2", "v1", "v2", "v3"],
            "agreement": [
                "diverging",
                "high_agreement_pref",
                "diverging",
                "high_agreement_pref",
                "high_agreement_tie",
            ],
            "chosen": ["a", "a", "a", "a", "b"],
        }
    )
    polar, certain_4, certain_2 = [0.5, 0, 0, 0, 0.5], [0, 0, 0, 1.0, 0], [0, 1.0, 0, 0, 0]
    spread = [0, 0.5, 0, 0.5, 0]  # variance 1, no extreme mass
    # dev: the diverging pair is polarised (extreme mass wins, ties broken towards it)
    dev = _likert_scores([polar, certain_4, certain_2], [certain_2, certain_2, spread], ["v1", "v2", "v3"])
    test = _likert_scores([polar, certain_4], [certain_2, certain_2], ["t1", "t2"])
    spec = {
        "dataset": "helpsteer2",
        "condition": "likert_classification-all",
        "method": "likert_classification",
        "labels": "all",
        "seed": 0,
        "scores": "s.parquet",
        "dev_scores": "d.parquet",
    }
    run = det.prepare_run(spec, pairs.head(2), test, pairs=pairs, dev_scores=dev)
    # dev choice: extreme_joint and extreme_mass both rank v1 first; the tie goes to extreme_joint
    assert run.score_name == "extreme_joint" and run.label == "Classification (KL)"
    table = det.detection_table([run], n_samples=20, ci=0.95, seed=0)
    auroc = table.filter(pl.col("metric") == "auroc").row(0, named=True)
    assert auroc["value"] == 1.0 and auroc["label"] == "Classification (KL)"
    assert auroc["score"] == likert.DIVERGENCE_SCORES["extreme_joint"]
    accuracy = table.filter(pl.col("metric") == "accuracy").row(0, named=True)
    assert accuracy["value"] == 1.0  # t2: E_A = 4 > E_B = 2, annotators chose A
    assert "| Classification (KL) |" in det.render_markdown(table, ci=0.95)


@pytest.mark.slow
def test_the_trainer_lowers_dev_kl_of_a_planted_likert_distribution(tmp_path):
    """The real trainer on the tiny backbone: 'excellent' scores 4-5, 'terrible' 1, 'debatable' 1 or 5."""
    from reward_fixtures import model_cfg, planted_frame

    from divpref.training.loop import train_reward_model
    from divpref.training.params import TrainingParams

    def target(text: str) -> list[float]:
        if text.startswith("debatable"):
            return [0.5, 0.0, 0.0, 0.0, 0.5]
        return [0.0, 0.0, 0.0, 0.3, 0.7] if text.startswith("excellent") else [0.8, 0.2, 0.0, 0.0, 0.0]

    paths = []
    for part, n_rows, seed in (("train", 48, 0), ("dev", 24, 1000)):
        frame = planted_frame(n_rows, seed, "mse").drop("score_a", "score_b")
        debatable = pl.Series([index % 3 == 0 for index in range(n_rows)])
        frame = frame.with_columns(
            response_a=pl.when(debatable)
            .then("debatable " + pl.col("response_a"))
            .otherwise(pl.col("response_a"))
        )
        frame = frame.with_columns(
            likert_dist_a=pl.Series([target(t) for t in frame["response_a"]], dtype=pl.List(pl.Float64)),
            likert_dist_b=pl.Series([target(t) for t in frame["response_b"]], dtype=pl.List(pl.Float64)),
        )
        paths.append(tmp_path / f"{part}.parquet")
        frame.write_parquet(paths[-1])
    params = TrainingParams(
        seed=0, learning_rate=3e-3, batch_size=8, max_epochs=2, eval_every_epochs=0.5, max_length=64
    )
    result = train_reward_model(
        *paths, get_method("likert_classification"), model_cfg(), params, tmp_path / "ckpt", progress=False
    )
    kl = [entry["kl"] for entry in result["curve"]]
    assert len(kl) == 4 and all(math.isfinite(value) for value in kl)
    # measured 0.648 -> 0.613 -> 0.591 -> 0.575; the bound was set after that measurement (a steady fall,
    # not a tuned result)
    assert all(later < earlier for earlier, later in itertools.pairwise(kl)), kl
    assert kl[-1] < 0.95 * kl[0], kl


def test_classification_score_extreme_joint_is_fixed_whatever_dev_prefers():
    """classification_score extreme_joint keeps the paper's score where dev AUROC prefers another one."""
    agreement = ["diverging", "diverging", "high_agreement_pref", "high_agreement_pref"]
    # diverging pairs: spread over 2 and 4 (variance, no extremes); agreeing pairs: polarised between 1 and 5
    spread, polar, certain = [0.0, 0.5, 0.0, 0.5, 0.0], [0.5, 0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0, 0.0]
    dev = pl.DataFrame(
        {
            "likert_probs_a": [spread, spread, polar, polar],
            "likert_probs_b": [certain] * 4,
        }
    )
    lam, chosen, aurocs = tuning.choose_on_dev("likert_classification", agreement, dev, [0.0])
    assert chosen == "opposite_mass" and aurocs["extreme_joint"] == 0.0 and lam is None
    _, fixed, fixed_aurocs = tuning.choose_on_dev(
        "likert_classification", agreement, dev, [0.0], "extreme_joint"
    )
    assert fixed == "extreme_joint" and fixed_aurocs == aurocs  # every candidate's dev AUROC still reported
    # the pairwise classifier has no such setting: its candidates are still chosen on dev
    pairwise = pl.DataFrame(
        {"label_probs": [[0.4, 0.1, 0.0, 0.1, 0.4]] * 2 + [[0.0, 0.0, 0.0, 0.2, 0.8]] * 2}
    )
    _, name, _ = tuning.choose_on_dev("classification", agreement, pairwise, [0.0], "extreme_joint")
    assert name == "opposite_mass"
    with pytest.raises(ValueError, match=r"detection\.classification_score: 'entropy'"):
        tuning.choose_on_dev("likert_classification", agreement, dev, [0.0], "entropy")
    # the README's side-by-side of every candidate (python -m divpref.detection.candidates)
    frame = dev.with_columns(agreement=pl.Series(agreement))
    table = candidates.candidate_aurocs("likert_classification", frame, frame.reverse())
    assert table["score_name"].to_list() == list(likert.DIVERGENCE_SCORES)
    assert table["dev_auroc"].to_list() == [0.0, 0.0, 0.5, 0.0] == table["test_auroc"].to_list()
