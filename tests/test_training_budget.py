"""Training budgets in optimiser steps, the CPU bfloat16 fast path and its fallback, and the precision recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ntkexp.data import ArrayDataModule, DataConfig
from ntkexp.scoring import ArchScorer, RunContext
from ntkexp.spaces.nasbench201 import NASBench201
from ntkexp.train import TrainConfig, evaluate_accuracy, fit, module
from ntkexp.train import config as train_config  # where resolved_precision looks the CPU up
from ntkexp.train.tracking import CurveRecorder

from .conftest import DIGITS, QUIET, cli, make_cfg

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|"
DIGITS_DATA = dict(name="digits", kind="digits", path=None, in_channels=1, resolution=8, mean=[0.3], std=[0.4],
                   benchmark_key="digits", crop_padding=1, flip=False)


def _train(cfg: TrainConfig, epochs: int, batch: int = 32, subset: int | None = 200,
           epoch_steps: int | None = None) -> tuple[torch.nn.Module, list[dict], object]:
    dm = ArrayDataModule(DataConfig(**DIGITS_DATA, batch_size=batch, train_subset=subset), seed=0,
                          epoch_steps=epoch_steps)
    torch.manual_seed(0)
    model = NASBench201(C=4, N=1).build(ARCH, num_classes=10, in_channels=1)
    curve: list[dict] = []
    trainer = fit(model, dm, cfg, max_epochs=epochs, callbacks=[CurveRecorder(curve)])
    return model, curve, trainer


@pytest.mark.parametrize("epoch_steps,epochs", [(1, 7), (3, 2), (None, 2)])
def test_the_step_budget_is_honoured_exactly(epoch_steps: int | None, epochs: int) -> None:
    cfg = TrainConfig(precision="32-true", epoch_steps=epoch_steps)
    _, curve, trainer = _train(cfg, epochs, batch=32, subset=200, epoch_steps=epoch_steps)
    per_epoch = epoch_steps if epoch_steps is not None else -(-200 // 32)  # 7 full batches cover the 200 images
    assert trainer.global_step == len(curve) == epochs * per_epoch


def test_six_steps_are_six_steps_however_they_are_grouped_into_epochs() -> None:
    """t in steps: 6 one-step epochs, 2 three-step epochs and 1 six-step epoch see the same images in the same order
    under the same (step-based) learning-rate schedule, so they end in the same network."""
    results = []
    for steps, epochs in ((1, 6), (3, 2), (6, 1)):
        cfg = TrainConfig(precision="32-true", epoch_steps=steps, schedule_steps=50)
        model, curve, _ = _train(cfg, epochs, epoch_steps=steps)
        results.append((torch.cat([p.detach().flatten() for p in model.parameters()]), [c["loss"] for c in curve]))
    (w1, l1), (w3, l3), (w6, l6) = results
    assert l1 == pytest.approx(l3, rel=1e-5) and l1 == pytest.approx(l6, rel=1e-5)
    assert torch.allclose(w1, w3, atol=1e-5) and torch.allclose(w1, w6, atol=1e-5)
    # a schedule in steps: with the cycle over 6 steps the last lr is ~0, so the weights differ from a 50-step cycle
    model, _, _ = _train(TrainConfig(precision="32-true", epoch_steps=6, schedule_steps=6), 1, epoch_steps=6)
    assert not torch.allclose(torch.cat([p.detach().flatten() for p in model.parameters()]), w6, atol=1e-5)


def test_cpuinfo_flags_decide_native_bfloat16(tmp_path: Path) -> None:
    with_bf16, without, elsewhere = tmp_path / "a", tmp_path / "b", tmp_path / "missing"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n")
    assert module.cpu_has_native_bf16(with_bf16) is True
    assert module.cpu_has_native_bf16(without) is False  # emulated bfloat16 is slower than float32
    assert module.cpu_has_native_bf16(elsewhere) is False


def test_auto_precision_takes_bfloat16_only_where_the_cpu_has_it(monkeypatch) -> None:
    cfg = TrainConfig()
    monkeypatch.setattr(train_config, "cpu_has_native_bf16", lambda *a: True)
    assert cfg.resolved_precision("cpu") == "bf16-mixed"
    monkeypatch.setattr(train_config, "cpu_has_native_bf16", lambda *a: False)
    assert cfg.resolved_precision("cpu") == "32-true"
    assert cfg.resolved_precision("cuda") == "bf16-mixed"
    assert TrainConfig(precision="64-true").resolved_precision("cuda") == "64-true"


@pytest.mark.parametrize("native", [True, False])
def test_the_cpu_training_path_learns_in_either_precision(monkeypatch, native: bool) -> None:
    """Finite losses and accuracy well above chance on the digits after 40 steps, with bfloat16 autocast where the
    CPU has it and float32 where it does not; the network comes back in float32 and NCHW."""
    monkeypatch.setattr(train_config, "cpu_has_native_bf16", lambda *a: native)
    cfg = TrainConfig(lr=0.05, epoch_steps=40, schedule="constant")
    model, curve, trainer = _train(cfg, 1, batch=64, subset=None, epoch_steps=40)
    assert trainer.precision == ("bf16-mixed" if native else "32-true")
    assert all(np.isfinite(c["loss"]) for c in curve) and len(curve) == 40
    dm = ArrayDataModule(DataConfig(**DIGITS_DATA), seed=0)
    assert evaluate_accuracy(model, *dm.test_tensors) > 30.0  # chance is 10 %
    assert all(p.dtype == torch.float32 for p in model.parameters())
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous()


def test_the_precision_used_is_in_the_conventions_of_scores_after_training(tmp_path: Path, monkeypatch) -> None:
    small = [*DIGITS, "ntk.batch_size=8", "logger=csv", "threads=1", "metric=lga", "dataset.train_subset=128",
             "trainer.batch_size=64", "trainer.epoch_steps=1", "metric.train_epochs=3"]
    for native, expected in ((True, "bf16-mixed"), (False, "32-true")):
        monkeypatch.setattr(train_config, "cpu_has_native_bf16", lambda *a, n=native: n)
        scorer = ArchScorer(RunContext.build(make_cfg(small, tmp_path / expected), need_ground_truth=False))
        record = scorer.score(ARCH)
        assert scorer.training("t")["trainer"]["precision"] == expected
        assert expected in scorer.description()["convention"]
        assert "3 optimiser steps (192 images seen)" in scorer.description()["convention"]
        assert np.isfinite(record.values["lga"])


def test_kernel_evolution_names_t_in_steps_and_images_with_intervals(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = cli("task=kernel_evolution", *DIGITS, "task.select=sample", "n_archs=6", "task.track_epochs=[0,3]",
               "trainer.epoch_steps=1", "dataset.train_subset=128", "trainer.batch_size=32", *QUIET,
               f"hydra.run.dir={out}", f"paths.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    evo = pd.read_csv(out / "evolution.csv")
    assert set(zip(evo["epoch"], evo["step"], evo["images"])) == {(0, 0, 0), (3, 3, 96)}
    ranks = pd.read_csv(out / "rank_correlation.csv")
    finite = ranks.dropna(subset=["kendall_tau", "kendall_lo", "kendall_hi"])
    assert len(finite) > 0
    inside = (finite["kendall_lo"] <= finite["kendall_tau"] + 1e-12) & (finite["kendall_tau"] <= finite["kendall_hi"] + 1e-12)
    assert inside.all() and (finite["kendall_hi"] > finite["kendall_lo"]).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_per_epoch"] == 1 and "t in optimiser steps" in summary["note"]
    assert summary["conventions"]["training"]["trainer"]["precision"] in ("bf16-mixed", "32-true")


def test_each_space_brings_its_benchmarks_training_protocol_and_the_command_line_wins() -> None:
    nb101, nds, nb201 = (make_cfg([f"search_space={s}"]).trainer for s in ("nasbench101", "nds_darts", "nasbench201"))
    assert (nb101.optimizer, nb101.lr, nb101.weight_decay, nb101.schedule_epochs, nb101.epoch_images) == (
        "rmsprop", 0.2, 1e-4, 108, 40000)
    assert (nds.optimizer, nds.batch_size, nds.weight_decay) == ("sgd", 128, 5e-4)
    assert (nb201.optimizer, nb201.lr, nb201.schedule_epochs, nb201.batch_size) == ("sgd", 0.1, 200, None)
    assert make_cfg(["search_space=nasbench101", "trainer=default"]).trainer.optimizer == "sgd"
    table1 = make_cfg(["experiment=lga1_table1_cpu"])
    assert table1.search_space.name == "nasbench101" and table1.trainer.optimizer == "rmsprop"
    assert list(table1.task.track_epochs) == [0, 1] and table1.dataset.name == "cifar10_npz"


def test_the_protocols_batch_and_optimiser_are_the_ones_trained_with(tmp_path: Path) -> None:
    cfg = make_cfg([*DIGITS, "trainer=nb101", "trainer.batch_size=16", "trainer.epoch_images=null",
                    "dataset.train_subset=64", "threads=1"], tmp_path)
    ctx = RunContext.build(cfg, need_ground_truth=False)
    assert ctx.dataset.batch_size == 16 and ctx.data.steps_per_epoch == 4  # 64 images in batches of 16
    torch.manual_seed(0)
    model = NASBench201(C=4, N=1).build(ARCH, num_classes=10, in_channels=1)
    trainer = fit(model, ctx.data, ctx.train, max_epochs=1)
    opt = trainer.optimizers[0]
    assert isinstance(opt, torch.optim.RMSprop) and opt.defaults["eps"] == 1.0 and opt.defaults["alpha"] == 0.9
    assert trainer.global_step == 4
    with pytest.raises(ValueError, match="trainer.optimizer"):
        TrainConfig(optimizer="adam")


@pytest.mark.parametrize("setting", [{"lr": float("nan")}, {"lr": -1.0}, {"lr": 0.0}, {"weight_decay": float("inf")},
                                     {"momentum": -0.5}])
def test_non_finite_or_negative_training_settings_are_refused(setting: dict) -> None:
    with pytest.raises(ValueError, match=f"trainer.{next(iter(setting))}"):
        TrainConfig(**setting)


def test_nan_pixels_in_the_data_are_refused(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((20, 32, 32, 3)).astype(np.float32)
    x[3, 0, 0, 0] = np.nan
    path = tmp_path / "bad.npz"
    np.savez(path, train_x=x, train_y=np.arange(20) % 10, test_x=x[:4], test_y=np.arange(4))
    dm = ArrayDataModule(DataConfig(name="bad", kind="npz", path=str(path)))
    with pytest.raises(ValueError, match="1 train images hold NaN"):
        dm.setup()


def test_training_that_diverges_is_said_in_one_line_and_in_the_summary(tmp_path: Path) -> None:
    """trainer.lr=1e12 exited 0 with every arch flagged nonfinite and nothing saying that training diverged."""
    proc = cli("task=kernel_evolution", *DIGITS, "task.select=sample", "n_archs=3", "task.track_epochs=[0,3]",
               "trainer.epoch_steps=1", "trainer.lr=1e12", "logger=csv", "task.progress=false", "threads=1",
               "ntk.batch_size=8", f"hydra.run.dir={tmp_path / 'run'}", f"paths.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr
    assert "training diverged for 3 of 3 archs" in proc.stdout + proc.stderr and "lower trainer.lr" in proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert len(summary["diverged"]) == 3 and all(1 <= s <= 3 for s in summary["diverged"].values())
