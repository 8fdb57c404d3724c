"""The fast NTK engine against the independent per-sample backward-loop reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ntkexp.ntk import NTKConfig, empirical_ntk, ntk_reference
from ntkexp.spaces import NASBench201

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
]


def _net(arch: str, C: int = 4, N: int = 1, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return NASBench201(C=C, N=N).build(arch, num_classes=10)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("bn_mode", ["train", "eval", "per_sample"])
def test_fast_engine_matches_loop_reference_float32(arch: str, bn_mode: str) -> None:
    torch.manual_seed(1)
    x = torch.randn(8, 3, 16, 16)
    net = _net(arch)
    cfg = NTKConfig(bn_mode=bn_mode, chunk_size=3)  # a chunk that does not divide the batch
    fast = empirical_ntk(net, x, cfg).kernel
    ref = ntk_reference(net, x, cfg)
    assert _rel(fast, ref) < 1e-5


@pytest.mark.parametrize("reduction", ["sum", "logit", "trace"])
@pytest.mark.parametrize("params", ["all", "weights", "conv_linear"])
@pytest.mark.parametrize("bn_mode", ["train", "eval"])
def test_every_convention_matches_reference_float64(reduction: str, params: str, bn_mode: str) -> None:
    torch.manual_seed(2)
    x = torch.randn(5, 3, 8, 8)
    net = _net(ARCHS[0], C=3)
    cfg = NTKConfig(reduction=reduction, params=params, bn_mode=bn_mode, dtype="float64", logit_index=7)
    assert _rel(empirical_ntk(net, x, cfg).kernel, ntk_reference(net, x, cfg)) < 1e-10


def test_full_size_nb201_cell_agrees_in_both_bn_modes() -> None:
    """The benchmark's own skeleton (C=16, N=5) at a small batch."""
    torch.manual_seed(3)
    x = torch.randn(3, 3, 32, 32)
    net = _net(ARCHS[0], C=16, N=5)
    for bn_mode in ("train", "eval"):
        cfg = NTKConfig(bn_mode=bn_mode)
        assert _rel(empirical_ntk(net, x, cfg).kernel, ntk_reference(net, x, cfg)) < 1e-5


def test_bn_conventions_give_different_kernels() -> None:
    """Train-mode BN couples the batch: the kernel differs from eval and per-sample BN (so the choice matters)."""
    torch.manual_seed(4)
    x = torch.randn(6, 3, 8, 8)
    net = _net(ARCHS[0])
    k = {m: empirical_ntk(net, x, NTKConfig(bn_mode=m, dtype="float64")).kernel for m in ("train", "eval", "per_sample")}
    assert _rel(k["train"], k["eval"]) > 1e-2
    assert _rel(k["train"], k["per_sample"]) > 1e-2


def test_engine_leaves_the_model_untouched() -> None:
    net = _net(ARCHS[0])
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    empirical_ntk(net, torch.randn(4, 3, 8, 8), NTKConfig(bn_mode="train"))
    assert not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(m.track_running_stats for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_kernel_is_symmetric_psd_and_sized_by_params() -> None:
    net = _net(ARCHS[1])
    res = empirical_ntk(net, torch.randn(6, 3, 8, 8), NTKConfig(dtype="float64"))
    k = res.kernel.numpy()
    assert k.shape == (6, 6) and res.kernel.dtype == torch.float64
    assert np.allclose(k, k.T)
    assert np.linalg.eigvalsh(k).min() > -1e-8 * np.abs(k).max()
    assert res.n_params == sum(p.numel() for p in net.parameters())
    assert res.logits.shape == (6, 10)


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="bn_mode"):
        NTKConfig(bn_mode="frozen")
    with pytest.raises(ValueError, match="at least 2"):
        empirical_ntk(_net(ARCHS[0]), torch.randn(1, 3, 8, 8))


def _independent_params(net: torch.nn.Module, subset: str) -> list[str]:
    """The parameter names of ``subset``, from the module types alone (no engine code)."""
    names = []
    linears = [n for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)]
    for mod_name, mod in net.named_modules():
        for p_name, _ in mod.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if subset == "conv_linear_weights" and isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)) \
                    and p_name == "weight":
                names.append(full)
            elif subset == "last_layer" and mod_name == linears[-1]:
                names.append(full)
    return sorted(names)


@pytest.mark.parametrize("subset", ["conv_linear_weights", "last_layer"])
def test_per_sample_bn_subsets_match_a_loop_over_an_independent_parameter_list(subset: str) -> None:
    """Per-sample BN (each sample through the network alone, in train mode) with GradSign's Conv/Linear weights and
    TEG-NAS's last layer: the engine against a backward loop whose parameter list is built here."""
    from ntkexp.ntk.engine import select_params

    torch.manual_seed(4)
    net = _net(ARCHS[0], C=3).double()
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    names = _independent_params(net, subset)
    assert sorted(select_params(net, subset)[0]) == names  # the engine's selection is the same list
    params = dict(net.named_parameters())
    chosen = [params[n] for n in names]
    net.train()
    rows = []
    for i in range(len(x)):
        out = net(x[i : i + 1]).sum()
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(out, chosen)]))
    jac = torch.stack(rows)
    expected = jac @ jac.T
    got = empirical_ntk(net, x, NTKConfig(bn_mode="per_sample", params=subset, dtype="float64")).kernel
    assert _rel(got.double(), expected) < 1e-10


@pytest.mark.parametrize("reduction", ["sum", "trace"])
def test_both_implementations_agree_where_both_apply_and_match_the_reference(reduction: str) -> None:
    """ntk.implementation (as neural-tangents' ``implementation=``): under eval BN the batched VJP and the vmap'd
    per-sample gradients compute the same kernel, each equal to the independent loop reference; each refuses the BN
    mode it cannot compute exactly, in one line."""
    torch.manual_seed(3)
    x = torch.randn(6, 3, 8, 8)
    net = _net(ARCHS[1], C=3)
    kernels = {impl: empirical_ntk(net, x, NTKConfig(bn_mode="eval", reduction=reduction, dtype="float64",
                                                     implementation=impl)).kernel
               for impl in ("batched_vjp", "per_sample_grads", "auto")}
    ref = ntk_reference(net, x, NTKConfig(bn_mode="eval", reduction=reduction, dtype="float64"))
    for impl, kernel in kernels.items():
        assert _rel(kernel, ref) < 1e-10, impl
    assert NTKConfig(bn_mode="train").resolved_implementation() == "batched_vjp"
    assert NTKConfig(bn_mode="per_sample").resolved_implementation() == "per_sample_grads"
    with pytest.raises(ValueError, match="implementation=batched_vjp does not compute bn_mode=per_sample"):
        NTKConfig(bn_mode="per_sample", implementation="batched_vjp")
    with pytest.raises(ValueError, match="implementation=per_sample_grads does not compute bn_mode=train"):
        NTKConfig(bn_mode="train", implementation="per_sample_grads")
    with pytest.raises(ValueError, match="is not one of"):
        NTKConfig(implementation="jacfwd")
