"""On a CUDA device (skipped without one): the scoring path gives on the GPU what it gives on the CPU, the CPU run
being the reference, in every BN mode and for every metric; training and kernel tracking run on the GPU with the
precision and device they record. Run on the GPU machine by scripts/gpu_check.sh."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ntkexp.main import run
from tests.conftest import DIGITS, TINY, make_cfg

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SMALL_NB201 = ["search_space.kwargs.C=8", "search_space.kwargs.N=1"]
#: metrics whose values are smooth in the weights: CPU and GPU agree to float32 rounding (cuDNN may use TF32)
SMOOTH = ["fnorm", "mean", "lga", "grad_norm", "snip", "synflow", "s_t"]


def scored(tmp_path: Path, device: str, extra: list[str]) -> pd.DataFrame:
    run(make_cfg([*TINY, f"device={device}", *extra], tmp_path / device))
    return pd.read_csv(tmp_path / device / "run" / "scores.csv").set_index("arch").sort_index()


@pytest.mark.parametrize("bn_mode", ["per_sample", "eval", "train"])
def test_every_metric_on_cuda_matches_the_cpu(tmp_path: Path, bn_mode: str) -> None:
    extra = [*SMALL_NB201, "metric=all", f"bn_mode={bn_mode}"]
    cpu, gpu = scored(tmp_path, "cpu", extra), scored(tmp_path, "cuda", extra)
    assert list(cpu.index) == list(gpu.index)
    assert not gpu["flags"].fillna("").str.contains("error:").any(), gpu["flags"].tolist()
    metrics = [c for c in cpu.columns if c not in ("index", "accuracy", "flags", "seconds", "cached")]
    assert set(SMOOTH) <= set(metrics)
    for name in metrics:
        a, b = cpu[name].to_numpy(float), gpu[name].to_numpy(float)
        assert (np.isfinite(a) == np.isfinite(b)).all(), (name, a, b)
    for name in SMOOTH:
        a, b = cpu[name].to_numpy(float), gpu[name].to_numpy(float)
        ok = np.isfinite(a)
        np.testing.assert_allclose(b[ok], a[ok], rtol=2e-2, atol=1e-6 * np.abs(a[ok]).max(), err_msg=name)


def test_training_and_kernel_tracking_on_cuda(tmp_path: Path) -> None:
    cfg = make_cfg([*DIGITS, "device=cuda", "task=kernel_evolution", "task.select=sample", "n_archs=3",
                    "task.track_epochs=[0,2]", "logger=csv", "task.progress=false"], tmp_path)
    run(cfg)
    frame = pd.read_csv(tmp_path / "run" / "evolution.csv")
    trained = frame[frame["epoch"] == 2]
    assert len(trained) == 3 and np.isfinite(trained[["lga", "fnorm", "kernel_corr"]].to_numpy()).all()
    assert (trained["kernel_corr"] < 1).all()  # the weights moved: Theta_t is not Theta_0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    training = summary["conventions"]["training"]["trainer"]
    assert training["accelerator"] == "cuda" and training["precision"] == "bf16-mixed"
    assert summary["device"].startswith("cuda")
