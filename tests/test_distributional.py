"""Mean-Var and Classification reward models: interval probabilities, KL loss, heads, registry, training."""

import math

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from divpref.models import distributional as dist
from divpref.models.methods import get_method, mean_loss, scores_frame

# Phi at the points used below (standard normal CDF tables).
PHI = {
    -5.0: 2.866515719e-7,
    -3.0: 0.0013498980,
    -1.0: 0.1586552539,
    0.5: 0.6914624613,
    1.0: 0.8413447461,
    1.5: 0.9331927987,
}


def inverse_softplus(value: float) -> float:
    return math.log(math.expm1(value))


def mean_var_outputs(mu: float, sigma: float) -> list[float]:
    """The head output [mu, raw] whose sigma is ``sigma``."""
    return [mu, inverse_softplus(sigma - dist.SIGMA_FLOOR)]


def reference_interval_probabilities(mean: float, std: float) -> np.ndarray:
    """scipy reference: CDF differences, upper tails via the survival function."""
    cuts = np.array(dist.INTERVAL_BOUNDARIES)
    cdf = norm.cdf(cuts, loc=mean, scale=std)
    sf = norm.sf(cuts, loc=mean, scale=std)
    return np.array([cdf[0], cdf[1] - cdf[0], cdf[2] - cdf[1], sf[2] - sf[3], sf[3]])


# --- interval probabilities ---


def test_interval_probabilities_of_standard_normal_match_hand_computed_cdf_values():
    probs = dist.interval_probabilities(
        torch.tensor([0.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    )
    clear = 1 - PHI[1.5]
    slight = PHI[1.5] - PHI[0.5]
    tie = 2 * PHI[0.5] - 1
    np.testing.assert_allclose(probs[0].numpy(), [clear, slight, tie, slight, clear], atol=1e-9)


def test_interval_probabilities_of_shifted_narrow_normal_match_hand_computed_cdf_values():
    # N(1, 0.5^2): the cut points -1.5, -0.5, 0.5, 1.5 sit at z = -5, -3, -1, 1.
    probs = dist.interval_probabilities(
        torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    )
    expected = [PHI[-5.0], PHI[-3.0] - PHI[-5.0], PHI[-1.0] - PHI[-3.0], PHI[1.0] - PHI[-1.0], 1 - PHI[1.0]]
    np.testing.assert_allclose(probs[0].numpy(), expected, rtol=1e-6, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(mean=st.floats(-60, 60), std=st.floats(0.07, 30))
def test_interval_probabilities_sum_to_one_and_match_scipy(mean, std):
    probs = dist.interval_probabilities(
        torch.tensor([mean], dtype=torch.float64), torch.tensor([std], dtype=torch.float64)
    )[0]
    assert torch.all(probs >= 0)
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(probs.numpy(), reference_interval_probabilities(mean, std), atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(mean=st.floats(-20, 20), std=st.floats(0.07, 10))
def test_negating_the_margin_reverses_the_label_distribution(mean, std):
    std_t = torch.tensor([std], dtype=torch.float64)
    forward = dist.interval_probabilities(torch.tensor([mean], dtype=torch.float64), std_t)
    backward = dist.interval_probabilities(torch.tensor([-mean], dtype=torch.float64), std_t)
    torch.testing.assert_close(forward.flip(-1), backward, atol=1e-12, rtol=0)


def test_mean_var_label_probs_use_the_summed_variances_of_both_responses():
    # sigma_A = sigma_B = sqrt(0.125): the margin's std is 0.5, so this is the N(1, 0.5^2) case above.
    sigma = math.sqrt(0.125)
    out_a = torch.tensor([mean_var_outputs(1.25, sigma)], dtype=torch.float64)
    out_b = torch.tensor([mean_var_outputs(0.25, sigma)], dtype=torch.float64)
    probs = dist.mean_var_label_probs(out_a, out_b)[0].numpy()
    expected = [PHI[-5.0], PHI[-3.0] - PHI[-5.0], PHI[-1.0] - PHI[-3.0], PHI[1.0] - PHI[-1.0], 1 - PHI[1.0]]
    np.testing.assert_allclose(probs, expected, atol=1e-5)  # smoothing moves each by at most 1e-6
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)


def test_sigma_stays_above_its_floor_for_very_negative_raw_outputs():
    _, sigma = dist.mean_and_sigma(torch.tensor([[0.0, -1e4], [0.0, 0.0], [0.0, 1e4]]))
    assert torch.all(sigma >= dist.SIGMA_FLOOR)
    assert float(sigma[1]) == pytest.approx(math.log(2) + dist.SIGMA_FLOOR)
    assert float(sigma[2]) == pytest.approx(1e4 + dist.SIGMA_FLOOR, abs=1e-2)  # linear, no overflow


# --- KL loss ---


def label_dist_targets(rows) -> dict[str, torch.Tensor]:
    return {"label_dist": torch.tensor(rows, dtype=torch.float32)}


@pytest.mark.parametrize("method_name", ["mean_var", "classification"])
def test_kl_loss_is_zero_when_the_target_is_the_models_own_distribution(method_name):
    method = get_method(method_name)
    generator = torch.Generator().manual_seed(0)
    out_a = torch.randn(8, method.head_outputs, generator=generator, dtype=torch.float64)
    out_b = torch.randn(8, method.head_outputs, generator=generator, dtype=torch.float64)
    label_probs = (
        dist.mean_var_label_probs(out_a, out_b)
        if method_name == "mean_var"
        else dist.classification_label_probs(out_a, out_b)
    )
    losses = method.loss(out_a, out_b, {"label_dist": label_probs.detach()})
    assert losses.shape == (8,) and losses.abs().max().item() == pytest.approx(0.0, abs=1e-12)


def test_kl_divergence_matches_hand_computed_value_and_ignores_zero_target_shares():
    target = torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0]], dtype=torch.float64)
    predicted = torch.tensor([[0.1, 0.1, 0.4, 0.2, 0.2]], dtype=torch.float64)
    expected = 0.5 * math.log(0.5 / 0.4) + 0.5 * math.log(0.5 / 0.2)
    assert float(dist.kl_divergence(target, predicted.log())[0]) == pytest.approx(expected)


