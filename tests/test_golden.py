"""Every metric's value on one fixed network and batch (float64, train and per-sample BN) against the values pinned in
tests/fixtures/golden_metrics.json: a silent numeric change to any metric fails here. If a change is meant to move a
value, regenerate the file (``python -m tests.fixtures.golden_metrics --write``) and say why in the commit."""

from __future__ import annotations

import json

import pytest

from ntkexp.metrics import METRICS

from .fixtures.golden_metrics import GOLDEN, compute


@pytest.fixture(scope="module")
def values() -> dict[str, dict[str, float]]:
    return compute()


@pytest.mark.parametrize("bn_mode", ["train", "per_sample"])
def test_every_metric_keeps_its_golden_value(values: dict[str, dict[str, float]], bn_mode: str) -> None:
    pinned = json.loads(GOLDEN.read_text())[bn_mode]
    assert set(pinned) == set(METRICS.names()), "a metric was added or removed: regenerate the golden values"
    changed = {name: (values[bn_mode][name], pinned[name]) for name in pinned
               if values[bn_mode][name] != pytest.approx(pinned[name], rel=1e-7, abs=1e-9)}
    assert not changed, changed
