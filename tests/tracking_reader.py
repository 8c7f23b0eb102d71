"""A run's TensorBoard event files read back with TensorBoard's own reader (shared by tracking tests)."""

import math
from pathlib import Path

import pytest

from divpref.training import tracking


def event_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the event files in ``folder``: (step, value) in file order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def assert_matches_curve(scalars: dict, result: dict) -> None:
    """One loss and lr point per optimisation step; every dev metric equals the curve at its step."""
    steps = list(range(1, result["total_steps"] + 1))
    assert [step for step, _ in scalars[tracking.LOSS_TAG]] == steps
    assert [step for step, _ in scalars[tracking.LR_TAG]] == steps
    metrics = tracking.dev_metrics(result["curve"][0])
    assert metrics, "the curve has no dev metrics"
    for name in metrics:
        expected = [(entry["step"], float(entry[name])) for entry in result["curve"]]
        logged = scalars[name]
        assert [step for step, _ in logged] == [step for step, _ in expected], name
        for (_, got), (_, want) in zip(logged, expected, strict=True):
            assert got == pytest.approx(want, rel=1e-6, abs=1e-7) or (math.isnan(got) and math.isnan(want))
