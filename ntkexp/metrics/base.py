"""The metric registry, the per-arch context metrics read from, and the policy for degenerate architectures.

A metric is a function ``(ctx: MetricContext) -> float`` registered with :func:`register_metric`, which declares
everything the rest of ntkexp needs to know about it:

* ``direction``: +1 when a larger value predicts higher accuracy, -1 when a smaller one does;
* ``needs``: the shared computations it reads, from :data:`NEEDS` (checked when it registers; empty for a metric
  that shares nothing); those that use a held-out batch make the scorer draw one;
* ``log_axis``: whether its values span orders of magnitude (plots use a log axis);
* ``keep_infinite``: whether an infinite value is a meaningful score (a singular kernel's condition number) rather
  than an undefined one.

Metrics that share a computation read it through ``ctx`` (``ctx.ntk()``, ``ctx.eigenvalues()``, ``ctx.cached``), so
it is done once per arch however many metrics ask for it.

Degenerate architectures (policy, applied by :func:`compute_metrics` and by the correlation code):

* a NaN value, or an infinite one of a metric without ``keep_infinite``, becomes NaN and is flagged
  ``nonfinite:<metric>``; an infinite value of a ``keep_infinite`` metric is kept and flagged the same way;
* an all-zero kernel (no gradient reaches any selected parameter, e.g. an all-``none`` cell) is flagged
  ``zero_kernel``; metrics on it that are undefined become NaN;
* a numerically singular or indefinite kernel (lambda_min <= ``SINGULAR_RTOL`` * lambda_max) is flagged
  ``singular``; its condition number is +inf (NCN -inf);
* an exception while building, initialising or scoring one arch is flagged ``error:<Type>`` with all its metrics
  NaN, and the run goes on (``ntkexp.scoring``).

For rank correlation and search every undefined score counts as the worst score (ties among themselves), never as
a crash: :func:`oriented` is the one place that says how.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from ntkexp.ntk import NTKConfig, NTKResult, bn_convention, empirical_ntk
from ntkexp.registry import Registry

SINGULAR_RTOL = 1e-12

#: the shared computations a metric may declare, each with whether it needs a held-out batch
NEEDS: dict[str, bool] = {
    "ntk": False,  # the NTK of the probe batch (and its eigenvalues)
    "joint_kernel": True,  # the NTK over [probe batch; held-out batch]
    "joint_kernel_last_layer": True,  # the same, for the last layer's parameters only
    "activation_codes": False,  # the ReLU activation patterns of the probe inputs
    "loss_gradients": False,  # one backward pass of the batch loss (weights, gradients, layer activations)
    "per_sample_loss_gradients": False,  # the per-sample loss gradients (rows of the Jacobian engine)
}


@dataclass(frozen=True)
class Metric:
    """A registered metric: the function and its declared traits (see the module docstring)."""

    name: str
    fn: Callable[["MetricContext"], float]
    direction: int
    needs: tuple[str, ...]
    log_axis: bool = False
    keep_infinite: bool = False

    def __call__(self, ctx: "MetricContext") -> float:
        return self.fn(ctx)

    @property
    def needs_held_out(self) -> bool:
        return any(NEEDS[n] for n in self.needs)


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, direction: int, needs: tuple[str, ...] = ("ntk",), *, log_axis: bool = False,
                    keep_infinite: bool = False) -> Callable[[Callable[["MetricContext"], float]], Metric]:
    """Register ``fn(ctx) -> float`` as metric ``name`` with its traits; returns the :class:`Metric`."""
    if direction not in (1, -1):
        raise ValueError(f"metric {name!r}: direction must be +1 or -1, got {direction!r}")
    needs = tuple(needs)
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        raise ValueError(f"metric {name!r} declares unknown needs {unknown}; known needs: {', '.join(NEEDS)}")

    def wrap(fn: Callable[["MetricContext"], float]) -> Metric:
        metric = Metric(name, fn, direction, needs, log_axis, keep_infinite)
        METRICS.register(name, metric)
        return metric

    return wrap


def oriented(values: Any, direction: int) -> np.ndarray:
    """``direction * values`` as float64 (higher is better), with NaN (undefined) mapped to -inf so that it ranks
    worst; +-inf keep their meaning."""
    out = direction * np.asarray(values, dtype=np.float64)
    return np.where(np.isnan(out), -np.inf, out)


@dataclass
class MetricContext:
    """Everything a metric may need about one initialised (or trained) network and the probe batch.

    Shared computations are cached here, so metrics that share them cost one pass: the NTK of the probe batch
    (``ntk``, ``eigenvalues``) and whatever a metric module computes through :meth:`cached` (joint kernels,
    activation patterns, loss gradients). ``x_test``/``y_test`` is a held-out batch (from the test split) for the
    kernel-regression metrics.
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    ntk_cfg: NTKConfig = field(default_factory=NTKConfig)
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    seed: int = 0
    flags: set[str] = field(default_factory=set)
    _ntk: NTKResult | None = None
    _eig: torch.Tensor | None = None
    _cache: dict[Any, Any] = field(default_factory=dict)

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.x_test is None or self.y_test is None:
            raise ValueError("this metric needs a held-out batch (x_test, y_test), but none was given")
        return self.x_test, self.y_test

    @property
    def batch_bn_mode(self) -> str:
        """The BN mode for computations on the batch as a whole (a batch loss, one forward pass): the NTK's mode,
        with per-sample BN counted as train mode (a batch loss has no per-sample statistics)."""
        return "eval" if self.ntk_cfg.bn_mode == "eval" else "train"

    @contextlib.contextmanager
    def batch_mode(self) -> Iterator[None]:
        """The network in :attr:`batch_bn_mode` (BN running statistics untouched) for the block."""
        with bn_convention(self.model, self.batch_bn_mode):
            yield

    def ntk(self) -> NTKResult:
        if self._ntk is None:
            self._ntk = empirical_ntk(self.model, self.x, self.ntk_cfg)
            if not torch.isfinite(self._ntk.kernel).all():
                self.flags.add("nonfinite_kernel")
            elif not self._ntk.kernel.any():
                self.flags.add("zero_kernel")
        return self._ntk

    def eigenvalues(self) -> torch.Tensor:
        """Ascending eigenvalues of the (symmetrised) kernel, float64."""
        if self._eig is None:
            k = self.ntk().kernel
            if not torch.isfinite(k).all():
                self._eig = torch.full((k.shape[0],), float("nan"), dtype=torch.float64)
            else:
                self._eig = torch.linalg.eigvalsh(0.5 * (k + k.T))
        return self._eig


def compute_metrics(names: list[str], ctx: MetricContext) -> dict[str, float]:
    """Every metric in ``names`` for one context; shared work (the NTK) is done once."""
    values: dict[str, float] = {}
    for name in names:
        metric = METRICS.get(name)
        value = float(metric(ctx))
        if not np.isfinite(value):
            ctx.flags.add(f"nonfinite:{name}")
            if np.isnan(value) or not metric.keep_infinite:
                value = float("nan")
        values[name] = value
    return values
