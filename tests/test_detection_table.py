"""Divergence detection: the table of preference accuracy and AUROC per run, its CIs and layout, dev-tuned
runs, ROC points, and the CI DAG's detection outputs (the score maths: test_detection_scores.py)."""

import json

import numpy as np
import polars as pl
import pytest
from test_detection_scores import (
    DEV_AGREEMENT,
    ENTROPY_WINS,
    OPPOSITE_MASS_WINS,
    classification_scores,
)

from divpref.common.bootstrap import stratified_indices
from divpref.detection import scores as detection_scores
from divpref.detection import table as det


def test_stratified_indices_keep_every_strata_size():
    strata = np.array(["x", "y", "x", "z", "y", "x"])
    draws = stratified_indices(np.random.default_rng(0), strata, n_samples=50)
    assert draws.shape == (50, 6)
    for row in draws:
        assert sorted(strata[row]) == sorted(strata)


def hand_run(seed: int, rewards_a: list[float], method: str = "bt") -> det.DetectionRun:
    pairs = pl.DataFrame(
        {
            "pair_id": ["d1", "d2", "h1", "h2", "t1", "o1"],
            "agreement": [
                "diverging",
                "diverging",
                "high_agreement_pref",
                "high_agreement_pref",
                "high_agreement_tie",
                "other",
            ],
            "chosen": ["a", "b", "a", "b", "a", "a"],
            "reward_a": rewards_a,
            "reward_b": [0.0] * 6,
        }
    )
    return det.DetectionRun("multipref", f"{method}-agg", method, "agg", seed, pairs)


def test_detection_table_values_on_hand_made_runs():
    # seed 1: |gaps| d 0.1, 0.2; h 1.0, 2.0 (h2 on the wrong side); t 0.15. Scores -|gap|:
    # diverging (-0.1, -0.2) vs high agreement (-1, -2, -0.15): 5 of 6 orderings right -> 5/6.
    first = hand_run(1, [0.1, -0.2, 1.0, 2.0, 0.15, 9.0])
    # seed 2: every high-agreement pair is decided more weakly than the diverging ones -> AUROC 0; both prefs
    # right.
    second = hand_run(2, [3.0, 3.0, 1.0, -1.0, 0.5, 0.0])
    table = det.detection_table([second, first], n_samples=200, ci=0.95, seed=7)
    value = {(row["seed"], row["metric"]): row for row in table.iter_rows(named=True)}
    assert value[("1", "auroc")]["value"] == pytest.approx(5 / 6)
    assert value[("1", "accuracy")]["value"] == pytest.approx(0.5)
    assert value[("2", "auroc")]["value"] == pytest.approx(0.0)
    assert value[("2", "accuracy")]["value"] == pytest.approx(1.0)
    assert value[("all", "auroc")]["value"] == pytest.approx((5 / 6 + 0.0) / 2)
    assert value[("all", "accuracy")]["value"] == pytest.approx(0.75)
    assert value[("1", "auroc")]["n"] == 5 and value[("1", "accuracy")]["n"] == 2
    assert value[("1", "auroc")]["n_diverging"] == 2 and value[("1", "auroc")]["n_high_agreement"] == 3
    for row in table.iter_rows(named=True):
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
        assert row["score"] == "-|r_A - r_B|" and row["lambda"] is None and row["score_name"] is None
    assert table.equals(det.detection_table([first, second], n_samples=200, ci=0.95, seed=7))


def test_bootstrap_cis_are_seeded_and_contain_the_estimate():
    rng = np.random.default_rng(0)
    agreement = rng.choice(["diverging", "high_agreement_pref", "high_agreement_tie", "other"], size=80)
    pairs = pl.DataFrame(
        {
            "pair_id": [f"p{i}" for i in range(80)],
            "agreement": agreement,
            "chosen": rng.choice(["a", "b"], size=80),
            "reward_a": rng.normal(size=80),
            "reward_b": rng.normal(size=80),
        }
    )
    run = det.DetectionRun("helpsteer2", "bt-all", "bt", "all", 1, pairs)
    table = det.detection_table([run], n_samples=300, ci=0.9, seed=1)
    again = det.detection_table([run], n_samples=300, ci=0.9, seed=1)
    other = det.detection_table([run], n_samples=300, ci=0.9, seed=2)
    assert table.equals(again) and not table.equals(other)
    assert table["value"].to_list() == other["value"].to_list()
    for row in table.iter_rows(named=True):
        assert row["ci_low"] < row["value"] < row["ci_high"]


