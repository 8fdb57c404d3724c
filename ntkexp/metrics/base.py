"""The metric registry (:func:`register_metric`: direction, needs, log axis, keep_infinite), the per-arch context
metrics read from, and the policy for degenerate architectures (docs/CONVENTIONS.md, "Metrics and degenerate
architectures"; :func:`oriented` is the one place undefined scores rank worst)."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

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


@dataclass(frozen=True, kw_only=True)  # built by keyword only: 13 fields in a row were easy to misorder
class InputRequest:
    """What a metric's ``inputs`` hook may use to prepare inputs of its own for one arch, besides the probe batch
    every metric gets (e.g. TE-NAS's crops and thin network for ``linear_regions``). ``settings`` are the metric's
    own (its registered dataclass); ``trained`` is True when the network is measured during training (then the
    network itself is measured); ``init_seed`` seeds any network the hook builds. ``space`` is None outside a run
    (the library API), where no arch is known."""

    arch: str
    space: Any
    model: nn.Module
    num_classes: int
    in_channels: int
    train_images: Callable[[], torch.Tensor]
    init: Any  # ntkexp.init.InitConfig
    seed: int
    repeat: int
    init_seed: int
    device: torch.device
    settings: Any
    trained: bool = False


@dataclass(frozen=True)
class Metric:
    """A registered metric: the function and its declared traits (docs/CONVENTIONS.md)."""

    name: str
    fn: Callable[["MetricContext"], float]
    direction: int
    needs: tuple[str, ...]
    log_axis: bool = False
    keep_infinite: bool = False
    settings: type | None = None  # a dataclass of the metric's own settings (metric.settings.<name>)
    inputs: Callable[[InputRequest], Any] | None = None  # prepares inputs of its own per arch (ctx.inputs_of)

    def __call__(self, ctx: "MetricContext") -> float:
        return self.fn(ctx)

    @property
    def needs_held_out(self) -> bool:
        return any(NEEDS[n] for n in self.needs)


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, direction: int, needs: tuple[str, ...] = ("ntk",), *, log_axis: bool = False,
                    keep_infinite: bool = False, settings: type | None = None,
                    inputs: Callable[[InputRequest], Any] | None = None
                    ) -> Callable[[Callable[["MetricContext"], float]], Metric]:
    """Register ``fn(ctx) -> float`` as metric ``name`` with its traits; returns the :class:`Metric`. A metric with
    settings of its own declares their dataclass (``settings``: set as ``metric.settings.<name>.<field>``, read with
    ``ctx.settings_of(name)``, recorded with its scores); one with inputs of its own declares the hook that prepares
    them for each arch (``inputs(request: InputRequest)``, read with ``ctx.inputs_of(name)``)."""
    if direction not in (1, -1):
        raise ValueError(f"metric {name!r}: direction must be +1 or -1, got {direction!r}")
    if settings is not None and not dataclasses.is_dataclass(settings):
        raise ValueError(f"metric {name!r}: settings must be a dataclass type, got {settings!r}")
    needs = tuple(needs)
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        raise ValueError(f"metric {name!r} declares unknown needs {unknown}; known needs: {', '.join(NEEDS)}")

    def wrap(fn: Callable[["MetricContext"], float]) -> Metric:
        metric = Metric(name, fn, direction, needs, log_axis, keep_infinite, settings, inputs)
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
    settings: dict[str, Any] = field(default_factory=dict)  # metric name -> its own settings (see settings_of)
    inputs: dict[str, Any] = field(default_factory=dict)  # metric name -> the inputs its hook prepared
    flags: set[str] = field(default_factory=set)
    # the flags each metric raised, its shared work's included (filled by compute_metrics): a cached score reports
    # the flags of the metrics asked for, not of whatever else was computed with them
    metric_flags: dict[str, set[str]] = field(default_factory=dict)
    _used: set[Any] = field(default_factory=set)  # the shared work the metric being computed has read
    _work_flags: dict[Any, set[str]] = field(default_factory=dict)  # per shared work: its flags and its inputs'
    _cache: dict[Any, Any] = field(default_factory=dict)

    def measure(self, name: str, compute: Callable[[], float]) -> float:
        """``compute()`` as metric ``name``'s value, recording the flags it raised and those of the shared work it read
        (whichever metric computed that work first) in ``metric_flags[name]``; a value that is not finite is flagged
        ``nonfinite:<name>``."""
        self._used = set()
        before = set(self.flags)
        value = compute()
        if not np.isfinite(value):
            self.flags.add(f"nonfinite:{name}")
        shared = set().union(*(self._work_flags.get(k, set()) for k in self._used))
        self.metric_flags[name] = (self.flags - before) | shared
        return value

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per context; the flags it raised, and those of the shared work it read, go with it to
        every metric that reads it (whichever metric computed it first)."""
        if key not in self._cache:
            outer, self._used = self._used, set()
            before = set(self.flags)
            self._cache[key] = compute()
            self._work_flags[key] = (self.flags - before).union(*(self._work_flags.get(k, set()) for k in self._used))
            self._used = outer
        self._used.add(key)
        return self._cache[key]

    def settings_of(self, name: str) -> Any:
        """Metric ``name``'s own settings: those given, else its settings class's defaults."""
        if name not in self.settings:
            cls = METRICS.get(name).settings
            if cls is None:
                raise ValueError(f"metric {name!r} has no settings of its own")
            self.settings[name] = cls()
        return self.settings[name]

    def inputs_of(self, name: str) -> Any:
        """The inputs metric ``name``'s hook prepared for this arch (None where none were: the probe batch is used)."""
        return self.inputs.get(name)

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.x_test is None or self.y_test is None:
            raise ValueError("this metric needs a held-out labelled batch (ntkexp.score(..., held_out=(images, "
                             "labels)); in a run, the scorer draws one from the test split), but none was given")
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
        def compute() -> NTKResult:
            result = empirical_ntk(self.model, self.x, self.ntk_cfg)
            if not torch.isfinite(result.kernel).all():
                self.flags.add("nonfinite_kernel")
            elif not result.kernel.any():
                self.flags.add("zero_kernel")
            return result

        return self.cached("ntk", compute)

    def eigenvalues(self) -> torch.Tensor:
        """Ascending eigenvalues of the (symmetrised) kernel, float64."""
        def compute() -> torch.Tensor:
            k = self.ntk().kernel
            if not torch.isfinite(k).all():
                return torch.full((k.shape[0],), float("nan"), dtype=torch.float64)
            return torch.linalg.eigvalsh(0.5 * (k + k.T))

        return self.cached("eigenvalues", compute)


def compute_metrics(names: list[str], ctx: MetricContext) -> dict[str, float]:
    """Every metric in ``names`` for one context; shared work (the NTK) is done once."""
    values: dict[str, float] = {}
    for name in names:
        metric = METRICS.get(name)
        value = ctx.measure(name, lambda: float(metric(ctx)))
        if not np.isfinite(value) and (np.isnan(value) or not metric.keep_infinite):
            value = float("nan")
        values[name] = value
    return values


def metric_settings(given: Mapping[str, Any] | None, names: Iterable[str]) -> dict[str, Any]:
    """The settings objects of the metrics ``names`` that have settings of their own, from ``given`` (``metric.settings``:
    metric name -> field values, or settings objects); a name in ``given`` that is no metric with settings, or a field
    its settings do not have, is refused in one line."""
    given = dict(given or {})
    owners = sorted(m for m in METRICS if METRICS.get(m).settings is not None)
    for name in given:
        if name not in owners:
            raise ValueError(f"metric.settings.{name}: no metric of that name has settings of its own (metrics with "
                             f"settings: {', '.join(owners)})")
    out: dict[str, Any] = {}
    for name in names:
        cls = METRICS.get(name).settings
        if cls is None:
            continue
        value = given.get(name)
        if isinstance(value, cls):
            out[name] = value
            continue
        try:
            out[name] = cls(**dict(value or {}))
        except TypeError as err:
            known = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ValueError(f"metric.settings.{name}: {str(err).split('__init__() ')[-1]} (its settings: {known})") \
                from None
    return out


def default_settings() -> dict[str, dict[str, Any]]:
    """Every registered metric's own settings at their defaults, as plain values (the config schema's defaults)."""
    return {name: dataclasses.asdict(METRICS.get(name).settings()) for name in METRICS
            if METRICS.get(name).settings is not None}


def prepare_inputs(names: Iterable[str], request: Callable[[str], InputRequest]) -> dict[str, Any]:
    """The inputs of their own of the metrics ``names`` that declare an ``inputs`` hook (``request(name)`` builds the
    hook's request); a hook returning None leaves the metric on the probe batch."""
    out: dict[str, Any] = {}
    for name in names:
        hook = METRICS.get(name).inputs
        if hook is not None:
            prepared = hook(request(name))
            if prepared is not None:
                out[name] = prepared
    return out
