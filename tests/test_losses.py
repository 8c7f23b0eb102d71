"""Losses, dev metrics and the method registry, on hand-worked values and against plain-Python references."""

import math

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from divpref.models import methods
from divpref.models.losses import bradley_terry_loss, paired_mse_loss, pairwise_accuracy, signed_margin
from divpref.models.methods import RewardMethod, get_method, mean_loss, register, scores_frame

BT, MSE = get_method("bt"), get_method("mse")


def column(*values: float) -> torch.Tensor:
    """A [n, 1] head output."""
    return torch.tensor(values, dtype=torch.float64).unsqueeze(1)


def test_bt_loss_hand_worked():
    # margins r_chosen - r_rejected: row 0 A chosen 2 - 0 = 2; row 1 B chosen 1 - 0 = 1
    losses = BT.loss(column(2.0, 0.0), column(0.0, 1.0), {"a_preferred": torch.tensor([1.0, 0.0])})
    assert losses.tolist() == pytest.approx(
        [math.log1p(math.exp(-2.0)), math.log1p(math.exp(-1.0))], abs=1e-12
    )
    loss = mean_loss(BT, column(2.0, 0.0), column(0.0, 1.0), {"a_preferred": torch.tensor([1.0, 0.0])})
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))) / 2  # 0.2200948...
    assert float(loss) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.2200948, abs=1e-7)


def test_bt_dev_metrics_hand_worked():
    # margins: +1 (right), -2 (wrong), 0 (tie: half), +3 (right) -> accuracy 2.5/4, mean margin 0.5
    out_a, out_b = column(1.0, 0.0, 5.0, 0.0), column(0.0, 2.0, 5.0, 3.0)
    targets = {"a_preferred": torch.tensor([1.0, 1.0, 0.0, 0.0])}
    metrics = BT.dev_metrics(out_a, out_b, targets)
    assert metrics["accuracy"] == pytest.approx(0.625)
    assert metrics["mean_margin"] == pytest.approx((1 - 2 + 0 + 3) / 4)
    assert BT.selection_metric == "accuracy" and BT.greater_is_better


def test_mse_loss_hand_worked():
    # errors A: 1-0=1, 2-2=0; B: 0-1=-1, 0-1=-1 -> (1 + 0 + 1 + 1) / 4
    targets = {"score_a": torch.tensor([0.0, 2.0]), "score_b": torch.tensor([1.0, 1.0])}
    assert MSE.loss(column(1.0, 2.0), column(0.0, 0.0), targets).tolist() == pytest.approx([1.0, 0.5])
    assert float(mean_loss(MSE, column(1.0, 2.0), column(0.0, 0.0), targets)) == pytest.approx(0.75)


def test_mse_dev_metrics_skip_equal_scores_for_margin():
    # pair 0: A better by score, r_a - r_b = 1 -> margin +1; pair 1: B better, r_a - r_b = 2 -> margin -2;
    # pair 2: equal scores -> no margin. Accuracy 1/2, mean margin -0.5, mse over all 6 responses.
    out_a, out_b = column(3.0, 2.0, 1.0), column(2.0, 0.0, 1.0)
    targets = {"score_a": torch.tensor([3.0, 0.0, 1.0]), "score_b": torch.tensor([1.0, 2.0, 1.0])}
    metrics = MSE.dev_metrics(out_a, out_b, targets)
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["mean_margin"] == pytest.approx(-0.5)
    assert metrics["mse"] == pytest.approx((0 + 4 + 0 + 1 + 4 + 0) / 6)
    assert MSE.selection_metric == "mse" and not MSE.greater_is_better