def test_detection_table_refuses_seeds_scored_on_different_pairs():
    other = hand_run(2, [0.0] * 6)
    other = det.DetectionRun(
        other.dataset, other.condition, other.method, other.labels, 2, other.pairs.reverse()
    )
    with pytest.raises(ValueError, match="seed 2 was scored on other test pairs"):
        det.detection_table([hand_run(1, [0.0] * 6), other], n_samples=10, ci=0.95, seed=0)


def test_markdown_has_paper_layout_rows_and_acc_auroc_cells():
    bt = hand_run(1, [0.1, -0.2, 1.0, 2.0, 0.15, 9.0])
    mean_var_pairs = bt.pairs.with_columns(sigma_a=pl.lit(0.5), sigma_b=pl.lit(0.5))
    mean_var = det.DetectionRun("multipref", "mean_var-all", "mean_var", "all", 1, mean_var_pairs, lam=0.0)
    table = det.detection_table([mean_var, bt], n_samples=50, ci=0.95, seed=0)
    markdown = det.render_markdown(table, ci=0.95)
    lines = markdown.splitlines()
    header = lines.index("| Model | MultiPref | paper MultiPref |")
    assert lines[header + 2] == "| BT (Agg) | .500 / .833 | .663 / .458 |"  # the paper's numbers beside
    assert lines[header + 3] == "| Mean-Var (KL) | .500 / .833 | .664 / .615 |"
    assert "With 95% bootstrap confidence intervals" in markdown
    assert table["label"].to_list()[0] == "Mean-Var (KL)"
    assert det.row_label("classification", "agg") == "Pairwise classification (KL, Agg)"


def test_markdown_shows_the_papers_off_the_shelf_models_beside_their_conditions():
    bt = hand_run(1, [0.1, -0.2, 1.0, 2.0, 0.15, 9.0])
    runs = [
        det.DetectionRun("multipref", name, "pretrained", name, 0, bt.pairs, label=f"Pretrained: {name}")
        for name in ("skywork-27b", "nemotron-70b", "my-rm")
    ]
    runs += [det.DetectionRun("helpsteer2", "skywork-27b", "pretrained", "skywork-27b", 0, bt.pairs)]
    markdown = det.render_markdown(det.detection_table(runs, n_samples=20, ci=0.95, seed=0), ci=0.95)
    lines = markdown.splitlines()
    header = lines.index("| Model | MultiPref | paper MultiPref | HelpSteer2 | paper HelpSteer2 |")
    rows = lines[header + 2 : header + 5]
    # the paper reports them on MultiPref only; a pretrained model of one's own has no paper figures
    assert rows == [
        "| Pretrained: my-rm | .500 / .833 | - | - | - |",
        "| Pretrained: nemotron-70b | .500 / .833 | .638 / .400 | - | - |",
        "| Pretrained: skywork-27b | .500 / .833 | .651 / .494 | .500 / .833 | - |",
    ]


# --- a run from its files' frames: lambda tuned on the dev pairs ---


ALL_PAIRS = pl.DataFrame(
    {
        "pair_id": ["t1", "t2", "t3", "v1", "v2", "v3", "v4"],
        "agreement": [
            "diverging",
            "high_agreement_pref",
            "high_agreement_tie",
            "diverging",
            "diverging",
            "high_agreement_pref",
            "other",
        ],
        "chosen": ["a", "a", "b", "a", "b", "a", "a"],
    }
)
SPEC = {
    "dataset": "helpsteer2",
    "condition": "mean_var-all",
    "method": "mean_var",
    "labels": "all",
    "seed": 3,
    "scores": "scores/seed3.parquet",
    "dev_scores": "scores_dev/seed3.parquet",
}


def mean_var_scores(pair_ids, mu_a, sigma) -> pl.DataFrame:
    n = len(pair_ids)
    return pl.DataFrame(
        {"pair_id": pair_ids, "reward_a": mu_a, "reward_b": [0.0] * n, "sigma_a": sigma, "sigma_b": sigma}
    )


