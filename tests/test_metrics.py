"""Metrics against direct evaluations of their definitions, and the degenerate-arch policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ntkexp.metrics import METRICS, MetricContext, compute_metrics
from ntkexp.metrics.ntk_metrics import lga
from ntkexp.ntk import NTKConfig
from ntkexp.spaces import NASBench201
from ntkexp.stats import correlate, top_k_precision


def numpy_lga(theta: np.ndarray, y: np.ndarray) -> float:
    """Eq. (12) of Mok et al., written out with numpy loops over entries."""
    n = len(y)
    lab = np.array([[1.0 if y[i] == y[j] else -1.0 for j in range(n)] for i in range(n)])
    tc, lc = theta - theta.mean(), lab - lab.mean()
    num = sum(tc[i, j] * lc[i, j] for i in range(n) for j in range(n))
    return num / (np.sqrt((tc**2).sum()) * np.sqrt((lc**2).sum()))


def test_lga_equals_equation_12_on_a_hand_built_kernel() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 5))
    theta = a @ a.T
    y = np.array([0, 1, 1, 2, 0, 2, 1])
    assert lga(torch.from_numpy(theta), torch.from_numpy(y)) == pytest.approx(numpy_lga(theta, y), rel=1e-12)


def test_lga_is_one_for_the_label_kernel_and_scale_invariant() -> None:
    y = torch.tensor([0, 0, 1, 1, 2])
    lab = (y[:, None] == y[None, :]).double() * 2 - 1
    assert lga(lab, y) == pytest.approx(1.0)
    assert lga(3.0 * lab + 5.0, y) == pytest.approx(1.0)
    assert lga(-lab, y) == pytest.approx(-1.0)
    assert np.isnan(lga(torch.ones(5, 5), y))  # constant kernel: undefined, not a crash


def _ctx(arch: str, bn_mode: str = "train", batch: int = 6) -> MetricContext:
    torch.manual_seed(0)
    net = NASBench201(C=4, N=1).build(arch, num_classes=10)
    x = torch.randn(batch, 3, 8, 8)
    y = torch.arange(batch) % 3
    return MetricContext(net, x, y, 10, NTKConfig(bn_mode=bn_mode, dtype="float64"))


def test_kernel_metrics_match_numpy() -> None:
    ctx = _ctx("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    values = compute_metrics(["fnorm", "mean", "ncn", "cond", "lga"], ctx)
    k = ctx.ntk().kernel.numpy()
    eig = np.linalg.eigvalsh(k)
    assert values["fnorm"] == pytest.approx(np.sqrt((k**2).sum()), rel=1e-12)
    assert values["mean"] == pytest.approx(k.mean(), rel=1e-12)
    assert values["cond"] == pytest.approx(eig[-1] / eig[0], rel=1e-8)
    assert values["ncn"] == pytest.approx(-eig[-1] / eig[0], rel=1e-8)
    assert values["lga"] == pytest.approx(numpy_lga(k, ctx.y.numpy()), rel=1e-10)
    assert not ctx.flags


# the direction each paper gives (higher is better: +1), written from the papers, not read from the code
PUBLISHED_DIRECTIONS = {
    "fnorm": 1, "mean": 1, "ncn": 1, "lga": 1,  # Mok et al.: each expected to correlate positively
    "cond": -1,  # TE-NAS / TEG-NAS: a smaller condition number trains faster
    "linear_regions": 1,  # TE-NAS: more regions, more expressive
    "ntk_mse": -1,  # TEG-NAS: a smaller kernel-regression error generalises better
    "s_t": -1, "s_g": -1, "s_e": -1,  # NTK-score: eq. 9 for S_e (see the README on its two places in the paper)
    "gradsign": 1, "grad_norm": 1, "snip": 1, "grasp": 1, "fisher": 1, "synflow": 1, "jacob_cov": 1, "naswot": 1,
}


def test_every_metric_points_the_way_its_paper_says() -> None:
    declared = {name: METRICS.get(name).direction for name in METRICS}
    assert declared == PUBLISHED_DIRECTIONS


@pytest.mark.parametrize("bn_mode", ["train", "eval"])
def test_all_none_arch_is_flagged_not_raised(bn_mode: str) -> None:
    ctx = _ctx("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", bn_mode)
    values = compute_metrics(["fnorm", "mean", "ncn", "cond", "lga"], ctx)
    # only the classifier bias (and last BN) receive gradient: the kernel is rank-deficient
    assert "singular" in ctx.flags or "zero_kernel" in ctx.flags
    assert values["ncn"] == -np.inf and values["cond"] == np.inf
    assert all(np.isfinite(values[m]) or np.isnan(values[m]) for m in ("fnorm", "mean", "lga"))


def test_undefined_scores_rank_worst_in_correlation() -> None:
    acc = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    good = correlate(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), acc, +1, [0.2])
    assert good["kendall_tau"] == pytest.approx(1.0)
    # the worst arch has an undefined score: it still ranks last, so the ranking is still perfect
    flagged = correlate(np.array([np.nan, 2.0, 3.0, 4.0, 5.0]), acc, +1, [0.2])
    assert flagged["kendall_tau"] == pytest.approx(1.0) and flagged["n_undefined"] == 1
    # direction -1 metrics are oriented before ranking
    assert correlate(-acc, acc, -1, [])["spearman_rho"] == pytest.approx(1.0)
    # -inf NCN (singular kernel) is worst even for a good arch
    bad = correlate(np.array([1.0, 2.0, 3.0, 4.0, -np.inf]), acc, +1, [])
    assert bad["kendall_tau"] < 1.0


def test_top_k_precision_by_hand() -> None:
    score = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0, -4.0])
    acc = np.array([1.0, 9.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert top_k_precision(score, acc, 0.2) == pytest.approx(0.5)  # top-2 by score {0,1}, by acc {1,2}
