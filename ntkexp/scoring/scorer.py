"""Scoring archs: one path for scores at initialisation and after t epochs of training, one for tracking metrics and
the kernel over several epochs, one error policy, typed records, and the durable cache in front of both.

The network of an arch is initialised from ``arch_seed(seed, arch)``, so its score does not depend on which archs
were scored before it (resumed and parallel runs give the same numbers). A bad network never ends a run: it gets a
record flagged ``error:<Type>`` with every value NaN (``ntkexp.metrics.base`` has the whole degenerate-arch policy).
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np
import pandas as pd
import torch

from ntkexp.data import require_training_set
from ntkexp.init import arch_seed, initialize
from ntkexp.io import storage_error
from ntkexp.metrics import (InputRequest, MetricContext, MetricSelection, combine, compute_metrics,
                            metric_settings, prepare_inputs)
from ntkexp.scoring.context import RunContext
from ntkexp.scoring.keys import cache_key, dataset_conventions, fingerprint, training_conventions
from ntkexp.scoring.progress import Progress
from ntkexp.scoring.table import ScoreTable

if TYPE_CHECKING:  # Lightning's: loaded only when used
    from ntkexp.train.tracking import KernelTracker

log = logging.getLogger("ntkexp")
T = TypeVar("T")
TRAIN_EXTRAS = ("train_loss", "train_acc")


class NothingScored(RuntimeError):
    """Every arch (or every evaluation of a search) failed to score: the run has no result. Its message names the
    first error; the command line prints it as one line and exits with status 1."""


@dataclass
class ScoreRecord:
    """The scores of one arch (at initialisation, or after ``epochs`` epochs of training)."""

    arch: str
    index: int | None
    epochs: int
    values: dict[str, float]
    flags: list[str]
    seconds: float  # compute the scores cost when they were computed (also when read from the cache)
    cached: bool
    error: str | None = None
    extra: dict[str, float] = field(default_factory=dict)  # train_loss, train_acc after training

    @property
    def failed(self) -> bool:
        return self.error is not None

    def row(self) -> dict[str, Any]:
        """One flat table row: arch, index, the values, the extras, flags, seconds, cached (and error)."""
        row: dict[str, Any] = {"arch": self.arch, "index": self.index, **self.values, **self.extra,
                               "flags": ";".join(self.flags), "seconds": round(self.seconds, 4), "cached": self.cached}
        if self.error:
            row["error"] = self.error
        return row


@dataclass
class TrackRecord:
    """Metrics, train stats and the kernel's change at each tracked epoch of one arch's training."""

    arch: str
    index: int | None
    records: list[dict[str, Any]]  # one per epoch: {epoch, <metric>..., kernel_corr, kernel_rel_diff, flags, ...}
    seconds: float
    cached: bool
    error: str | None = None


def cached_flags_and_seconds(row: dict[str, Any], names: list[str]) -> tuple[list[str], float]:
    """The flags of the metrics ``names`` in a cached row (not of other metrics computed with them), and the seconds
    of the computations that produced them."""
    if "flags_by_metric" not in row:  # a row written before flags were kept per metric
        return list(row["flags"]), float(row["seconds"])
    flags = sorted(set().union(*(row["flags_by_metric"].get(n, []) for n in names)))
    seconds = sum(b["seconds"] for b in row.get("batches", []) if set(b["names"]) & set(names))
    return flags, float(seconds)


@dataclass(frozen=True)
class DataDraw:
    """What seeds a scorer's data (its probe and held-out batches, and any inputs a metric draws, e.g. TE-NAS's
    crops) when it is not the run's seed, and whether the probe batch is augmented as a training batch is (random
    crop and flip): TE-NAS's released pruning draws a shuffled, augmented training batch for every call."""

    seed: int
    augment: bool = False