def test_prepare_run_tunes_lambda_on_the_dev_pairs_agreement():
    test = ALL_PAIRS.head(3)
    scores = mean_var_scores(["t1", "t2", "t3"], [0.5, 1.0, 0.0], [1.0, 1.0, 1.0])
    # Dev: equal mean gaps except the 'other' pair; diverging pairs have larger sigmas -> smallest positive
    # lambda.
    dev = mean_var_scores(["v1", "v2", "v3", "v4"], [1.0, 1.0, 1.0, 9.0], [2.0, 3.0, 1.0, 0.0])
    run = det.prepare_run(SPEC, test, scores, pairs=ALL_PAIRS, dev_scores=dev, lambda_grid=[0.0, 0.25, 1.0])
    assert run.lam == 0.25 and run.seed == 3 and run.pairs["pair_id"].to_list() == ["t1", "t2", "t3"]
    # 0.25 * 2 - |gap|: t1 0.0, t2 -0.5, t3 0.5
    np.testing.assert_allclose(det.pair_scores(run)["divergence_score"].to_numpy(), [0.0, -0.5, 0.5])


def test_prepare_run_names_the_dev_file_when_lambda_cannot_be_tuned():
    test = ALL_PAIRS.head(3)
    scores = mean_var_scores(["t1", "t2", "t3"], [0.5, 1.0, 0.0], [1.0, 1.0, 1.0])
    only_diverging = mean_var_scores(["v1", "v2"], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(
        ValueError, match=r"scores_dev/seed3\.parquet: cannot tune lambda: .*0 high-agreement"
    ):
        det.prepare_run(SPEC, test, scores, pairs=ALL_PAIRS, dev_scores=only_diverging, lambda_grid=[0.0])
    unknown = mean_var_scores(["v1", "zz"], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"scores_dev/seed3\.parquet: pair_id 'zz' is not among"):
        det.prepare_run(SPEC, test, scores, pairs=ALL_PAIRS, dev_scores=unknown, lambda_grid=[0.0])


CLASSIFICATION_PAIRS = pl.DataFrame(
    {
        "pair_id": ["t1", "t2", "t3", "v1", "v2", "v3", "v4", "v5"],
        "agreement": [
            "diverging",
            "high_agreement_pref",
            "high_agreement_tie",
            *DEV_AGREEMENT,
            "other",
        ],
        "chosen": ["a", "a", "b", "a", "b", "a", "b", "a"],
    }
)
CLASSIFICATION_SPEC = SPEC | {"condition": "classification-all", "method": "classification"}
# Test pairs t1 (diverging), t2 (pref), t3 (tie): opposite mass 0.4, 0.0, 0.2; entropy ln 5, ln 2, 1.2275294.
TEST_PROBS = [[0.2] * 5, [0.0, 0.0, 0.0, 0.5, 0.5], [0.1, 0.1, 0.6, 0.1, 0.1]]
TEST_SCORES = {"opposite_mass": [0.4, 0.0, 0.2], "entropy": [np.log(5), np.log(2), 1.2275294]}


@pytest.mark.parametrize(
    ("dev_probs", "chosen"), [(ENTROPY_WINS, "entropy"), (OPPOSITE_MASS_WINS, "opposite_mass")]
)
def test_prepare_run_chooses_the_classification_score_on_dev_and_applies_it_to_test(dev_probs, chosen):
    test = CLASSIFICATION_PAIRS.head(3)
    scores = classification_scores(TEST_PROBS, ["t1", "t2", "t3"])
    # v5 ('other') would break either candidate's dev AUROC if it were counted: it is left out.
    dev = classification_scores([*dev_probs, [0.2] * 5], ["v1", "v2", "v3", "v4", "v5"])
    run = det.prepare_run(CLASSIFICATION_SPEC, test, scores, pairs=CLASSIFICATION_PAIRS, dev_scores=dev)
    assert run.score_name == chosen and run.lam is None
    frame = det.pair_scores(run)
    np.testing.assert_allclose(frame["divergence_score"].to_numpy(), TEST_SCORES[chosen], atol=1e-7)
    assert frame["score_name"].to_list() == [chosen] * 3
    table = det.detection_table([run], n_samples=20, ci=0.95, seed=0)
    assert table["score_name"].to_list() == [chosen, chosen]
    assert table["score"].to_list() == [detection_scores.CLASSIFICATION_SCORES[chosen]] * 2
    assert table["lambda"].to_list() == [None, None]


def test_prepare_run_needs_classification_dev_scores_with_both_classes():
    test = CLASSIFICATION_PAIRS.head(3)
    scores = classification_scores(TEST_PROBS, ["t1", "t2", "t3"])
    with pytest.raises(
        ValueError, match="Pairwise classification needs dev scores and pairs to choose the divergence"
    ):
        det.prepare_run(CLASSIFICATION_SPEC, test, scores)
    only_diverging = classification_scores(ENTROPY_WINS[:2], ["v1", "v2"])
    with pytest.raises(
        ValueError, match=r"scores_dev/seed3\.parquet: cannot choose the divergence score: .*0 high-agreement"
    ):
        det.prepare_run(
            CLASSIFICATION_SPEC, test, scores, pairs=CLASSIFICATION_PAIRS, dev_scores=only_diverging
        )


def test_pooled_row_lists_each_seeds_classification_score_and_markdown_names_the_choice():
    test = CLASSIFICATION_PAIRS.head(3)
    scores = classification_scores(TEST_PROBS, ["t1", "t2", "t3"])
    joined = detection_scores.join_method_scores(test, scores, "classification", "s.parquet")
    runs = [
        det.DetectionRun(
            "multipref", "classification-all", "classification", "all", seed, joined, score_name=name
        )
        for seed, name in [(1, "entropy"), (2, "opposite_mass")]
    ]
    table = det.detection_table(runs, n_samples=20, ci=0.95, seed=0)
    by_seed = {row["seed"]: row for row in table.filter(pl.col("metric") == "auroc").iter_rows(named=True)}
    assert by_seed["1"]["score_name"] == "entropy"
    assert by_seed["all"]["score_name"] == "opposite_mass,entropy"
    assert by_seed["all"]["score"] == "; ".join(detection_scores.CLASSIFICATION_SCORES.values())
    markdown = det.render_markdown(table.filter(pl.col("seed") == "1"), ci=0.95)
    assert (
        "Scores used (chosen on dev, or fixed by config): Pairwise classification (KL) on MultiPref: entropy."
        in markdown
    )


# --- ROC plot ---


def test_roc_points_run_from_origin_to_one_with_sklearns_auroc(tmp_path):
    from divpref.detection.roc_plot import plot_roc_curves, roc_points

    rng = np.random.default_rng(5)
    agreement = rng.choice(["diverging", "high_agreement_pref", "high_agreement_tie", "other"], size=60)
    frames = []
    for condition, method, seed in [
        ("bt-agg", "bt", 1),
        ("bt-agg", "bt", 2),
        ("classification-all", "classification", 1),
    ]:
        score = rng.normal(size=60) + (agreement == "diverging")
        frames.append(
            pl.DataFrame(
                {
                    "dataset": "multipref",
                    "condition": condition,
                    "method": method,
                    "labels": condition.split("-")[1],
                    "seed": seed,
                    "pair_id": [f"p{i}" for i in range(60)],
                    "agreement": agreement,
                    "divergence_score": score,
                }
            )
        )
    pair_scores = pl.concat(frames)
    points = roc_points(pair_scores)
    for (condition, seed), curve in points.group_by("condition", "seed"):
        assert (curve["fpr"][0], curve["tpr"][0]) == (0.0, 0.0) and (curve["fpr"][-1], curve["tpr"][-1]) == (
            1.0,
            1.0,
        )
        run = pair_scores.filter(pl.col("condition") == condition, pl.col("seed") == seed)
        assert curve["auroc"][0] == pytest.approx(
            detection_scores.divergence_auroc(run["agreement"], run["divergence_score"].to_numpy())
        )
    png, pdf = tmp_path / "roc.png", tmp_path / "roc.pdf"
    plot_roc_curves(pair_scores, "multipref", png, pdf)
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="no detection scores for dataset 'helpsteer2'"):
        plot_roc_curves(pair_scores, "helpsteer2", png, pdf)


