"""A reward method registered from OUTSIDE the package: a margin-ranking (hinge) loss on BT's training sets.

Named in config `method_modules`; tests/test_own_data.py trains, selects and scores it with Snakemake. It is
also the README's worked example of adding a method: everything the workflow needs is in this one call to
`register`. torch is imported inside the functions (the Snakefile imports this file while parsing).
"""

from __future__ import annotations

import numpy as np

from divpref.models.losses import mean_or_nan, pairwise_accuracy, signed_margin
from divpref.models.methods import (
    RewardMethod,
    optional_row_weight,
    register,
    require_columns,
    scalar_rewards,
    scalar_score_columns,
)

MARGIN = 1.0
"""The hinge: a pair costs nothing once r_chosen - r_rejected >= MARGIN."""


def encode(frame, source):
    """Targets from BT's training set: a_preferred = 1 where the annotators chose A, 0 where B."""
    require_columns(frame, ["chosen"], source)
    chosen = frame["chosen"].to_list()
    bad = [value for value in chosen if value not in ("a", "b")]
    if bad:
        raise ValueError(f"{source}: chosen={bad[0]!r} is not 'a' or 'b'")
    targets = {"a_preferred": np.array([value == "a" for value in chosen], dtype=np.float32)}
    return {**targets, **optional_row_weight(frame, source)}  # a trainset `weight` column, if any


def margins(out_a, out_b, targets):
    reward_a, reward_b = scalar_rewards(out_a, out_b)
    return signed_margin(reward_a, reward_b, targets["a_preferred"])


def loss(out_a, out_b, targets):
    """Per row (unreduced, as the loss contract asks): max(0, MARGIN - (r_chosen - r_rejected))."""
    import torch

    return torch.relu(MARGIN - margins(out_a, out_b, targets))


def dev_metrics(out_a, out_b, targets):
    """Pairwise accuracy (the selection metric), mean margin and the hinge loss on the dev pairs."""
    margin = margins(out_a.double(), out_b.double(), targets)
    hinge = float("nan") if margin.numel() == 0 else float((MARGIN - margin).clamp(min=0).mean())
    return {"accuracy": pairwise_accuracy(margin), "mean_margin": mean_or_nan(margin), "hinge": hinge}


MARGIN_RANKING = register(
    RewardMethod(
        name="margin_ranking",
        head_outputs=1,  # one scalar reward per response
        target_columns=("chosen",),
        encode_targets=encode,
        loss=loss,
        dev_metrics=dev_metrics,
        selection_metric="accuracy",
        greater_is_better=True,
        score_columns=scalar_score_columns,  # reward_a, reward_b; sigma_* and label_probs null
        trainset="bt",  # reads results/{dataset}/trainsets/margin_ranking-{labels}/ built like BT's
        needs_scores=False,
        single_value=True,  # divergence detection scores it by -|r_A - r_B|
    )
)