class ArchScorer:
    """Scores archs under a run's conventions through the durable cache (``selection`` defaults to the run's).
    ``draw`` seeds the data apart from the weights (None: the run's seed seeds both, un-augmented)."""

    def __init__(self, ctx: RunContext, selection: MetricSelection | None = None,
                 draw: DataDraw | None = None) -> None:
        self.ctx = ctx
        self.selection = selection or ctx.selection
        self.seed = ctx.seed
        self.draw = draw
        self.data_seed = ctx.seed if draw is None else draw.seed
        augment = draw is not None and draw.augment
        self.x, self.y = ctx.data.probe_batch(ctx.ntk.batch_size, self.data_seed, augment=augment)
        self.x_test = self.y_test = None
        if self.selection.needs_held_out:  # a held-out batch for kernel regression
            self.x_test, self.y_test = ctx.data.probe_batch(ctx.ntk.batch_size, self.data_seed, split="test")
        metric_cfg = ctx.config.metric
        self.settings = metric_settings(metric_cfg.settings, self.selection.metrics)  # the selected metrics' own
        self.repeats = metric_cfg.repeats
        if self.repeats < 1:
            raise ValueError(f"metric.repeats must be >= 1, got {self.repeats}")
        self.conventions: dict[str, Any] = {
            "search_space": ctx.space.describe(),
            "ntk": asdict(ctx.ntk),
            "init": asdict(ctx.init),
            "dataset": {**dataset_conventions(ctx.dataset),
                        "probe_data": fingerprint(self.x, self.y, self.x_test, self.y_test)},
            "seed": self.seed,
        }
        if draw is not None:  # absent at the default, so the keys of runs without it stay valid
            self.conventions["data_draw"] = asdict(draw)
        if self.repeats > 1:
            self.conventions["repeats"] = self.repeats
        if self.settings:
            self.conventions["metric_settings"] = {name: asdict(value) for name, value in self.settings.items()}
        self.table: ScoreTable | None = None
        self.n_from_table = 0
        if ctx.config.score_table:
            self.table = ScoreTable.load(ctx.config.score_table)
            self.table.check(self.conventions)
        self._training: dict[str, Any] | None = None
        self.n_computed = 0
        self.n_cached = 0
        self.curves: list[dict[str, Any]] = []  # training steps run by this scorer: {arch, epoch, step, loss, acc}

    # ------------------------------------------------------------------------------------------ conventions
    def training(self, what: str) -> dict[str, Any]:
        """The training conventions (the training set hashed once); refuses a probe-only data set, naming ``what``."""
        require_training_set(self.ctx.dataset, what)
        if self._training is None:
            x, y = self.ctx.data.train_tensors
            self._training = training_conventions(self.ctx.train, self.ctx.dataset, fingerprint(x, y),
                                                  self.ctx.device.type, self.ctx.data.plan.steps_per_epoch)
        return self._training

    def checkpoint_dir(self, arch: str) -> Path | None:
        """Where the training states of ``arch`` (every epoch count asked for) are kept; None without a cache. They
        depend on the network, its init and the training alone, not on how it is measured."""
        if self.ctx.store.path is None:
            return None
        base = {k: self.conventions[k] for k in ("search_space", "init", "seed")}
        key = cache_key("training", arch, base, **self.training("training"))
        return self.ctx.store.path.parent / "checkpoints" / key

    def description(self, epochs: int | None = None) -> dict[str, str]:
        """What was computed, in words: the network, the data, the conventions (for tables, titles, summaries)."""
        ctx, t = self.ctx, self.epochs(epochs)
        n_train = len(ctx.data.train_tensors[1])
        when = "at initialisation" if t == 0 else f"after {self.training_budget(t)}"
        return {
            "network": ctx.space.label(),
            "data": f"{ctx.dataset.label or ctx.dataset.name}; probe batch of {ctx.ntk.batch_size} of its "
                    f"{n_train:,} training images (drawn by seed {self.data_seed}"
                    f"{', augmented' if self.draw is not None and self.draw.augment else ''})",
            "convention": f"{when}; BN {ctx.ntk.bn_mode}, init {ctx.init.name}, output reduction "
                          f"{ctx.ntk.reduction}, params {ctx.ntk.params}, {ctx.ntk.dtype}{self._own_conventions()}",
        }

    def _own_conventions(self) -> str:
        """The settings of metrics that do not follow the NTK's convention, and the repeats, in words: the one-line
        convention must not say "params all" for a GradSign that used the Conv/Linear weights."""
        parts = [f"{name}: " + ", ".join(f"{key} {value}" for key, value in settings.items())
                 for name, settings in self.conventions.get("metric_settings", {}).items()]
        if self.repeats > 1:
            parts.append(f"each metric averaged over {self.repeats} repeats (init and probe batch)")
        return "".join(f"; {part}" for part in parts)

    def training_budget(self, t: int) -> str:
        """``t`` epochs of training in words, in optimiser steps and images seen, with the precision used."""
        ctx = self.ctx
        plan = ctx.data.plan
        unit = f"{t} epoch(s) = " if plan.steps_per_epoch != 1 else ""
        return (f"{unit}{plan.steps(t):,} optimiser steps ({plan.images(t):,} images seen) of training, "
                f"{ctx.train.resolved_precision(ctx.device.type)}")

    def epochs(self, epochs: int | None) -> int:
        return self.ctx.config.metric.train_epochs if epochs is None else int(epochs)

    # ------------------------------------------------------------------------------------------ building
    def init_seed(self, arch: str, repeat: int = 0) -> int:
        """What seeds ``arch``'s initial weights in ``repeat`` (and any network a metric builds for it)."""
        return arch_seed(self.seed, self.ctx.space.init_key(arch), repeat)

    def build_model(self, arch: str, repeat: int = 0) -> torch.nn.Module:
        torch.manual_seed(self.init_seed(arch, repeat))
        data = self.ctx.dataset
        model = self.ctx.space.build(arch, num_classes=data.num_classes, in_channels=data.in_channels)
        return initialize(model, self.ctx.init).to(self.ctx.device)

    def tracker(self, arch: str, epochs: list[int], theta0: torch.Tensor | None = None) -> KernelTracker:
        """A tracker measuring the selection on ``arch``'s network as it trains, through :meth:`metric_context`."""
        from ntkexp.train import KernelTracker

        return KernelTracker(lambda model: self.metric_context(model, arch, trained=True),
                             list(self.selection.metrics), epochs, theta0=theta0, plan=self.ctx.data.plan)

    def metric_context(self, model: torch.nn.Module, arch: str, repeat: int = 0,
                       trained: bool = False) -> MetricContext:
        """The one metric context of ``arch``'s network, at initialisation or (``trained``) during training: the
        probe (and held-out) batch of ``repeat``, the selected metrics' own settings, and the inputs of their own
        their hooks prepare (e.g. TE-NAS's crops and thin network)."""
        x, y, xt, yt = self._probe(repeat)
        data, device = self.ctx.dataset, next(iter(model.parameters()), x).device
        init_seed = self.init_seed(arch, repeat)

        def request(name: str) -> InputRequest:
            return InputRequest(arch=arch, space=self.ctx.space, model=model, num_classes=data.num_classes,
                                in_channels=data.in_channels, train_images=lambda: self.ctx.data.train_tensors[0],
                                init=self.ctx.init, seed=self.data_seed, repeat=repeat, init_seed=init_seed,
                                device=device, settings=self.settings.get(name), trained=trained)

        return MetricContext(model, x.to(device), y, data.num_classes, self.ctx.ntk,
                             x_test=None if xt is None else xt.to(device), y_test=yt, seed=self.data_seed,
                             settings=dict(self.settings), inputs=prepare_inputs(self.selection.metrics, request))

    def _probe(self, repeat: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The probe (and held-out) batch of repeat ``repeat`` (repeat 0: the run's own)."""
        if repeat == 0:
            return self.x, self.y, self.x_test, self.y_test
        seed = int(np.random.SeedSequence([self.data_seed, repeat]).generate_state(1)[0])
        augment = self.draw is not None and self.draw.augment
        x, y = self.ctx.data.probe_batch(self.ctx.ntk.batch_size, seed, augment=augment)
        xt = yt = None
        if self.selection.needs_held_out:
            xt, yt = self.ctx.data.probe_batch(self.ctx.ntk.batch_size, seed, split="test")
        return x, y, xt, yt

    def _at_init(self, arch: str, names: list[str]) -> tuple[dict[str, float], dict[str, list[str]]]:
        """The selection at initialisation, averaged over ``metric.repeats`` probe batches and initialisations, and
        the flags each metric raised (in any repeat)."""
        runs: list[dict[str, float]] = []
        flags: dict[str, set[str]] = {n: set() for n in names}
        for repeat in range(self.repeats):
            mctx = self.metric_context(self.build_model(arch, repeat), arch, repeat)
            runs.append(compute_metrics(names, mctx))
            for n in names:
                flags[n] |= mctx.metric_flags.get(n, set())
        by_metric = {n: sorted(f) for n, f in flags.items()}
        if self.repeats == 1:
            return runs[0], by_metric
        return {n: float(np.mean([r[n] for r in runs])) for n in names}, by_metric

    # ------------------------------------------------------------------------------------------ scoring
    def score(self, arch: str, epochs: int | None = None) -> ScoreRecord:
        """Every metric of the selection for ``arch``, at initialisation or after ``epochs`` (default
        ``metric.train_epochs``) epochs of training; computed once, then read from the cache."""
        arch = self.ctx.space.validate(arch)
        t = self.epochs(epochs)
        if t < 0:
            raise ValueError(f"epochs must be >= 0, got {t}")
        detail = {"epochs": t, **({"training": self.training(f"metric.train_epochs={t}")} if t > 0 else {})}
        key = cache_key("score", arch, self.conventions, **detail)
        names = list(self.selection.metrics)
        shipped = self.table.lookup(arch, names) if self.table is not None and t == 0 else None
        if shipped is not None:  # precomputed under these conventions (checked when the scorer was made)
            self.n_cached += 1
            self.n_from_table += 1
            return ScoreRecord(arch, self.ctx.space.index_of(arch), t, shipped[0], shipped[1], shipped[2], True)
        cached = self.ctx.store.get(key)
        if cached is not None and all(n in cached["values"] for n in names):
            self.n_cached += 1
            flags, seconds = cached_flags_and_seconds(cached, names)
            return ScoreRecord(arch, self.ctx.space.index_of(arch), t, {n: cached["values"][n] for n in names},
                               flags, seconds, True, None, cached.get("extra", {}))

        def compute() -> tuple[dict[str, float], dict[str, list[str]], dict[str, float]]:
            if not self.ctx.space.has_input_path(arch):  # the output ignores the input: no metric means anything
                return {n: float("nan") for n in names}, {n: ["no_input_path"] for n in names}, {}
            if t == 0:
                values, by_metric = self._at_init(arch, names)
                return values, by_metric, {}
            if self.repeats > 1:
                raise ValueError("metric.repeats applies at initialisation only (metric.train_epochs=0)")
            model = self.build_model(arch)
            tracker = self.tracker(arch, [t])
            self._train(arch, model, tracker)
            (at_t,) = [r for r in tracker.records if r["epoch"] == t]
            trained_flags = [f for f in at_t["flags"].split(";") if f]
            return ({n: float(at_t[n]) for n in names}, {n: trained_flags for n in names},
                    {k: float(at_t[k]) for k in TRAIN_EXTRAS})

        (values, by_metric, extra), seconds, error = self._attempt(arch, compute, lambda: (
            {n: float("nan") for n in names}, {}, {}))
        flags = sorted(set().union(*by_metric.values())) if by_metric else []
        if error is None:
            old = cached or {}
            old_by_metric = old.get("flags_by_metric", {})
            self.ctx.store.put(key, {
                "values": {**old.get("values", {}), **values}, "extra": extra,
                "flags_by_metric": {**old_by_metric, **by_metric},
                "flags": sorted(set(old.get("flags", [])) | set(flags)),
                # each computation that filled the row, with its seconds: a later partial one adds, never overwrites
                "batches": [*old.get("batches", []), {"names": names, "seconds": seconds}],
                "seconds": float(old.get("seconds", 0.0)) + seconds})
        else:
            flags = [f"error:{error.split(':')[0]}"]
        return ScoreRecord(arch, self.ctx.space.index_of(arch), t, values, flags, seconds, False, error, extra)

    def track(self, arch: str, epochs: list[int]) -> TrackRecord:
        """Train ``arch`` through ``epochs`` (0 always included), recording the metrics, the train stats and
        corr(Theta_0, Theta_t), ||Theta_t - Theta_0|| / ||Theta_0|| at each; computed once, then cached."""
        arch = self.ctx.space.validate(arch)
        epochs = sorted(set(int(e) for e in epochs) | {0})
        detail: dict[str, Any] = {"epochs": epochs, "metrics": list(self.selection.metrics)}
        if max(epochs) > 0:
            detail["training"] = self.training("task=kernel_evolution")
        key = cache_key("track", arch, self.conventions, **detail)
        cached = self.ctx.store.get(key)
        if cached is not None:
            self.n_cached += 1
            return TrackRecord(arch, self.ctx.space.index_of(arch), cached["records"], cached["seconds"], True)

        def compute() -> list[dict[str, Any]]:
            model = self.build_model(arch)
            tracker = self.tracker(arch, epochs)
            tracker.measure(model, 0)  # Theta_0, on the network as initialised
            self._train(arch, model, tracker)
            return sorted(tracker.records, key=lambda r: r["epoch"])

        def failed() -> list[dict[str, Any]]:
            plan = self.ctx.data.plan
            return [{"epoch": e, "step": plan.steps(e), "images": plan.images(e),
                     **{n: float("nan") for n in self.selection.metrics}} for e in epochs]

        records, seconds, error = self._attempt(arch, compute, failed)
        if error is None:
            self.ctx.store.put(key, {"records": records, "seconds": seconds})
        else:
            for r in records:
                r["flags"] = f"error:{error.split(':')[0]}"
        return TrackRecord(arch, self.ctx.space.index_of(arch), records, seconds, False, error)

    def _train(self, arch: str, model: torch.nn.Module, tracker: KernelTracker) -> None:
        """Train ``model`` through the tracker's epochs (resuming from kept states), keeping the steps' curve."""
        curve: list[dict[str, Any]] = []
        try:
            from ntkexp.train import train_for

            train_for(model, self.ctx.data, self.ctx.train, tracker, self.checkpoint_dir(arch), curve)
        finally:
            self.curves += [{"arch": arch, **row} for row in curve]

    def _attempt(self, arch: str, compute: Callable[[], T], failed: Callable[[], T]) -> tuple[T, float, str | None]:
        """(result, seconds, None), or (failed(), seconds, "<Type>: <message>") when ``compute`` raises: the one
        error policy of scoring."""
        start = time.perf_counter()
        try:
            result, error = compute(), None
        except Exception as err:  # a bad network must not end a run over 15,625 archs
            storage = storage_error(err, getattr(err, "filename", None) or "a file", "write")
            if storage is not None:  # a full disk or a forbidden path is no fault of the arch: it ends the run
                raise storage from None
            result, error = failed(), f"{type(err).__name__}: {err}"
            log.warning("arch %s failed: %s\n%s", arch, error, traceback.format_exc(limit=3))
        seconds = time.perf_counter() - start
        self.n_computed += 1
        return result, seconds, error


def score_archs(ctx: RunContext, scorer: ArchScorer, archs: list[str], with_accuracy: bool = True,
                on_arch: Callable[[dict[str, Any]], None] | None = None) -> pd.DataFrame:
    """One row per arch (every score of the selection, combinations formed over the set), with its accuracy (unless
    ``with_accuracy`` is False: no ground truth); ``on_arch`` is handed each arch's row as it is scored."""
    rows = []
    with Progress(len(archs), "scoring", ctx.config.task.progress) as bar:
        for arch in archs:
            record = scorer.score(arch)
            rows.append(record.row())
            if on_arch is not None:
                on_arch(rows[-1])
            bar.step(cached=record.cached)
    frame = pd.DataFrame(rows)
    if with_accuracy:
        frame["accuracy"] = ctx.require_ground_truth().accuracy(list(frame["arch"]), ctx.accuracy_key)
    for name in scorer.selection.combinations:  # rank aggregations over the scored set
        frame[name] = combine(name, {c: frame[c].to_numpy() for c in frame.columns})
    errors = frame["flags"].str.contains("error:")
    if errors.all():
        raise NothingScored(f"every arch failed to score; the first error: {frame['error'].iloc[0]}")
    return frame


def scoring_counts(frame: pd.DataFrame, scorer: ArchScorer) -> dict[str, Any]:
    """How many archs were flagged, computed and read from the cache, and the seconds their scores cost."""
    return {"n_flagged": int((frame["flags"] != "").sum()), "n_computed": scorer.n_computed,
            "n_cached": scorer.n_cached, "score_seconds_total": float(frame["seconds"].sum())}