# --- the whole DAG on the CI-size config ---


@pytest.mark.slow
def test_ci_dag_scores_distributional_conditions_and_writes_the_detection_table(ci_run):
    from divpref.models.methods import get_method

    table = pl.read_csv(
        ci_run / "results/tables/divergence_detection.csv", schema_overrides={"seed": pl.String}
    )
    conditions = {(row["dataset"], row["condition"]) for row in table.iter_rows(named=True)}
    new = {"mean_var_tie-all", "mean_var_nll-all"}  # every Mean-Var variant runs end to end
    for dataset in ("multipref", "helpsteer2"):
        wanted = {"bt-agg", "mean_var-all", "classification-all", *new}
        assert {(dataset, condition) for condition in wanted} <= conditions
        for method in ("mean_var", "classification"):
            scores = pl.read_parquet(ci_run / f"results/scores/{dataset}/{method}-all/seed0.parquet")
            test = pl.read_parquet(ci_run / f"results/{dataset}/test.parquet")
            assert sorted(scores["pair_id"]) == sorted(test["pair_id"])
            np.testing.assert_allclose(
                np.asarray(scores["label_probs"].to_list()).sum(axis=1), 1.0, atol=1e-9
            )
            assert get_method(method).selection_metric == "kl"
        assert (ci_run / f"results/plots/roc_{dataset}.png").read_bytes()[:4] == b"\x89PNG"
    for row in table.iter_rows(named=True):
        assert 0.0 <= row["ci_low"] <= row["value"] <= row["ci_high"] <= 1.0
        assert (row["lambda"] is not None) == (row["method"] == "mean_var")
        candidates = detection_scores.CANDIDATE_SCORES.get(row["method"], {})
        assert (row["score_name"] in candidates) == (row["method"] in detection_scores.CANDIDATE_SCORES)
    # Classification (KL) exists for HelpSteer2 only (it needs Likert scores)
    likert = table.filter(pl.col("method") == "likert_classification")
    assert set(likert["dataset"]) == {"helpsteer2"} and set(likert["label"]) == {"Classification (KL)"}
    likert_scores = pl.read_parquet(
        ci_run / "results/scores/helpsteer2/likert_classification-all/seed0.parquet"
    )
    for column in ("likert_probs_a", "likert_probs_b"):
        np.testing.assert_allclose(np.asarray(likert_scores[column].to_list()).sum(axis=1), 1.0, atol=1e-9)
    # config.yaml fixes its score to the paper's extreme_joint (detection.classification_score)
    auroc = likert.filter(pl.col("metric") == "auroc").row(0, named=True)
    assert auroc["score_name"] == "extreme_joint"
    test_pairs = pl.read_parquet(ci_run / "results/helpsteer2/test.parquet")
    test = detection_scores.join_method_scores(test_pairs, likert_scores, "likert_classification", "s")
    q_a, q_b = (np.asarray(test[column].to_list()) for column in ("likert_probs_a", "likert_probs_b"))
    joint = (q_a[:, 0] * q_a[:, 4] + q_b[:, 0] * q_b[:, 4]) / 2
    assert auroc["value"] == pytest.approx(detection_scores.divergence_auroc(test["agreement"], joint))
    tie_log = json.loads(
        (ci_run / "results/train/multipref/mean_var_tie-all/seed0/train_log.json").read_text()
    )
    train = pl.read_parquet(ci_run / "results/multipref/trainsets/mean_var-all/train.parquet")
    assert tie_log["method_options"]["rho"] == pytest.approx(np.mean([row[2] for row in train["label_dist"]]))
    dev = pl.read_parquet(ci_run / "results/scores_dev/helpsteer2/mean_var-all/seed0.parquet")
    dev_pairs = pl.read_parquet(ci_run / "results/helpsteer2/trainsets/mean_var-all/dev.parquet")
    assert sorted(dev["pair_id"]) == sorted(dev_pairs["pair_id"])
    assert (ci_run / "results/scores_dev/helpsteer2/classification-all/seed0.parquet").exists()
    markdown = (ci_run / "results/tables/divergence_detection.md").read_text()
    for label in (
        "Mean-Var (KL)",
        "Mean-Var (KL, rho = tie frequency)",
        "Mean-Var (NLL, Independent)",
        "Classification (KL)",
        "Pairwise classification (KL)",
    ):
        assert f"| {label} |" in markdown
