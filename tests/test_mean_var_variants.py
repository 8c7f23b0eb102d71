"""Mean-Var's correlation rho and its NLL baseline: hand-computed normal-CDF values, the tie-frequency rule,
configuration through the registry, and why the NLL of the interval labels would be no new objective."""

import math

import numpy as np
import polars as pl
import pytest
import torch

from divpref.models import distributional as dist
from divpref.models import method_options
from divpref.models.methods import get_method

# Standard normal CDF, from tables.
PHI = {
    0.2886751346: 0.6135850037,  # 0.5 / sqrt(3)
    0.3535533906: 0.6381631950,  # 0.5 / sqrt(2)
    0.5: 0.6914624613,
    0.8660254038: 0.8067618846,  # 1.5 / sqrt(3)
    1.0606601718: 0.8555778168,  # 1.5 / sqrt(2)
    1.5: 0.9331927987,
}
HALF_LN_2PI = 0.9189385332


def outputs(mu: float, sigma: float) -> list[float]:
    """Head output [mu, raw] with sigma = softplus(raw) + floor."""
    return [mu, math.log(math.expm1(sigma - dist.SIGMA_FLOOR))]


def pair(mu_a=0.0, mu_b=0.0, sigma_a=1.0, sigma_b=1.0):
    as_tensor = lambda values: torch.tensor([values], dtype=torch.float64)  # noqa: E731
    return as_tensor(outputs(mu_a, sigma_a)), as_tensor(outputs(mu_b, sigma_b))


def symmetric(z_tie: float, z_clear: float) -> list[float]:
    clear, slight, tie = 1 - PHI[z_clear], PHI[z_clear] - PHI[z_tie], 2 * PHI[z_tie] - 1
    return [clear, slight, tie, slight, clear]


@pytest.mark.parametrize(
    ("rho", "z_tie", "z_clear"),
    [
        (0.5, 0.5, 1.5),  # Var = 1 + 1 - 2 * 0.5 = 1
        (0.0, 0.3535533906, 1.0606601718),  # Var = 2
        (-0.5, 0.2886751346, 0.8660254038),  # Var = 3
    ],
)
def test_rho_enters_the_margin_variance_as_documented(rho, z_tie, z_clear):
    out_a, out_b = pair()
    probs = dist.mean_var_label_probs(out_a, out_b, rho)[0].numpy()
    np.testing.assert_allclose(probs, symmetric(z_tie, z_clear), atol=1e-5)  # 1e-6 smoothing


def test_margin_std_formula():
    sigma_a, sigma_b = torch.tensor([0.6]), torch.tensor([0.8])
    assert float(dist.margin_std(sigma_a, sigma_b, 0.0)) == pytest.approx(1.0)
    assert float(dist.margin_std(sigma_a, sigma_b, 0.5)) == pytest.approx(math.sqrt(1.0 - 0.48))


def test_gaussian_nll_of_the_annotators_strengths_by_hand():
    # mu_A - mu_B = 0.5 and margin std 1 (sigmas 1, rho 0.5).
    out_a, out_b = pair(mu_a=0.5)
    one_slight_a = {"label_dist": torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)}
    assert float(dist.mean_var_nll_loss(out_a, out_b, one_slight_a, rho=0.5)) == pytest.approx(
        HALF_LN_2PI + 0.125, abs=1e-9
    )
    tie_or_clear = {"label_dist": torch.tensor([[0.0, 0.0, 0.5, 0.0, 0.5]], dtype=torch.float64)}
    expected = 0.5 * (HALF_LN_2PI + 0.25 / 2) + 0.5 * (HALF_LN_2PI + 2.25 / 2)
    assert float(dist.mean_var_nll_loss(out_a, out_b, tie_or_clear, rho=0.5)) == pytest.approx(
        expected, abs=1e-9
    )
    # rho 0 (independent): std sqrt(2), so ln(std) = 0.5 ln 2 enters
    expected_independent = HALF_LN_2PI + 0.5 * math.log(2) + 0.25 / 4
    assert float(dist.mean_var_nll_loss(out_a, out_b, one_slight_a, rho=0.0)) == pytest.approx(
        expected_independent, abs=1e-9
    )