@pytest.mark.parametrize("method_name", ["mean_var", "classification"])
@pytest.mark.parametrize("scale", [1.0, 1e3, 1e6])
def test_kl_loss_and_gradients_are_finite_for_extreme_head_outputs(method_name, scale):
    method = get_method(method_name)
    generator = torch.Generator().manual_seed(1)
    out_a = (scale * torch.randn(16, method.head_outputs, generator=generator)).requires_grad_()
    out_b = (scale * torch.randn(16, method.head_outputs, generator=generator)).requires_grad_()
    # One-hot targets on every label, including ones the model gives (numerically) zero mass.
    targets = label_dist_targets(np.eye(5)[np.arange(16) % 5])
    loss = mean_loss(method, out_a, out_b, targets)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.all(torch.isfinite(out_a.grad)) and torch.all(torch.isfinite(out_b.grad))


@pytest.mark.parametrize("method_name", ["mean_var", "classification"])
def test_half_precision_head_outputs_give_a_float32_loss(method_name):
    method = get_method(method_name)
    out = torch.zeros(2, method.head_outputs, dtype=torch.bfloat16)
    loss = method.loss(out, out, label_dist_targets([[0, 0, 1, 0, 0], [0.2] * 5]))
    assert loss.dtype == torch.float32 and torch.all(torch.isfinite(loss))


# --- classification head ---


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(-20, 20), min_size=12, max_size=12))
def test_swapping_responses_reverses_the_classification_distribution(values):
    out_a = torch.tensor([values[:6]], dtype=torch.float64)
    out_b = torch.tensor([values[6:]], dtype=torch.float64)
    forward = dist.classification_label_probs(out_a, out_b)
    backward = dist.classification_label_probs(out_b, out_a)
    torch.testing.assert_close(forward.flip(-1), backward, atol=1e-12, rtol=0)


@settings(max_examples=50, deadline=None)
@given(shares=st.lists(st.floats(0.01, 1.0), min_size=5, max_size=5))
def test_the_classification_head_can_express_any_label_distribution(shares):
    target = np.array(shares) / sum(shares)
    logits = np.log(target) - np.log(target[2])  # tie logit 0
    d2, d1 = (logits[4] - logits[0]) / 2, (logits[3] - logits[1]) / 2
    c2, c1 = (logits[4] + logits[0]) / 2, (logits[3] + logits[1]) / 2
    out_a = torch.tensor([[d1, d2, c1, c2, 0.0, 0.0]], dtype=torch.float64)
    out_b = torch.zeros(1, 6, dtype=torch.float64)
    np.testing.assert_allclose(dist.classification_label_probs(out_a, out_b)[0].numpy(), target, atol=1e-5)


