"""Methods registered from outside the package (config `method_modules`): loading, the toy method's maths."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml

from divpref.models.methods import get_method, load_method_modules, method_names

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "extensions" / "margin_ranking.py"


def test_loading_registers_once_and_names_a_missing_file(tmp_path):
    first = load_method_modules([TOY])
    assert load_method_modules([str(TOY)]) == first  # the same file again: no re-registration error
    assert "margin_ranking" in method_names()
    method = get_method("margin_ranking")
    assert (method.trainset_layout, method.needs_scores, method.single_value) == ("bt", False, True)
    with pytest.raises(FileNotFoundError, match=r"method_modules: .*nope\.py: no such file"):
        load_method_modules([tmp_path / "nope.py"])


def test_built_in_methods_declare_what_they_need():
    assert get_method("mse").needs_scores and not get_method("bt").needs_scores
    assert get_method("bt").trainset_layout == "bt" and get_method("mean_var").trainset_layout == "mean_var"
    assert get_method("bt").single_value and not get_method("classification").single_value


def test_margin_ranking_loss_and_metrics_by_hand():
    load_method_modules([TOY])
    method = get_method("margin_ranking")
    targets = method.encode_targets(
        pl.DataFrame({"pair_id": ["x", "y", "z"], "chosen": ["a", "b", "a"]}), "t"
    )
    assert targets["a_preferred"].tolist() == [1.0, 0.0, 1.0]
    tensors = {name: torch.from_numpy(values) for name, values in targets.items()}
    out_a = torch.tensor([[2.0], [0.0], [-1.0]])
    out_b = torch.tensor([[0.0], [-0.5], [0.0]])
    # r_chosen - r_rejected = 2, -0.5, -1  ->  hinge max(0, 1 - m) = 0, 1.5, 2
    assert method.loss(out_a, out_b, tensors).tolist() == pytest.approx([0.0, 1.5, 2.0])  # per row
    metrics = method.dev_metrics(out_a, out_b, tensors)
    assert metrics == pytest.approx({"accuracy": 1 / 3, "mean_margin": 0.5 / 3, "hinge": 3.5 / 3})
    with pytest.raises(ValueError, match="chosen='tie'"):
        method.encode_targets(pl.DataFrame({"pair_id": ["x"], "chosen": ["tie"]}), "t")
    columns = method.score_columns(np.array([[1.0]]), np.array([[2.0]]))
    assert columns["reward_a"].tolist() == [1.0] and columns["label_probs"] is None


def test_slurm_profile_runs_pretrained_scoring_as_a_gpu_job():
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    resources = profile["set-resources"]["score_pretrained"]
    # as many GPUs as the condition's model.gpus (the rule's threads; tests/test_pretrained.py)
    assert (
        resources["gpu"] == "threads"
        and resources["gpu_model"] == profile["set-resources"]["score"]["gpu_model"]
    )
    assert resources["slurm_partition"] == profile["set-resources"]["train"]["slurm_partition"]
