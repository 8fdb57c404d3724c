"""Short training (LGA_t), the kernel tracker, and the resumable checkpoint cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ntkexp.scoring import ArchScorer, NothingScored, RunContext
from ntkexp.train import kernel_correlation, relative_change

from .conftest import DIGITS, make_cfg

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|"
SMALL = [*DIGITS, "ntk.batch_size=8", "logger=csv", "task.progress=false", "threads=1", "metric=ntk",
         "dataset.train_subset=256", "trainer.batch_size=64"]


def _scorer(tmp_path: Path, extra: list[str] = ()) -> ArchScorer:
    return ArchScorer(RunContext.build(make_cfg(SMALL + list(extra), tmp_path), need_ground_truth=False))


def test_epoch_zero_of_the_tracker_equals_the_at_init_score(tmp_path: Path) -> None:
    at_init = _scorer(tmp_path / "a").score(ARCH)
    tracked = _scorer(tmp_path / "b").track(ARCH, [1])
    epoch0 = [r for r in tracked.records if r["epoch"] == 0][0]
    for name in ("lga", "fnorm", "mean", "ncn"):
        assert epoch0[name] == at_init.values[name]
    assert epoch0["kernel_corr"] == pytest.approx(1.0, abs=1e-12)
    assert epoch0["kernel_rel_diff"] == 0.0


def test_training_moves_the_kernel(tmp_path: Path) -> None:
    tracked = _scorer(tmp_path).track(ARCH, [1, 2])
    records = tracked.records
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert records[2]["kernel_rel_diff"] > 1e-3
    assert records[2]["kernel_corr"] < 1.0
    assert np.isfinite(records[1]["train_loss"])


def test_lga3_resumed_from_cached_lga1_equals_a_straight_run(tmp_path: Path) -> None:
    resumed = _scorer(tmp_path / "resumed", ["metric.train_epochs=1"])
    resumed.score(ARCH)
    ckpt_dir = resumed.checkpoint_dir(ARCH)
    assert ckpt_dir is not None and (ckpt_dir / "epoch_1.ckpt").exists()
    three = _scorer(tmp_path / "resumed", ["metric.train_epochs=3"])
    assert three.checkpoint_dir(ARCH) == ckpt_dir  # the same training run, further along
    resumed_3 = three.score(ARCH)
    assert (ckpt_dir / "epoch_3.ckpt").exists() and not resumed_3.cached
    straight_3 = _scorer(tmp_path / "straight", ["metric.train_epochs=3"]).score(ARCH)
    assert resumed_3.values == straight_3.values and resumed_3.extra == straight_3.extra
    # kernel tracking reuses the same kept states: its epoch-3 metrics are those of LGA_3
    tracked = _scorer(tmp_path / "resumed").track(ARCH, [1, 3])
    at_3 = [r for r in tracked.records if r["epoch"] == 3][0]
    assert all(at_3[n] == straight_3.values[n] for n in ("lga", "fnorm", "mean", "ncn"))
    assert np.isfinite(at_3["kernel_corr"])


def test_scoring_after_training_pays_for_no_epoch_zero_kernel(tmp_path: Path, monkeypatch) -> None:
    """LGA_t measures the network at epoch t only (no NTK at initialisation charged to it)."""
    from ntkexp.train import tracking

    epochs_measured: list[int] = []
    original = tracking.KernelTracker.measure

    def spy(self, model, epoch, extra=None):  # type: ignore[no-untyped-def]
        epochs_measured.append(epoch)
        return original(self, model, epoch, extra)

    monkeypatch.setattr(tracking.KernelTracker, "measure", spy)
    record = _scorer(tmp_path, ["metric.train_epochs=1", "use_cache=false"]).score(ARCH)
    assert epochs_measured == [1] and set(record.extra) == {"train_loss", "train_acc"}


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


def test_a_damaged_kept_state_is_named_removed_and_trained_again(tmp_path: Path, caplog) -> None:
    straight = _scorer(tmp_path / "straight", ["metric.train_epochs=2"]).score(ARCH)
    first = _scorer(tmp_path / "run", ["metric.train_epochs=1"])
    first.score(ARCH)
    ckpt = first.checkpoint_dir(ARCH) / "epoch_1.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # truncated
    with caplog.at_level("WARNING", logger="ntkexp"):
        again = _scorer(tmp_path / "run", ["metric.train_epochs=2"]).score(ARCH)
    assert again.error is None and again.values == straight.values  # trained from the start, the same network
    assert "cannot be read" in caplog.text and "epoch_1.ckpt" in caplog.text
    assert (first.checkpoint_dir(ARCH) / "epoch_2.ckpt").exists()


def test_kernel_evolution_where_every_arch_fails_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ntkexp.main import run
    from ntkexp.scoring.scorer import ArchScorer

    def broken(self, arch, repeat=0):  # type: ignore[no-untyped-def]
        raise RuntimeError("tensors on two devices")

    monkeypatch.setattr(ArchScorer, "build_model", broken)
    cfg = make_cfg(SMALL + ["task=kernel_evolution", "task.track_epochs=[0,1]", "task.per_band=1"], tmp_path)
    with pytest.raises(NothingScored, match="every arch failed to train or score; the first error: RuntimeError: "
                                           "tensors on two devices"):
        run(cfg)