def test_classification_logits_follow_the_documented_formula():
    out_a = torch.tensor([[1.0, 2.0, 0.5, -1.0, 3.0, 0.0]])
    out_b = torch.tensor([[0.5, -1.0, 0.25, 0.0, 1.0, 2.0]])
    # d = (0.5, 3.0); c = (0.75 + |3 - 1|, -1.0 + |0 - 2|) = (2.75, 1.0)
    expected = [1.0 - 3.0, 2.75 - 0.5, 0.0, 2.75 + 0.5, 1.0 + 3.0]
    torch.testing.assert_close(dist.classification_logits(out_a, out_b)[0], torch.tensor(expected))


# --- dev metrics, targets, score columns, registry ---


def test_classification_dev_metrics_on_hand_worked_pairs():
    out = torch.zeros(2, 6)  # uniform 0.2 on every label
    targets = label_dist_targets([[0, 0, 0, 0, 1], [0.5, 0, 0, 0, 0.5]])
    metrics = get_method("classification").dev_metrics(out, out, targets)
    assert metrics["kl"] == pytest.approx((math.log(5) + math.log(2.5)) / 2, rel=1e-6)
    # Only the first pair has an annotator side (A); the model is undecided there: margin 0, half credit.
    assert metrics["mean_margin"] == pytest.approx(0.0)
    assert metrics["accuracy"] == pytest.approx(0.5)


def test_mean_var_dev_metrics_report_margin_towards_annotators_and_pair_std():
    sigma = math.sqrt(0.125)
    out_a = torch.tensor([mean_var_outputs(1.25, sigma), mean_var_outputs(0.0, sigma)])
    out_b = torch.tensor([mean_var_outputs(0.25, sigma), mean_var_outputs(1.0, sigma)])
    targets = label_dist_targets([[0, 0, 0, 1, 0], [0, 0, 0, 0.5, 0.5]])
    metrics = get_method("mean_var").dev_metrics(out_a, out_b, targets)
    p_a = (PHI[1.0] - PHI[-1.0]) + (1 - PHI[1.0])  # mass above 0.5 of N(1, 0.5^2)
    p_b = PHI[-3.0]
    assert metrics["mean_margin"] == pytest.approx(((p_a - p_b) + (p_b - p_a)) / 2, abs=1e-5)
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["mean_margin_std"] == pytest.approx(0.5, rel=1e-5)

    # The second pair's margin is N(-1, 0.5^2): A slightly has mass Phi(-3) - Phi(-5), A clearly Phi(-5).
    def smoothed(q):
        return (q + dist.PROBABILITY_SMOOTHING) / (1 + 5 * dist.PROBABILITY_SMOOTHING)

    kl_first = -math.log(smoothed(PHI[1.0] - PHI[-1.0]))
    kl_second = 0.5 * math.log(0.5 / smoothed(PHI[-3.0] - PHI[-5.0])) + 0.5 * math.log(
        0.5 / smoothed(PHI[-5.0])
    )
    assert metrics["kl"] == pytest.approx((kl_first + kl_second) / 2, rel=1e-5)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([0.2, 0.2, 0.2, 0.2], "list of 5"),
        (None, "list of 5"),
        ([0.5, 0.5, 0.5, -0.5, 0.0], "negative"),
        ([0.1, 0.1, 0.1, 0.1, 0.1], "sums to"),
        ([0.2, 0.2, float("nan"), 0.2, 0.2], "non-finite"),
    ],
)
def test_bad_label_dist_rows_are_rejected_naming_the_file_pair_and_value(row, message):
    frame = pl.DataFrame(
        {"pair_id": ["ok", "bad"], "label_dist": [[0, 0, 1.0, 0, 0], row]},
        schema_overrides={"label_dist": pl.List(pl.Float64)},
    )
    with pytest.raises(ValueError, match=rf"dev\.parquet: pair_id 'bad': label_dist=.*{message}"):
        dist.encode_label_dist(frame, "dev.parquet")


def test_label_dist_targets_are_float32_rows():
    frame = pl.DataFrame({"pair_id": ["p"], "label_dist": [[0.0, 0.25, 0.25, 0.5, 0.0]]})
    encoded = dist.encode_label_dist(frame, "train.parquet")["label_dist"]
    assert encoded.dtype == np.float32 and encoded.tolist() == [[0.0, 0.25, 0.25, 0.5, 0.0]]


def test_registered_methods_declare_head_width_and_lower_is_better_kl_selection():
    mean_var, classification = get_method("mean_var"), get_method("classification")
    assert (mean_var.head_outputs, classification.head_outputs) == (2, 6)
    for method in (mean_var, classification):
        assert method.selection_metric == "kl" and not method.greater_is_better
        assert method.is_better(0.1, 0.2) and not method.is_better(0.3, 0.2)
        assert method.target_columns == ("label_dist",)


