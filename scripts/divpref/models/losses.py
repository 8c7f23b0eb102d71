"""Loss and metric formulas on reward tensors (the reward methods adapt head outputs to these).

torch is imported inside each function so that importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def signed_margin(reward_a: Tensor, reward_b: Tensor, a_preferred: Tensor) -> Tensor:
    """``r_chosen - r_rejected`` per pair; ``a_preferred`` is 1.0 where A was chosen, 0.0 where B was."""
    sign = 2.0 * a_preferred.to(reward_a.dtype) - 1.0
    return sign * (reward_a - reward_b)


def bradley_terry_row_loss(reward_a: Tensor, reward_b: Tensor, a_preferred: Tensor) -> Tensor:
    """Bradley-Terry negative log-likelihood of each pair, ``-log sigmoid(r_chosen - r_rejected)``."""
    import torch.nn.functional as F

    return -F.logsigmoid(signed_margin(reward_a, reward_b, a_preferred))


def bradley_terry_loss(reward_a: Tensor, reward_b: Tensor, a_preferred: Tensor) -> Tensor:
    """Mean over pairs of :func:`bradley_terry_row_loss`."""
    return bradley_terry_row_loss(reward_a, reward_b, a_preferred).mean()


def paired_mse_row_loss(reward_a: Tensor, reward_b: Tensor, score_a: Tensor, score_b: Tensor) -> Tensor:
    """Per pair, the mean over its 2 responses of the squared error of each reward against its score."""
    error_a = reward_a - score_a.to(reward_a.dtype)
    error_b = reward_b - score_b.to(reward_b.dtype)
    return (error_a.square() + error_b.square()) / 2


def paired_mse_loss(reward_a: Tensor, reward_b: Tensor, score_a: Tensor, score_b: Tensor) -> Tensor:
    """Squared error of each response's reward against its score, averaged over all 2n responses."""
    return paired_mse_row_loss(reward_a, reward_b, score_a, score_b).mean()


def pairwise_accuracy(margin: Tensor) -> float:
    """Share of pairs with a positive margin ``r_preferred - r_other`` (a zero margin counts one half).

    NaN for an empty tensor.
    """
    import torch

    if margin.numel() == 0:
        return float("nan")
    correct = (margin > 0).double() + 0.5 * (margin == 0).double()
    return float(torch.mean(correct))


def mean_or_nan(values: Tensor) -> float:
    """Mean of ``values`` as a float, NaN for an empty tensor."""
    return float(values.double().mean()) if values.numel() else float("nan")