floats = st.floats(-20, 20, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(floats, floats, st.booleans()), min_size=1, max_size=12))
def test_bt_loss_matches_reference_and_is_swap_symmetric(rows):
    reward_a = torch.tensor([r[0] for r in rows], dtype=torch.float64)
    reward_b = torch.tensor([r[1] for r in rows], dtype=torch.float64)
    a_preferred = torch.tensor([1.0 if r[2] else 0.0 for r in rows], dtype=torch.float64)
    reference = sum(
        math.log1p(math.exp(-((a - b) if chosen_a else (b - a)))) for a, b, chosen_a in rows
    ) / len(rows)
    loss = bradley_terry_loss(reward_a, reward_b, a_preferred)
    assert float(loss) == pytest.approx(reference, rel=1e-9, abs=1e-12)
    swapped = bradley_terry_loss(reward_b, reward_a, 1.0 - a_preferred)
    assert float(swapped) == pytest.approx(float(loss), rel=1e-12, abs=1e-15)
    reference_accuracy = sum(
        1.0 if (a - b) * (1 if c else -1) > 0 else 0.5 if a == b else 0.0 for a, b, c in rows
    ) / len(rows)
    assert pairwise_accuracy(signed_margin(reward_a, reward_b, a_preferred)) == pytest.approx(
        reference_accuracy
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(floats, floats, floats, floats), min_size=1, max_size=12))
def test_paired_mse_matches_reference(rows):
    ra, rb, sa, sb = (torch.tensor([r[i] for r in rows], dtype=torch.float64) for i in range(4))
    reference = sum((a - x) ** 2 + (b - y) ** 2 for a, b, x, y in rows) / (2 * len(rows))
    assert float(paired_mse_loss(ra, rb, sa, sb)) == pytest.approx(reference, rel=1e-9, abs=1e-9)


def test_bt_gradient_pushes_chosen_up():
    reward_a = torch.tensor([0.0], requires_grad=True)
    reward_b = torch.tensor([0.0], requires_grad=True)
    bradley_terry_loss(reward_a, reward_b, torch.tensor([1.0])).backward()
    # d/dr_a of -log sigmoid(r_a - r_b) at 0 is -0.5: gradient descent raises the chosen reward
    assert float(reward_a.grad) == pytest.approx(-0.5) and float(reward_b.grad) == pytest.approx(0.5)


def test_empty_dev_set_gives_nan_not_a_crash():
    empty = torch.zeros((0, 1))
    metrics = BT.dev_metrics(empty, empty, {"a_preferred": torch.zeros(0)})
    assert math.isnan(metrics["accuracy"]) and math.isnan(metrics["mean_margin"])


def test_encode_targets_bt_and_bad_value_names_file_row_and_value():
    frame = pl.DataFrame({"pair_id": ["x", "y"], "chosen": ["a", "b"]})
    np.testing.assert_array_equal(BT.encode_targets(frame, "f.parquet")["a_preferred"], [1.0, 0.0])
    bad = pl.DataFrame({"pair_id": ["x", "y"], "chosen": ["a", "tie"]})
    with pytest.raises(ValueError, match=r"f\.parquet: pair_id 'y': chosen='tie'"):
        BT.encode_targets(bad, "f.parquet")
    with pytest.raises(ValueError, match=r"f\.parquet: missing column"):
        BT.encode_targets(pl.DataFrame({"pair_id": ["x"]}), "f.parquet")


def test_encode_targets_mse_rejects_non_finite_scores():
    frame = pl.DataFrame({"pair_id": ["x", "y"], "score_a": [1.0, float("nan")], "score_b": [0.5, 2.0]})
    with pytest.raises(ValueError, match=r"g: pair_id 'y': score_a=nan"):
        MSE.encode_targets(frame, "g")
    good = frame.with_columns(pl.Series("score_a", [1.0, 3.0]))
    encoded = MSE.encode_targets(good, "g")
    np.testing.assert_array_equal(encoded["score_a"], [1.0, 3.0])
    assert encoded["score_a"].dtype == np.float32


def test_registry_lookup_and_duplicates():
    assert {"bt", "mse"} <= set(methods.method_names())
    with pytest.raises(KeyError, match="unknown reward method 'nope'"):
        get_method("nope")
    assert register(BT) is BT  # re-registering the same object is harmless
    clone = RewardMethod(**{**BT.__dict__})
    with pytest.raises(ValueError, match="already registered"):
        register(clone)


def test_is_better_direction_and_nan():
    assert BT.is_better(0.8, 0.7) and not BT.is_better(0.7, 0.7)
    assert MSE.is_better(0.1, 0.2) and not MSE.is_better(0.2, 0.1)
    assert not BT.is_better(float("nan"), 0.1) and BT.is_better(0.1, float("nan"))


def test_scores_frame_has_contract_columns_and_nulls():
    frame = scores_frame(BT, ["p1", "p2"], np.array([[1.5], [0.0]]), np.array([[0.5], [2.0]]))
    assert frame.columns == ["pair_id", *methods.SCORE_COLUMNS]
    assert frame["reward_a"].to_list() == [1.5, 0.0] and frame["reward_b"].to_list() == [0.5, 2.0]
    assert frame["sigma_a"].null_count() == 2 and frame["label_probs"].null_count() == 2
    assert frame.schema["label_probs"] == pl.List(pl.Float64)
