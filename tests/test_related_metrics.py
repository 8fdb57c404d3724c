"""TEG-NAS, NTK-score, GradSign and the zero-cost proxies against independent hand or numpy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ntkexp.metrics import (
    METRICS,
    GradSignConfig,
    MetricContext,
    borda_count,
    combine,
    compute_metrics,
    sum_of_ranks,
)
from ntkexp.metrics.gradsign import gradsign_from_gradients, per_sample_loss_gradients
from ntkexp.metrics.ntk_score import top_eigen_fraction
from ntkexp.metrics.shared import joint_kernel
from ntkexp.ntk import NTKConfig, NTKResult
from ntkexp.spaces import NASBench201


def mlp(d_in: int, hidden: int, d_out: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out)).double()


def ctx_for(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int, **kw) -> MetricContext:
    return MetricContext(model, x, y, classes, NTKConfig(bn_mode="eval", dtype="float64"), **kw)


def test_linear_regions_of_a_one_hidden_layer_net_on_a_line() -> None:
    net = mlp(1, 12, 3)
    x = torch.linspace(-3, 3, 4001, dtype=torch.float64)[:, None]
    w, b = net[0].weight.detach().numpy()[:, 0], net[0].bias.detach().numpy()
    breakpoints = -b / w
    expected = int(np.sum((breakpoints > -3) & (breakpoints < 3))) + 1  # pieces of the line
    value = compute_metrics(["linear_regions"], ctx_for(net, x, torch.zeros(4001, dtype=torch.long), 3))
    assert value["linear_regions"] == expected


def test_gradsign_on_two_samples_with_opposite_gradients() -> None:
    net = nn.Linear(2, 2, bias=False).double()
    nn.init.zeros_(net.weight)  # softmax = (1/2, 1/2): dL_i/dW = (p - e_y) x_i^T
    y = torch.tensor([0, 0])
    opposite = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    assert compute_metrics(["gradsign"], ctx_for(net, opposite, y, 2))["gradsign"] == 0.0
    same = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    # column 0 of both rows: sign -1 (twice) and +1 (twice); column 1 has zero gradients
    assert compute_metrics(["gradsign"], ctx_for(net, same, y, 2))["gradsign"] == 4.0


@pytest.mark.parametrize("bn_mode", ["train", "eval"])
def test_per_sample_loss_gradients_match_a_backward_loop(bn_mode: str) -> None:
    torch.manual_seed(0)
    net = NASBench201(C=3, N=1).build(NASBench201().arch_of(123), num_classes=5)
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 3, 4, 0])
    ctx = MetricContext(net, x, y, 5, NTKConfig(bn_mode=bn_mode, dtype="float64"),
                        settings={"gradsign": GradSignConfig(params="ntk", bn_mode="ntk")})
    fast = per_sample_loss_gradients(ctx)
    ref = net.double().train(bn_mode == "train")
    out = ref(x.double())
    params = list(ref.parameters())
    rows = []
    for i in range(6):
        loss = torch.nn.functional.cross_entropy(out[i : i + 1], y[i : i + 1])
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, retain_graph=True)]))
    loop = torch.stack(rows)
    fast_rows = torch.cat([fast[name] for name, _ in ref.named_parameters()], 1)
    assert torch.allclose(fast_rows, loop, rtol=1e-9, atol=1e-12)
    # signs agree wherever the gradient is above rounding level; each ambiguous entry moves GradSign by at most 2
    clear = loop.abs() > 1e-9
    assert torch.equal(torch.sign(fast_rows)[clear], torch.sign(loop)[clear])
    expected = float(torch.sign(loop).sum(0).abs().sum())
    assert abs(gradsign_from_gradients(fast) - expected) <= 2 * int((~clear).sum())


def test_s_t_on_a_diagonal_kernel() -> None:
    assert top_eigen_fraction(torch.tensor([1.0, 4.0, 2.0, 3.0])) == pytest.approx(0.7)  # ceil(sqrt 4) = 2: (4+3)/10
    assert top_eigen_fraction(torch.ones(9)) == pytest.approx(3 / 9)
    ctx = ctx_for(mlp(2, 3, 2), torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, dtype=torch.long), 2)
    ctx._cache["ntk"] = NTKResult(kernel=torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64)),
                                  logits=torch.zeros(4, 2), n_params=1)  # the shared NTK, given
    assert compute_metrics(["s_t"], ctx)["s_t"] == pytest.approx(0.7)


def test_kernel_regression_interpolates_the_training_labels() -> None:
    """With the held-out batch equal to the probe batch, NTK regression returns the labels: S_g = MSE = 0."""
    net = mlp(5, 64, 3)
    x = torch.randn(6, 5, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    values = compute_metrics(["s_g", "ntk_mse"], ctx_for(net, x, y, 3, x_test=x.clone(), y_test=y.clone()))
    assert values["s_g"] == pytest.approx(0.0, abs=1e-6)
    # the last-layer kernel (64 features + bias) of 6 points is invertible too
    assert values["ntk_mse"] == pytest.approx(0.0, abs=1e-6)


def test_s_e_follows_its_formula_on_the_computed_kernels() -> None:
    net = mlp(4, 16, 3)
    x, xt = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0])
    ctx = ctx_for(net, x, y, 3, x_test=xt, y_test=y.clone())
    value = compute_metrics(["s_e"], ctx)["s_e"]
    (k1, n), (k2, _) = joint_kernel(ctx), joint_kernel(ctx, perturb_std=1e-2)
    onehot = np.eye(3)[y.numpy()]

    def regress(k: np.ndarray) -> np.ndarray:
        return k[n:, :n] @ np.linalg.pinv(k[:n, :n]) @ onehot

    f1, f2 = regress(k1.numpy()), regress(k2.numpy())
    p = np.exp(f1) / np.exp(f1).sum(1, keepdims=True)
    logq = f2 - np.log(np.exp(f2).sum(1, keepdims=True))
    assert value == pytest.approx(float((p * logq).sum(1).mean()), rel=1e-8)
    assert not np.allclose(k1.numpy(), k2.numpy())  # the perturbation was applied


def _linear_ctx() -> tuple[MetricContext, np.ndarray, np.ndarray, np.ndarray]:
    torch.manual_seed(3)
    net = nn.Linear(3, 4, bias=False).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0])
    return ctx_for(net, x, y, 4), net.weight.detach().numpy(), x.numpy(), y.numpy()


def test_grad_norm_snip_fisher_by_hand_on_a_linear_model() -> None:
    ctx, w, x, y = _linear_ctx()
    logits = x @ w.T
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    dlogits = (p - np.eye(4)[y]) / len(y)  # d mean-CE / d logits
    grad_w = dlogits.T @ x
    values = compute_metrics(["grad_norm", "snip", "fisher"], ctx)
    assert values["grad_norm"] == pytest.approx(np.linalg.norm(grad_w), rel=1e-10)
    assert values["snip"] == pytest.approx(np.abs(grad_w * w).sum(), rel=1e-10)
    assert values["fisher"] == pytest.approx(0.5 * ((logits * dlogits) ** 2).mean(0).sum(), rel=1e-10)


def test_grasp_with_the_explicit_hessian() -> None:
    ctx, w, x, y = _linear_ctx()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def loss(flat: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(xt @ flat.reshape(4, 3).T, yt)

    flat = torch.from_numpy(w.copy()).reshape(-1)
    g = torch.autograd.functional.jacobian(loss, flat)
    hess = torch.autograd.functional.hessian(loss, flat)
    expected = float(-(flat * (hess @ g)).sum())
    assert compute_metrics(["grasp"], ctx)["grasp"] == pytest.approx(expected, rel=1e-8)


def test_synflow_is_twice_the_path_norm_of_a_two_layer_linear_net() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5, bias=False), nn.BatchNorm1d(5), nn.Linear(5, 2, bias=False))
    ctx = MetricContext(net, torch.randn(4, 3), torch.zeros(4, dtype=torch.long), 2, NTKConfig())
    w1, w2 = (np.abs(m.weight.detach().numpy().astype(np.float64)) for m in (net[0], net[2]))
    path_norm = np.ones(2) @ w2 @ w1 @ np.ones(3)  # BN bypassed, |weights|, all-ones input
    # R is homogeneous of degree 1 in each layer: sum_theta theta dR/dtheta = 2R (Euler)
    assert compute_metrics(["synflow"], ctx)["synflow"] == pytest.approx(2 * path_norm, rel=1e-12)


def test_naswot_and_jacob_cov_by_hand() -> None:
    net = mlp(3, 64, 2, seed=1)
    x = torch.randn(6, 3, dtype=torch.float64)
    values = compute_metrics(["naswot", "jacob_cov"], ctx_for(net, x, torch.zeros(6, dtype=torch.long), 2))
    pre = x.numpy() @ net[0].weight.detach().numpy().T + net[0].bias.detach().numpy()
    codes = (pre > 0).astype(float)
    k_h = codes @ codes.T + (1 - codes) @ (1 - codes).T
    assert values["naswot"] == pytest.approx(np.linalg.slogdet(k_h)[1], rel=1e-10)
    jac = (((pre > 0) * net[2].weight.detach().numpy().sum(0)) @ net[0].weight.detach().numpy())
    v = np.clip(np.linalg.eigvalsh(np.corrcoef(jac)), 0, None)
    assert values["jacob_cov"] == pytest.approx(-np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5)), rel=1e-8)


def test_rank_aggregation_with_ties_by_hand() -> None:
    cols = {"fnorm": np.array([1.0, 3.0, 3.0, 2.0]), "cond": np.array([10.0, 1.0, 5.0, 5.0])}
    # fnorm (+1) ranks: 1, 3.5, 3.5, 2 ; cond (-1) ranks of -cond: 1, 4, 2.5, 2.5
    assert sum_of_ranks(cols).tolist() == [2.0, 7.5, 6.0, 4.5]
    assert borda_count(cols).tolist() == [0.0, 5.5, 4.0, 2.5]
    assert borda_count(cols, ties="min").tolist() == [0.0, 5.0, 3.0, 2.0]
    assert combine("tegnas", {"cond": cols["cond"], "linear_regions": np.array([1.0, 1, 1, 1]),
                              "ntk_mse": np.array([0.1, 0.2, 0.3, 0.4])}).tolist() == [7.5, 9.5, 7.0, 6.0]


def test_every_metric_is_finite_on_a_normal_nb201_net_in_every_bn_mode() -> None:
    torch.manual_seed(0)
    net = NASBench201(C=4, N=1).build(NASBench201().arch_of(7), num_classes=10)
    x, xt = torch.randn(8, 3, 8, 8), torch.randn(8, 3, 8, 8)
    y = torch.arange(8) % 10
    for bn_mode in ("train", "eval", "per_sample"):
        ctx = MetricContext(net, x, y, 10, NTKConfig(bn_mode=bn_mode), x_test=xt, y_test=y.clone())
        values = compute_metrics(METRICS.names(), ctx)
        assert all(np.isfinite(v) for v in values.values()), (bn_mode, values)


def test_ntk_mse_by_hand_from_the_last_layers_features() -> None:
    """Last-layer NTK of a 2-layer MLP under the sum-of-logits reduction: Theta(x, x') = C (phi(x).phi(x') + 1), with
    phi the ReLU features; regress the held-out one-hot labels in numpy; mean row norm of the error."""
    net = mlp(4, 7, 3, seed=5)
    x, xt = torch.randn(6, 4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64)
    y, yt = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([2, 1, 0, 0])
    value = compute_metrics(["ntk_mse"], ctx_for(net, x, y, 3, x_test=xt, y_test=yt))["ntk_mse"]
    w1, b1 = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    phi = np.maximum(np.vstack([x.numpy(), xt.numpy()]) @ w1.T + b1, 0)
    k = 3 * (phi @ phi.T + 1)
    pred = k[6:, :6] @ np.linalg.pinv(k[:6, :6]) @ np.eye(3)[y.numpy()]
    expected = np.linalg.norm(pred - np.eye(3)[yt.numpy()], axis=1).mean()
    assert value == pytest.approx(expected, rel=1e-8)
    assert expected > 0.1  # a real held-out error, not the interpolation case


def test_s_g_by_a_loop_kernel_and_numpy_regression() -> None:
    from ntkexp.ntk import ntk_reference

    net = mlp(4, 16, 3, seed=6)
    x, xt = torch.randn(5, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    y, yt = torch.tensor([0, 1, 2, 1, 0]), torch.tensor([1, 2, 0])
    value = compute_metrics(["s_g"], ctx_for(net, x, y, 3, x_test=xt, y_test=yt))["s_g"]
    k = ntk_reference(net, torch.cat([x, xt]), NTKConfig(bn_mode="eval", dtype="float64")).numpy()
    pred = k[5:, :5] @ np.linalg.pinv(k[:5, :5]) @ np.eye(3)[y.numpy()]
    assert value == pytest.approx(np.linalg.norm(pred - np.eye(3)[yt.numpy()]), rel=1e-8)
