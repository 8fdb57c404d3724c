"""Short training (LGA_t), the kernel tracker, and the resumable checkpoint cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ntkexp.tasks.common import ArchScorer, build_setup
from ntkexp.train import kernel_correlation, relative_change

from .conftest import DIGITS, make_cfg

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|"
SMALL = [*DIGITS, "ntk.batch_size=8", "logger=csv", "task.progress=false", "threads=1", "metric=ntk",
         "dataset.train_subset=256", "dataset.batch_size=64"]


def _scorer(tmp_path: Path, extra: list[str] = ()) -> ArchScorer:
    return ArchScorer(build_setup(make_cfg(SMALL + list(extra), tmp_path), need_ground_truth=False))


def test_epoch_zero_of_the_tracker_equals_the_at_init_score(tmp_path: Path) -> None:
    at_init = _scorer(tmp_path / "a").score(ARCH)
    tracker = _scorer(tmp_path / "b", ["metric.train_epochs=1"]).tracked(ARCH, [1])
    epoch0 = [r for r in tracker.records if r["epoch"] == 0][0]
    for name in ("lga", "fnorm", "mean", "ncn"):
        assert epoch0[name] == at_init[name]
    assert epoch0["kernel_corr"] == pytest.approx(1.0, abs=1e-12)
    assert epoch0["kernel_rel_diff"] == 0.0


def test_training_moves_the_kernel(tmp_path: Path) -> None:
    tracker = _scorer(tmp_path, ["metric.train_epochs=2"]).tracked(ARCH, [1, 2])
    assert [r["epoch"] for r in tracker.records] == [0, 1, 2]
    assert tracker.records[2]["kernel_rel_diff"] > 1e-3
    assert tracker.records[2]["kernel_corr"] < 1.0
    assert np.isfinite(tracker.records[1]["train_loss"])


def test_lga3_resumed_from_cached_lga1_equals_a_straight_run(tmp_path: Path) -> None:
    resumed = _scorer(tmp_path / "resumed", ["metric.train_epochs=1"])
    resumed.score(ARCH)
    ckpt_dir = resumed.checkpoint_dir(ARCH)
    assert ckpt_dir is not None and (ckpt_dir / "epoch_1.ckpt").exists()
    three = _scorer(tmp_path / "resumed", ["metric.train_epochs=3"])
    assert three.checkpoint_dir(ARCH) == ckpt_dir  # the same training run, further along
    row_resumed = three.score(ARCH)
    assert (ckpt_dir / "epoch_3.ckpt").exists()
    row_straight = _scorer(tmp_path / "straight", ["metric.train_epochs=3"]).score(ARCH)
    for name in ("lga", "fnorm", "mean", "ncn", "kernel_corr", "kernel_rel_diff", "train_loss"):
        assert row_resumed[name] == row_straight[name], name


def test_kernel_comparison_helpers() -> None:
    a = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    assert kernel_correlation(a, 5 * a + 1) == pytest.approx(1.0)
    assert kernel_correlation(a, -a) == pytest.approx(-1.0)
    assert relative_change(2 * a, a) == pytest.approx(1.0)


def test_kernel_evolution_task_writes_table_and_figures(tmp_path: Path) -> None:
    import pandas as pd

    from ntkexp.main import run

    cfg = make_cfg(SMALL + ["task=kernel_evolution", "task.track_epochs=[0,1]", "task.per_band=2"], tmp_path)
    summary = run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    evo = pd.read_csv(run_dir / "evolution.csv")
    assert len(evo) == 3 * 2 * 2  # bands x archs x epochs
    assert set(evo["band"]) == {"high", "mid", "low"}
    assert (evo.loc[evo.epoch == 0, "kernel_corr"].dropna() == 1.0).all()
    ranks = pd.read_csv(run_dir / "rank_correlation.csv")
    assert set(ranks["metric"]) == {"lga", "fnorm", "mean", "ncn"} and set(ranks["epoch"]) == {0, 1}
    for name in ("kernel_evolution.png", "metrics_by_band.png", "rank_correlation.png"):
        assert (run_dir / name).stat().st_size > 1000
    assert summary["epochs"] == [0, 1]
    # a second run reuses the tracked records
    again = run(make_cfg(SMALL + ["task=kernel_evolution", "task.track_epochs=[0,1]", "task.per_band=2"], tmp_path))
    assert again["kendall_tau"] == summary["kendall_tau"]
