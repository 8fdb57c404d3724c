"""The fast empirical-NTK engine: Theta = J J^T (B x B, float64) of a probe batch under the conventions of
:class:`NTKConfig` (reduction, params, bn_mode, dtype, batch_size, chunk_size), each defined in docs/CONVENTIONS.md
("The empirical NTK"). The network's parameters, buffers and train/eval flag are left as they were."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call, jacrev, vjp, vmap

REDUCTIONS = ("sum", "logit", "trace")
PARAM_SUBSETS = ("all", "weights", "conv_linear", "conv_linear_weights", "last_layer")
BN_MODES = ("train", "eval", "per_sample")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
log = logging.getLogger(__name__)


#: each implementation and the BN modes it computes exactly (both agree under eval: the samples are independent)
IMPLEMENTATIONS = {"auto": ("train", "eval", "per_sample"), "batched_vjp": ("train", "eval"),
                   "per_sample_grads": ("per_sample", "eval")}


@dataclass
class NTKConfig:
    """Every convention that changes the computed kernel (each defined in docs/CONVENTIONS.md)."""

    reduction: str = "sum"
    logit_index: int = 0
    params: str = "all"
    bn_mode: str = "per_sample"  # the one default everywhere (the config's and the library API's)
    dtype: str = "float32"
    chunk_size: int | None = None  # a memory setting: not part of a score's cache key
    batch_size: int = 64
    # how the Jacobian is computed (the same kernel either way, so not part of a score's cache key): batched_vjp
    # (one batched forward, a vmap of its VJP: the only exact one under bn_mode=train) | per_sample_grads (vmap'd
    # per-sample gradients: the only one for per_sample) | auto (the one the BN mode needs; under eval, per-sample)
    implementation: str = "auto"

    def __post_init__(self) -> None:
        checks = (("reduction", REDUCTIONS), ("params", PARAM_SUBSETS), ("bn_mode", BN_MODES), ("dtype", tuple(DTYPES)))
        for name, valid in checks:
            if getattr(self, name) not in valid:
                raise ValueError(f"ntk {name}={getattr(self, name)!r} is not one of: {', '.join(valid)}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"ntk chunk_size must be >= 1 or null, got {self.chunk_size}")
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(f"ntk implementation={self.implementation!r} is not one of: {', '.join(IMPLEMENTATIONS)}")
        if self.implementation != "auto" and self.bn_mode not in IMPLEMENTATIONS[self.implementation]:
            raise ValueError(f"ntk implementation={self.implementation} does not compute bn_mode={self.bn_mode} "
                             f"(it computes {' and '.join(IMPLEMENTATIONS[self.implementation])}; "
                             "implementation=auto picks the one each BN mode needs)")

    def resolved_implementation(self) -> str:
        """The implementation used: the one named, or under ``auto`` the one the BN mode needs."""
        if self.implementation != "auto":
            return self.implementation
        return "batched_vjp" if self.bn_mode == "train" else "per_sample_grads"
        if self.batch_size < 2:
            raise ValueError(f"ntk batch_size must be >= 2 (a kernel of one sample has no condition number or "
                             f"alignment), got {self.batch_size}")


@dataclass
class NTKResult:
    kernel: torch.Tensor  # (B, B) float64, on the CPU
    logits: torch.Tensor  # (B, K) detached, on the CPU, from the same forward convention
    n_params: int  # number of scalar parameters the Jacobian covers


def select_params(model: nn.Module, subset: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split ``model``'s parameters into (differentiated, held fixed) according to ``subset``."""
    if subset not in PARAM_SUBSETS:
        raise ValueError(f"unknown parameter subset {subset!r}; valid: {', '.join(PARAM_SUBSETS)}")
    owners = {f"{mod_name}.{p_name}" if mod_name else p_name: mod
              for mod_name, mod in model.named_modules() for p_name, _ in mod.named_parameters(recurse=False)}
    chosen: dict[str, torch.Tensor] = {}
    fixed: dict[str, torch.Tensor] = {}
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    last = linears[-1] if linears else None
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if subset == "last_layer":
            keep = p.requires_grad and name.rsplit(".", 1)[0] == last
        elif subset == "all":
            keep = p.requires_grad
        elif subset == "weights":
            keep = p.requires_grad and leaf == "weight"
        else:
            keep = p.requires_grad and isinstance(owners[name], (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
            keep = keep and (subset == "conv_linear" or leaf == "weight")
        (chosen if keep else fixed)[name] = p
    return chosen, fixed


@contextlib.contextmanager
def bn_convention(model: nn.Module, bn_mode: str) -> Iterator[None]:
    """Put the model in the mode ``bn_mode`` needs; in train modes, stop BN from updating its running statistics."""
    was_training = {m: m.training for m in model.modules()}
    tracked = {}
    model.train(bn_mode != "eval")
    if bn_mode != "eval":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                tracked[m] = m.track_running_stats
                m.track_running_stats = False
    try:
        yield
    finally:
        for m, flag in tracked.items():
            m.track_running_stats = flag
        for m, flag in was_training.items():
            m.training = flag


def _output_weights(batch: int, classes: int, cfg: NTKConfig, like: torch.Tensor) -> torch.Tensor | None:
    """(B, K) weights w with f_i = sum_k w_ik f_k(x_i) for ``sum``/``logit``; None for ``trace`` (every logit)."""
    if cfg.reduction == "trace":
        return None
    if cfg.reduction == "sum":
        return torch.ones(batch, classes, dtype=like.dtype, device=like.device)
    w = torch.zeros(batch, classes, dtype=like.dtype, device=like.device)
    w[:, cfg.logit_index] = 1.0
    return w


def _cotangents(batch: int, classes: int, weights: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """Cotangents (M, B, K) whose VJPs are the rows of J: row i carries w_i at sample i (M = B), or, for every
    logit (``weights=None``), one-hot at (i, k) (M = B*K)."""
    eye = torch.eye(batch, dtype=like.dtype, device=like.device)
    if weights is not None:
        return eye[:, :, None] * weights[None, :, :]
    eye_k = torch.eye(classes, dtype=like.dtype, device=like.device)
    return torch.einsum("ij,kl->ikjl", eye, eye_k).reshape(batch * classes, batch, classes)


def _kernel_from_jacobian(jac: dict[str, torch.Tensor], batch: int) -> torch.Tensor:
    """Theta = sum over parameter tensors of J_p J_p^T, with J_p's rows the (B, K'*numel) flattened gradients.

    For ``trace`` each row holds the K per-logit gradients of one sample side by side, so the row dot product is
    the sum over logits of the per-logit dot products.
    """
    theta = torch.zeros(batch, batch, dtype=next(iter(jac.values())).dtype, device=next(iter(jac.values())).device)
    for g in jac.values():
        g = g.reshape(batch, -1)
        theta.addmm_(g, g.T)
    return theta


def _jacobian(model: nn.Module, x: torch.Tensor, cfg: NTKConfig, chosen: dict[str, torch.Tensor],
              rest: dict[str, torch.Tensor], chunk: int | None, weights: Callable[[torch.Tensor], torch.Tensor | None]
              ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(J per parameter with leading dims (B, K') flattened to B rows, logits). ``weights(logits)`` gives the (B, K)
    output weights of each row (treated as constants), or None for one row per logit."""
    batch = x.shape[0]
    if cfg.resolved_implementation() == "batched_vjp":
        def f_batch(p: dict[str, torch.Tensor]) -> torch.Tensor:
            return functional_call(model, ({**p, **rest}), (x,))

        logits, vjp_fn = vjp(f_batch, chosen)
        cot = _cotangents(batch, logits.shape[1], weights(logits.detach()), logits)
        (jac,) = vmap(vjp_fn, chunk_size=chunk)(cot)
        return {k: v.reshape(batch, -1) for k, v in jac.items()}, logits.detach()

    def logits_single(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, ({**p, **rest}), (xi.unsqueeze(0),))[0]

    with torch.no_grad():
        logits = vmap(logits_single, in_dims=(None, 0), chunk_size=chunk)(chosen, x)
    w = weights(logits)
    if w is None:
        jac = vmap(jacrev(logits_single), in_dims=(None, 0), chunk_size=chunk)(chosen, x)
    else:
        def f_single(p: dict[str, torch.Tensor], xi: torch.Tensor, wi: torch.Tensor) -> torch.Tensor:
            return (logits_single(p, xi) * wi).sum()

        jac = vmap(jacrev(f_single), in_dims=(None, 0, 0), chunk_size=chunk)(chosen, x, w)
    return {k: v.reshape(batch, -1) for k, v in jac.items()}, logits


@contextlib.contextmanager
def parameters_kept(model: nn.Module) -> Iterator[None]:
    """Put back every parameter and buffer object of ``model`` afterwards.

    ``functional_call`` swaps tensors in by name and back; a module registered under two names (nasbench-pytorch's
    ``last_inop`` is also ``input_op[-1]``) is swapped twice, and the second swap saves the first one's stand-in, so
    a functorch-wrapped tensor would stay in the network (and break ``.cpu()``, training and later metrics).
    """
    saved = [(m, store, name, t) for m in model.modules() for store in (m._parameters, m._buffers)
             for name, t in store.items()]
    try:
        yield
    finally:
        for _, store, name, t in saved:
            if store.get(name) is not t:
                store[name] = t


def jacobian(model: nn.Module, x: torch.Tensor, cfg: NTKConfig | None = None,
             weights: Callable[[torch.Tensor], torch.Tensor | None] | None = None
             ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Rows of the Jacobian of per-sample outputs w.r.t. the selected parameters, under ``cfg``'s BN convention.

    By default the outputs are ``cfg.reduction``'s. ``weights(logits) -> (B, K)`` instead makes row i the gradient of
    sum_k w_ik f_k(x_i) with w held constant: with w = dloss_i/dlogits_i it is the per-sample loss gradient, exact
    also under train-mode BN (chain rule through the logits). Returns ({name: (B, M*numel)}, logits).
    """
    cfg = cfg if cfg is not None else NTKConfig()
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"the NTK needs a batch of at least 2 inputs, got shape {tuple(x.shape)}")
    dtype = DTYPES[cfg.dtype]
    device = next(model.parameters()).device
    chosen, fixed = select_params(model, cfg.params)
    if not chosen:
        raise ValueError(f"parameter subset {cfg.params!r} selects no parameter of this network")
    chosen = {k: v.detach().to(dtype) for k, v in chosen.items()}
    rest: dict[str, torch.Tensor] = {k: v.detach().to(dtype) for k, v in fixed.items()}
    rest.update({k: b.detach().clone().to(dtype) if b.is_floating_point() else b for k, b in model.named_buffers()})
    x = x.to(device=device, dtype=dtype).contiguous()  # vmap over vjp on CUDA needs contiguous NCHW input
    if weights is None:
        weights = lambda logits: _output_weights(logits.shape[0], logits.shape[1], cfg, logits)  # noqa: E731
    chunk = cfg.chunk_size
    if chunk is None and cfg.resolved_implementation() == "batched_vjp":
        chunk = 32 if device.type == "cuda" else 4
    with bn_convention(model, cfg.bn_mode), parameters_kept(model):
        while True:
            try:
                jac, logits = _jacobian(model, x, cfg, chosen, rest, chunk, weights)
                break
            except torch.cuda.OutOfMemoryError:
                if chunk == 1:
                    raise
                chunk = max(1, (chunk or x.shape[0]) // 2)
                log.warning("CUDA out of memory in the NTK: retrying with chunk_size=%d", chunk)
                torch.cuda.empty_cache()
    return jac, logits


def empirical_ntk(model: nn.Module, x: torch.Tensor, cfg: NTKConfig | None = None) -> NTKResult:
    """Empirical NTK of ``model`` on the batch ``x`` under the conventions ``cfg`` (default: :class:`NTKConfig`'s)."""
    cfg = cfg if cfg is not None else NTKConfig()
    jac, logits = jacobian(model, x, cfg)
    kernel = _kernel_from_jacobian(jac, x.shape[0]).to(torch.float64).cpu()
    n_params = sum(v.shape[1] for v in jac.values()) // (1 if cfg.reduction != "trace" else logits.shape[1])
    return NTKResult(kernel=kernel, logits=logits.float().cpu(), n_params=n_params)