def test_the_label_nll_is_the_kl_plus_a_constant_so_it_would_duplicate_the_kl_objective():
    """Cross-entropy of the interval labels = KL + entropy of the target: same gradients as the KL loss."""
    target = {"label_dist": torch.tensor([[0.1, 0.2, 0.3, 0.25, 0.15]], dtype=torch.float64)}
    raw = torch.tensor([[0.3, -0.2]], dtype=torch.float64, requires_grad=True)
    other = torch.tensor([[-0.1, 0.4]], dtype=torch.float64)
    probs = dist.mean_var_label_probs(raw, other)
    cross_entropy = -(target["label_dist"] * probs.log()).sum()
    kl = dist.mean_var_loss(raw, other, target)
    entropy = -(target["label_dist"] * target["label_dist"].log()).sum()
    assert float(cross_entropy.detach()) == pytest.approx(float((kl + entropy).detach()), abs=1e-12)
    (grad_ce,) = torch.autograd.grad(cross_entropy, raw)
    (grad_kl,) = torch.autograd.grad(dist.mean_var_loss(raw, other, target), raw)
    torch.testing.assert_close(grad_ce, grad_kl)
    # The Gaussian NLL of the strengths is a different objective: its gradient differs.
    (grad_nll,) = torch.autograd.grad(dist.mean_var_nll_loss(raw, other, target), raw)
    assert not torch.allclose(grad_nll, grad_kl, atol=1e-3)


def test_tie_frequency_rule_by_hand():
    train = pl.DataFrame(
        {"label_dist": [[0.0, 0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.5, 0.0, 0.0], [0.0, 0.5, 0.0, 0.5, 0.0]]},
        schema={"label_dist": pl.List(pl.Float64)},
    )
    options = method_options.resolve("mean_var", {"rho": "tie_frequency"}, train)
    assert options == {"objective": "kl", "rho_setting": "tie_frequency", "tie_rate": 0.5, "rho": 0.5}
    assert method_options.rho_from_tie_rate(1.0) == method_options.MAX_RHO
    assert method_options.resolve("mean_var", {"rho": -0.25, "objective": "nll"}, None)["rho"] == -0.25
    assert method_options.resolve("mean_var", {}, None) == {}  # the registered method, unchanged
    assert method_options.resolve("bt", {}, None) == {}


@pytest.mark.parametrize(
    ("method", "settings", "message"),
    [
        ("mean_var", {"rho": 1.0}, "rho must be a number in"),
        ("mean_var", {"rho": "often"}, "rho must be a number in"),
        ("bt", {"rho": 0.5}, "takes no settings"),
    ],
)
def test_bad_settings_are_refused(method, settings, message):
    with pytest.raises(ValueError, match=message):
        method_options.resolve(method, settings, None)
    with pytest.raises(ValueError, match="no setting"):
        method_options.condition_settings("classification", {"objective": "nll"})


def test_configured_mean_var_binds_rho_and_objective_and_changes_the_fingerprint():
    plain = get_method("mean_var")
    nll = get_method("mean_var", {"rho": 0.0, "objective": "nll", "rho_setting": 0})
    correlated = get_method("mean_var", {"rho": 0.5, "objective": "kl", "rho_setting": 0.5})
    out_a, out_b = pair(mu_a=0.5)
    targets = {"label_dist": torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)}
    assert float(nll.loss(out_a, out_b, targets)) == pytest.approx(HALF_LN_2PI + 0.5 * math.log(2) + 0.0625)
    assert float(correlated.loss(out_a, out_b, targets)) == pytest.approx(
        float(dist.mean_var_loss(out_a, out_b, targets, rho=0.5))
    )
    assert float(correlated.loss(out_a, out_b, targets)) != pytest.approx(
        float(plain.loss(out_a, out_b, targets))
    )
    assert len({plain.fingerprint_key, nll.fingerprint_key, correlated.fingerprint_key}) == 3
    assert correlated.name == "mean_var" and correlated.selection_metric == "kl"
    assert "nll" in nll.dev_metrics(out_a, out_b, targets)
    columns = correlated.score_columns(out_a.numpy(), out_b.numpy())
    np.testing.assert_allclose(
        columns["label_probs"][0], dist.mean_var_label_probs(out_a, out_b, 0.5)[0].numpy(), atol=1e-12
    )
    with pytest.raises(ValueError, match="takes no settings"):
        get_method("bt", {"rho": 0.5})


def test_detection_row_labels_name_the_variants():
    from divpref.detection.table import row_label

    assert row_label("mean_var", "all") == "Mean-Var (KL)"
    assert row_label("mean_var", "all", "tie_frequency") == "Mean-Var (KL, rho = tie frequency)"
    assert row_label("mean_var", "all", 0.3) == "Mean-Var (KL, rho = 0.3)"
    assert row_label("mean_var", "all", None, "nll") == "Mean-Var (NLL, Independent)"
    assert row_label("likert_classification", "all") == "Classification (KL)"
    assert row_label("classification", "all") == "Pairwise classification (KL)"
