"""The loss contract: micro-batches and data-parallel shares add up to exactly the whole batch's gradient."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from reward_fixtures import model_cfg, planted_frame

from divpref.models.loading import load_backbone
from divpref.models.methods import ROW_WEIGHT, get_method, mean_loss, weighted_loss_sum
from divpref.training.batching import collate, encode_pairs, read_trainset
from divpref.training.distributed import Parallel, micro_batches, step_share
from divpref.training.steps import accumulate_step_gradients, trainable_parameters


def encoded_rows(method_name: str, n_rows: int, tmp_path, weighted: bool):
    """A planted trainset for ``method_name``, optionally with distinct row weights, tokenized."""
    method = get_method(method_name)
    frame = planted_frame(n_rows, seed=3, method="bt" if method_name == "bt" else "mse")
    if method_name in ("mean_var", "classification"):
        shares = [[0.0, 0.1, 0.2, 0.3, 0.4], [0.5, 0.0, 0.0, 0.25, 0.25]]
        frame = frame.drop("score_a", "score_b").with_columns(
            label_dist=np.array([shares[i % 2] for i in range(n_rows)])
        )
    if method_name == "likert_classification":
        shares = [[0.0, 0.1, 0.2, 0.3, 0.4], [0.5, 0.0, 0.0, 0.25, 0.25]]
        frame = frame.drop("score_a", "score_b").with_columns(
            likert_dist_a=np.array([shares[i % 2] for i in range(n_rows)]),
            likert_dist_b=np.array([shares[(i + 1) % 2] for i in range(n_rows)]),
        )
    if weighted:
        frame = frame.with_columns(weight=np.linspace(0.25, 2.0, n_rows))
    path = tmp_path / f"{method_name}.parquet"
    frame.write_parquet(path)
    frame, targets = read_trainset(path, method)
    return method, targets


def gradients(model) -> list[torch.Tensor]:
    grads = [p.grad.detach().clone() for p in trainable_parameters(model)]
    model.zero_grad(set_to_none=True)
    return grads


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return load_backbone(model_cfg(), num_labels=6, for_training=True)


@pytest.mark.parametrize("method_name", ["bt", "mse", "mean_var", "classification", "likert_classification"])
@pytest.mark.parametrize(("n_rows", "micro"), [(16, 4), (10, 4), (16, 16), (7, 3)])
def test_micro_batches_give_the_gradient_of_the_whole_batch(tiny_model, tmp_path, method_name, n_rows, micro):
    # 16 rows in 4 micro-batches of 4; a short last batch of 10 (4 + 4 + 2); 7 rows in 3 + 3 + 1
    model, tokenizer = tiny_model
    method, targets = encoded_rows(method_name, n_rows, tmp_path, weighted=True)
    frame = planted_frame(n_rows, seed=3)
    data = encode_pairs(frame, tokenizer, 64)
    rows = np.arange(n_rows)
    model.zero_grad(set_to_none=True)
    # reference: one forward over the whole batch, weighted mean loss
    batch, batch_targets = collate(data, rows, targets, tokenizer.pad_token_id)
    logits = model(**batch).logits.float()
    out_a, out_b = logits[:n_rows, : method.head_outputs], logits[n_rows:, : method.head_outputs]
    reference_loss = mean_loss(method, out_a, out_b, batch_targets)
    reference_loss.backward()
    reference = gradients(model)

    head = _HeadSlice(model, method.head_outputs)
    loss = accumulate_step_gradients(
        head, method, data, targets, rows, micro, tokenizer.pad_token_id, "cpu", False
    )
    accumulated = gradients(model)
    assert loss == pytest.approx(float(reference_loss), rel=1e-5)
    for got, want in zip(accumulated, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


def test_row_weights_matter_and_default_to_one(tmp_path):
    _, unweighted = encoded_rows("bt", 6, tmp_path, weighted=False)
    _, weighted = encoded_rows("bt", 6, tmp_path, weighted=True)
    assert ROW_WEIGHT not in unweighted and ROW_WEIGHT in weighted
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    method = get_method("bt")
    # hand-worked: weights 0.25..2 in steps of 0.35; sum w*l / sum w
    w = np.linspace(0.25, 2.0, 6)
    out = torch.zeros(6, 1)

    class Fixed:
        name = "fixed"

        @staticmethod
        def loss(out_a, out_b, targets):
            return losses

    total, weight = weighted_loss_sum(Fixed, out, out, {ROW_WEIGHT: torch.tensor(w)})
    assert float(total) == pytest.approx(float((w * losses.numpy()).sum()))
    assert float(weight) == pytest.approx(w.sum())
    total, weight = weighted_loss_sum(Fixed, out, out, {})
    assert (float(total), float(weight)) == (21.0, 6.0)
    assert method.loss(out, out, {"a_preferred": torch.ones(6)}).shape == (6,)


def test_a_reduced_loss_is_refused_with_the_contract_named():
    class Reduced:
        name = "reduced"

        @staticmethod
        def loss(out_a, out_b, targets):
            return out_a.sum()

    with pytest.raises(TypeError, match="one unreduced loss per row"):
        weighted_loss_sum(Reduced, torch.zeros(3, 1), torch.zeros(3, 1), {})


@given(n_rows=st.integers(0, 40), world=st.integers(1, 5), micro=st.integers(1, 9))
def test_shares_are_disjoint_cover_the_step_in_order_and_micro_batches_split_them(n_rows, world, micro):
    rows = np.arange(100, 100 + n_rows)
    shares = [step_share(rows, Parallel(rank, world)) for rank in range(world)]
    assert np.concatenate(shares).tolist() == rows.tolist()
    assert max(len(s) for s in shares) - min(len(s) for s in shares) <= 1
    for share in shares:
        chunks = micro_batches(share, micro)
        assert all(1 <= len(c) <= micro for c in chunks)
        assert (np.concatenate(chunks).tolist() if chunks else []) == share.tolist()


class _HeadSlice(torch.nn.Module):
    """The model with its 6-output head cut to the method's outputs (one model serves every method here)."""

    def __init__(self, model, n_outputs):
        super().__init__()
        self.model, self.n_outputs = model, n_outputs

    def forward(self, **inputs):
        output = self.model(**inputs)
        output.logits = output.logits[:, : self.n_outputs]
        return output
