"""The real default: what ships in the package, what ``python run.py`` computes with nothing else, and which data set
each search space brings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ntkexp.benchmarks import BenchmarkConfig, load_ground_truth
from ntkexp.benchmarks.groundtruth import read_table
from ntkexp.io import resolve_path
from ntkexp.spaces import NASBench201
from ntkexp.tasks.correlate import scatter_figure

from .conftest import CONF, cli, make_cfg, nds_darts_records, shared

BEST_CIFAR10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def _run(tmp_path: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """run.py with an empty data root: nothing from ../shared or elsewhere can be used."""
    empty = tmp_path / "no_data"
    empty.mkdir(exist_ok=True)
    return cli(f"paths.data_root={empty}", f"paths.cache_dir={tmp_path / 'c'}", f"hydra.run.dir={tmp_path / 'run'}",
               "logger=csv", *args, timeout=timeout)


def test_the_default_config_is_the_real_benchmark() -> None:
    cfg = make_cfg([])
    assert (cfg.search_space.name, cfg.search_space.kwargs.C, cfg.search_space.kwargs.N) == ("nasbench201", 16, 5)
    assert cfg.search_space.benchmark.table.startswith("pkg://")
    assert cfg.dataset.name == "cifar10_probe" and cfg.dataset.path.startswith("pkg://")
    assert cfg.dataset.benchmark_key == "cifar10" and cfg.dataset.probe_only
    assert cfg.ntk.bn_mode in ("per_sample", "eval")  # the conventions that are fast on a CPU
    assert cfg.n_archs >= 100 and set(cfg.metric.names) == {"lga", "fnorm", "mean", "ncn"}


def test_the_shipped_nb201_table_holds_the_whole_benchmark() -> None:
    gt = load_ground_truth(BenchmarkConfig(table="pkg://nb201.npz"))
    frame = gt.frame
    assert len(frame) == 15_625 and list(frame["arch_index"]) == list(range(15_625))
    space = NASBench201()
    assert all(space.arch_of(i) == a for i, a in zip(frame["arch_index"][::97], frame["arch_str"][::97]))
    # published facts of NAS-Bench-201: the best CIFAR-10 arch and its accuracy, and the optima of the other sets
    assert frame["cifar10"].idxmax() == BEST_CIFAR10 and frame["cifar10"].max() == pytest.approx(94.3733, abs=1e-4)
    assert frame["cifar100"].max() == pytest.approx(73.5133, abs=1e-4)
    assert frame["ImageNet16-120"].max() == pytest.approx(47.3111, abs=1e-4)
    assert frame["cifar10_valid"].max() == pytest.approx(91.607, abs=1e-3)
    assert frame["cifar10_valid_12ep"].max() < 90 < frame["cifar10_valid"].max()  # 12 epochs is not final
    assert frame.drop(columns=["arch_str"]).notna().all().all()
    assert resolve_path("pkg://nb201.npz").stat().st_size < 2e6


def test_the_shipped_table_equals_its_sources() -> None:
    """Independent check against the benchmark files it was made from (when they are on this machine)."""
    source = pd.read_csv(shared("nb201_nats_tss_200ep/nats_bench.csv"))
    per_seed = pd.read_csv(shared("nb201_nats_tss_per_seed/nb201_per_seed_valid_oritest_time.csv"))
    table = read_table(resolve_path("pkg://nb201.npz"))
    assert list(table["arch_str"]) == list(source["ArchitectureString"])
    assert np.array_equal(table["cifar10"], source["CIFAR10TestAccuracy200Epochs"])
    assert np.array_equal(table["ImageNet16-120"], source["ImageNetTestAccuracy200Epochs"])
    assert np.array_equal(table["cifar10_valid"], per_seed["cifar10valid_xvalid_acc_mean"])
    assert np.allclose(table["cifar100_epoch_seconds"] * 200, per_seed["cifar100_train_all_time_s"])


def test_the_shipped_probe_images_are_real_labelled_cifar10() -> None:
    arrays = np.load(resolve_path("pkg://cifar10_probe.npz"))
    assert arrays["train_x"].shape == (1000, 3, 32, 32) and arrays["train_x"].dtype == np.uint8
    assert arrays["test_x"].shape == (250, 3, 32, 32)
    assert np.bincount(arrays["train_y"]).tolist() == [100] * 10
    assert arrays["train_y"][:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]  # the official CIFAR-10 order
    assert arrays["train_x"].std() > 40  # natural images, not a constant fill
    partial = np.load(shared("cifar10_partial/cifar10_partial.npz"))
    batch, pos = arrays["train_src_batch"], arrays["train_position"]
    rows = (batch.astype(int) - 1) * 932 + pos
    assert np.array_equal(partial["train_x"][rows].transpose(0, 3, 1, 2), arrays["train_x"])
    assert np.array_equal(partial["train_y"][rows], arrays["train_y"])
    assert (resolve_path("pkg://cifar10_probe.npz").parent / "PROVENANCE.md").exists()


@pytest.mark.slow
def test_run_py_needs_nothing_but_the_package(tmp_path: Path) -> None:
    proc = _run(tmp_path, "n_archs=8", "ntk.batch_size=16")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for words in ("NAS-Bench-201 network (C=16, N=5", "8 archs", "real CIFAR-10 images", "BN per_sample",
                  "200-epoch test accuracy", "lga: kendall_tau=", "ncn: kendall_tau="):
        assert words in out, (words, out)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["network"].startswith("NAS-Bench-201") and summary["n_archs"] == 8
    assert "probe batch of 16" in summary["data"] and "per_sample" in summary["convention"]


@pytest.mark.parametrize("args, what", [(["metric.train_epochs=1"], "metric.train_epochs=1"),
                                        (["task=kernel_evolution"], "task=kernel_evolution")])
def test_training_on_the_probe_images_is_refused_in_one_line(tmp_path: Path, args: list[str], what: str) -> None:
    proc = _run(tmp_path, *args, "n_archs=4", "ntk.batch_size=8", timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    for words in (what, "needs a training set", "dataset=cifar10", "cifar-10-batches-py", "dataset=cifar10_npz"):
        assert words in proc.stderr


@pytest.mark.parametrize("space", sorted(p.stem for p in (CONF / "search_space").glob("*.yaml")
                                         if not p.stem.startswith("_")))
def test_each_search_space_brings_its_natural_data_set(space: str) -> None:
    cfg = make_cfg([f"search_space={space}"])
    assert cfg.dataset.name == "cifar10_probe" and cfg.dataset.benchmark_key == "cifar10"
    assert make_cfg([f"search_space={space}", "dataset=cifar100"]).dataset.name == "cifar100"  # the user still wins


def test_the_readme_command_runs_on_cifar10_with_the_nds_file(tmp_path: Path) -> None:
    """``python run.py search_space=nds_darts metric=ncn init=gaussian``, with a (small) NDS file in the data root."""
    records = nds_darts_records()
    (tmp_path / "nds").mkdir()
    (tmp_path / "nds" / "DARTS.json").write_text(json.dumps(records))
    proc = cli("search_space=nds_darts", "metric=ncn", "init=gaussian", f"paths.data_root={tmp_path}",
               f"paths.cache_dir={tmp_path / 'c'}", "n_archs=4", "ntk.batch_size=8", "logger=csv",
               f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["conventions"]["dataset"]["name"] == "cifar10_probe" and summary["n_archs"] == 4
    assert "NDS DARTS" in summary["network"] and "ncn" in summary["correlations"]


def test_the_scatter_title_is_words_and_fits_the_figure() -> None:
    frame = pd.DataFrame({"lga": np.linspace(0, 1, 20), "ncn": -np.linspace(1, 50, 20), "accuracy": np.arange(20.0)})
    title = ("NAS-Bench-201 network (C=16, N=5: as benchmarked), 100 archs; real CIFAR-10 images shipped with "
             "ntkexp (1,000 train, 250 test); probe batch of 64 of its 1,000 training images (drawn by seed 0); NTK "
             "at initialisation; BN per_sample, init default, output reduction sum, params all, float32")
    for names in (["lga"], ["lga", "ncn"]):
        fig = scatter_figure(frame, names, title, "cifar10 accuracy (%)")
        fig.canvas.draw()
        text = fig._suptitle
        box = text.get_window_extent()
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
        assert "{" not in text.get_text() and "NAS-Bench-201 network" in text.get_text()