def test_score_frames_carry_mu_sigma_and_probabilities():
    sigma = math.sqrt(0.125)
    out_a = np.array([mean_var_outputs(1.25, sigma)])
    out_b = np.array([mean_var_outputs(0.25, sigma)])
    frame = scores_frame(get_method("mean_var"), ["p1"], out_a, out_b)
    row = frame.row(0, named=True)
    assert row["reward_a"] == pytest.approx(1.25) and row["reward_b"] == pytest.approx(0.25)
    assert row["sigma_a"] == pytest.approx(sigma) and row["sigma_b"] == pytest.approx(sigma)
    assert sum(row["label_probs"]) == pytest.approx(1.0)

    classification = scores_frame(
        get_method("classification"), ["p1"], np.zeros((1, 6)), np.zeros((1, 6))
    ).row(0, named=True)
    assert classification["reward_a"] == pytest.approx(0.4) and classification["reward_b"] == pytest.approx(
        0.4
    )
    assert classification["sigma_a"] is None
    np.testing.assert_allclose(classification["label_probs"], [0.2] * 5)


# --- a few training steps on a planted dataset ---


def planted_pairs(
    n_pairs: int, n_features: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features of A and B and label distributions from a true Mean-Var model linear in the features."""
    generator = torch.Generator().manual_seed(seed)
    features_a = torch.randn(n_pairs, n_features, generator=generator)
    features_b = torch.randn(n_pairs, n_features, generator=generator)
    true_weights = torch.randn(n_features, 2, generator=generator)
    with torch.no_grad():
        target = dist.mean_var_label_probs(features_a @ true_weights, features_b @ true_weights)
    return features_a, features_b, target


@pytest.mark.parametrize("method_name", ["mean_var", "classification"])
def test_a_few_training_steps_lower_the_kl_loss_on_a_planted_dataset(method_name):
    method = get_method(method_name)
    torch.manual_seed(0)
    features_a, features_b, target = planted_pairs(n_pairs=64, n_features=8, seed=3)
    head = torch.nn.Linear(8, method.head_outputs)  # stands in for the backbone's score head
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    targets = {"label_dist": target}
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = mean_loss(method, head(features_a), head(features_b), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(math.isfinite(value) for value in losses)


# --- the real trainer on the tiny offline backbone ---


def planted_distribution_trainset(folder, n_train: int, n_dev: int):
    """Texts with an easy signal: 'excellent' beats 'terrible' clearly (annotators agree); pairs whose
    responses both start with 'debatable' split annotators between A clearly and B clearly."""
    from reward_fixtures import planted_frame

    paths = []
    for part, n_rows, seed in (("train", n_train, 0), ("dev", n_dev, 1000)):
        frame = planted_frame(n_rows, seed, "mse").drop("score_a", "score_b")
        a_wins = frame["response_a"].str.starts_with("excellent")
        debatable = pl.Series([index % 3 == 0 for index in range(n_rows)])
        frame = frame.with_columns(
            response_a=pl.when(debatable)
            .then("debatable " + pl.col("response_a"))
            .otherwise(pl.col("response_a")),
            response_b=pl.when(debatable)
            .then("debatable " + pl.col("response_b"))
            .otherwise(pl.col("response_b")),
            label_dist=pl.Series(
                [
                    (
                        [0.5, 0.0, 0.0, 0.0, 0.5]
                        if split
                        else ([0.0, 0.0, 0.0, 0.1, 0.9] if a else [0.9, 0.1, 0.0, 0.0, 0.0])
                    )
                    for split, a in zip(debatable, a_wins, strict=True)
                ],
                dtype=pl.List(pl.Float64),
            ),
        )
        path = folder / f"{part}.parquet"
        frame.write_parquet(path)
        paths.append(path)
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("method_name", ["mean_var", "classification"])
def test_the_trainer_lowers_dev_kl_on_a_planted_distribution(method_name, tmp_path):
    from reward_fixtures import model_cfg

    from divpref.training.loop import train_reward_model
    from divpref.training.params import TrainingParams

    train, dev = planted_distribution_trainset(tmp_path, n_train=48, n_dev=24)
    params = TrainingParams(
        seed=0, learning_rate=3e-3, batch_size=8, max_epochs=2, eval_every_epochs=0.5, max_length=64
    )
    result = train_reward_model(
        train, dev, get_method(method_name), model_cfg(), params, tmp_path / "ckpt", progress=False
    )
    kl = [entry["kl"] for entry in result["curve"]]
    assert len(kl) == 4 and all(math.isfinite(value) for value in kl)
    assert kl[-1] < 0.85 * kl[0]  # measured: 0.84 -> 0.62 (mean_var), 0.54 -> 0.38 (classification)
