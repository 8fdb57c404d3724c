"""``task=prune_search``: TE-NAS's pruning search on the NAS-Bench-201 supernet (``ntkexp.search.prune``), driven by
the run's metrics: a combination (``metric=tegnas``, ``ntk_score``) drives it with its components, otherwise every
metric named in ``metric.names`` does (``'metric.names=[cond,linear_regions]'`` is TE-NAS). The supernet is TE-NAS's
(``task.prune``: C=3, N=1, ops averaged on each edge, ``none`` removed first), not the run's network; each
supernet is scored through the score cache under the run's conventions, once per repeat (``metric.repeats``). Which
weights and data a comparison uses is ``task.prune.weights`` / ``task.prune.batches``: by default as TE-NAS's
released code runs, one weight set per round and a new shuffled, augmented training batch for each candidate and
repeat (the round's supernet measured again on it); ``per_repeat`` / ``per_repeat``: each repeat its own
initialisation and fixed probe batch, shared by a round's supernet and its candidates.

Writes ``prune_rounds.csv`` (every candidate of every round: edge, op, the metrics of the supernet without it, their
relative changes and ranks, the rank sum, whether it was pruned), ``summary.json`` (the found arch, its accuracy on every data set of the benchmark,
the benchmark's best and mean, the supernets scored and their seconds) and ``prune_rounds.png``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd

from ntkexp.config import TaskConfig
from ntkexp.metrics import COMBINATIONS, expand, traits
from ntkexp.plotting import pyplot
from ntkexp.scoring import ArchScorer, DataDraw, Progress, RunContext, device_name
from ntkexp.search.prune import Draw, PruneRound, prune_supernet
from ntkexp.spaces.nasbench201 import OPS, EDGES, NASBench201, NASBench201Supernet, format_ops, format_supernet
from ntkexp.tasks.base import RunOutput, register_task

log = logging.getLogger("ntkexp")


@dataclass
class PruneSearchConfig:
    """``task=prune_search``: the supernet TE-NAS prunes (its ``prune_tenas.py``: C=3, N=1, edges averaging their
    ops, ``none`` removed before pruning, each candidate compared with the round's supernet on shared weights)."""

    C: int = 3
    N: int = 1
    mix: str = "mean"  # mean (TE-NAS's DARTS-V1 cell, equal weights) | sum
    keep_none: bool = False  # True: prune from all 5 ops (4 rounds; 'none' can survive)
    precision: int = 3  # decimals of each repeat's change (prune_launch.py's precision=3; see rounding)
    rounding: str = "tenas"  # tenas: as prune_tenas.py (3-decimal changes, equal means share a rank) | significant
    # per_round: one weight set per round, shared by its candidates and repeats (prune_tenas.py builds the round's
    # supernet once and its init call re-initialises nothing) | per_repeat: each repeat re-initialises
    weights: str = "per_round"
    # per_call: each candidate and repeat a new batch of training images, shuffled and augmented (random crop,
    # flip), and new crops for the linear regions, the round's supernet measured again on them (prune_tenas.py's
    # train_loader) | per_repeat: one fixed, un-augmented probe batch per repeat for the whole round
    batches: str = "per_call"


WEIGHTS = ("per_round", "per_repeat")
BATCHES = ("per_call", "per_repeat")


@dataclass
class PruneTaskConfig(TaskConfig):
    """``task=prune_search``: its settings are ``prune``."""

    prune: PruneSearchConfig = field(default_factory=PruneSearchConfig)


def repeat_seed(seed: int, repeat: int) -> int:
    """The seed of repeat ``repeat`` (repeat 0: the run's own)."""
    return seed if repeat == 0 else int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0])


def draw_seeds(prune: PruneSearchConfig, seed: int, draw: Draw) -> tuple[int, DataDraw | None]:
    """The seed of the weights and the data of one comparison under ``task.prune.weights`` / ``batches`` (both
    ``per_repeat``: the run's seeds of repeat ``draw.repeat``, as before the options existed, so cached scores stay
    valid)."""
    if prune.weights not in WEIGHTS or prune.batches not in BATCHES:
        raise ValueError(f"task.prune.weights must be one of {', '.join(WEIGHTS)} and task.prune.batches one of "
                         f"{', '.join(BATCHES)}; got {prune.weights!r}, {prune.batches!r}")
    weights = (int(np.random.SeedSequence([seed, 1, draw.round]).generate_state(1)[0])
               if prune.weights == "per_round" else repeat_seed(seed, draw.repeat))
    if prune.batches == "per_call":
        data = int(np.random.SeedSequence([seed, 2, draw.round, draw.candidate, draw.repeat]).generate_state(1)[0])
        return weights, DataDraw(data, augment=True)
    if prune.weights == "per_repeat":
        return weights, None
    return weights, DataDraw(repeat_seed(seed, draw.repeat))


def driving_metrics(ctx: RunContext) -> list[str]:
    """The metrics whose ranks are summed: a combination's components, or the metrics named."""
    primary = ctx.selection.primary
    if primary in COMBINATIONS:
        return list(COMBINATIONS.get(primary).components)
    return [n for n in ctx.config.metric.names if n not in COMBINATIONS]


class DrawScorers:
    """Scores supernets on the weights and data of a draw (:func:`draw_seeds`): one scorer per (weights, data), each
    on a run context of its own for the supernet with one repeat; a supernet already scored on the same weights and
    data is not scored again (a round's supernet, under ``batches=per_repeat``). Counts the supernets computed and
    their seconds."""

    def __init__(self, ctx: RunContext, supernet: NASBench201Supernet, names: list[str],
                 progress: Progress | None = None) -> None:
        self.ctx, self.supernet, self.names, self.progress = ctx, supernet, names, progress
        self.prune: PruneSearchConfig = ctx.config.task.prune
        self.single = dataclasses.replace(ctx.config, metric=dataclasses.replace(ctx.config.metric, repeats=1))
        self._scorers: dict[tuple[int, DataDraw | None], ArchScorer] = {}
        self._seen: dict[tuple[int, DataDraw | None, str], dict[str, float]] = {}
        self.seconds: list[float] = []
        self.first: ArchScorer = self.scorer(*draw_seeds(self.prune, ctx.seed, Draw(1, 0, 0)))

    def scorer(self, weights: int, data: DataDraw | None) -> ArchScorer:
        key = (weights, data)
        if key not in self._scorers:
            if len(self._scorers) > 8:  # per_call: a new draw for every comparison; keep the recent ones
                self._scorers.pop(next(iter(self._scorers)))
            config = dataclasses.replace(self.single, seed=weights)
            self._scorers[key] = ArchScorer(dataclasses.replace(self.ctx, space=self.supernet, config=config),
                                            expand(self.names), draw=data)
        return self._scorers[key]

    def __call__(self, state: list[tuple[str, ...]], draw: Draw) -> dict[str, float]:
        weights, data = draw_seeds(self.prune, self.ctx.seed, draw)
        arch = format_supernet(state)
        cached = (weights, data, arch) in self._seen
        if not cached:
            record = self.scorer(weights, data).score(arch)
            if record.error is not None:
                raise RuntimeError(f"scoring the supernet {record.arch} failed: {record.error}")
            self.seconds.append(0.0 if record.cached else record.seconds)
            self._seen[(weights, data, arch)] = {n: float(record.values[n]) for n in self.names}
            cached = record.cached
        if self.progress is not None:
            self.progress.step(cached=cached)
        return self._seen[(weights, data, arch)]


def prune_payload(ctx: RunContext, names: list[str], found: str, rounds: list[PruneRound], supernet: Any,
                  ops: tuple[str, ...], seconds: list[float]) -> dict[str, Any]:
    """``summary.json``'s own part: the found arch against the benchmark, the rounds, the supernet, the cost."""
    gt, prune = ctx.require_ground_truth(), ctx.config.task.prune
    accuracy = {c: float(gt.accuracy([found], c)[0]) for c in gt.datasets}
    # A combination (tegnas) names itself; metrics listed one by one are named by all of them.
    label = ctx.selection.primary if ctx.selection.primary in COMBINATIONS else "+".join(names)
    return {
        "metric": label, "driving_metrics": names, "found": {"arch": found, "accuracy": accuracy},
        "benchmark_best_accuracy": {c: float(gt.frame[c].max()) for c in gt.datasets},
        "benchmark_mean_accuracy": {c: float(np.nanmean(gt.frame[c])) for c in gt.datasets},
        "found_percentile": {c: float((gt.frame[c] < accuracy[c]).mean() * 100) for c in gt.datasets},
        "rounds": [{"round": r.round, "pruned": {str(e): op for e, op in r.pruned.items()}} for r in rounds],
        "supernet": supernet.label(), "ops": list(ops), "repeats": ctx.config.metric.repeats,
        "weights": prune.weights, "batches": prune.batches, "protocol": protocol_words(prune),
        "cost": {"device": device_name(ctx.device), "supernets_scored": len(seconds),
                 "score_seconds": float(sum(seconds))},
    }


def protocol_words(prune: PruneSearchConfig) -> str:
    """The weights and data of the comparisons, in words (summary, README, RESULTS)."""
    weights = ("one weight set per round, shared by its candidates and repeats" if prune.weights == "per_round"
               else "each repeat its own initialisation")
    data = ("a new shuffled, augmented training batch (and new crops) for each candidate and repeat, the round's "
            "supernet measured again on it" if prune.batches == "per_call"
            else "one fixed probe batch per repeat for the whole round")
    return f"{weights}; {data}"


def print_prune(payload: dict[str, Any], key: str, device: str) -> None:
    found, cost = payload["found"], payload["cost"]
    print(f"found: {found['arch']}")
    best = payload["benchmark_best_accuracy"][key]
    print(f"{key} accuracy {found['accuracy'][key]:.2f}% (benchmark best {best:.2f}%, "
          f"mean {payload['benchmark_mean_accuracy'][key]:.2f}%, better than {payload['found_percentile'][key]:.1f}% "
          f"of the archs); {cost['supernets_scored']} supernets scored in {cost['score_seconds']:.1f} s on {device}")


def run_prune_search(ctx: RunContext, out: RunOutput) -> dict[str, Any]:
    assert isinstance(ctx.space, NASBench201)  # the task declares its space (checked before the run starts)
    names, prune, key = driving_metrics(ctx), ctx.config.task.prune, ctx.accuracy_key
    ops = tuple(OPS) if prune.keep_none else tuple(o for o in OPS if o != "none")
    supernet = NASBench201Supernet(C=prune.C, N=prune.N, mix=prune.mix, universe=ops)
    # every candidate of every round beside its round's supernet, in every repeat
    comparisons = ctx.config.metric.repeats * sum(len(EDGES) * k for k in range(len(ops), 1, -1))
    progress = Progress(2 * comparisons, "scoring supernets", enabled=ctx.config.task.progress)
    score = DrawScorers(ctx, supernet, names, progress)
    seconds = score.seconds

    def report(record: PruneRound) -> None:
        log.info("round %d: pruned %s (%d supernets scored so far, %.1f s)", record.round,
                 ", ".join(f"edge {e}: {op}" for e, op in sorted(record.pruned.items())), len(seconds), sum(seconds))

    log.info("pruning the NB201 supernet (%s) by %s on %s: %s", supernet.label(), " + ".join(names), ctx.device,
             protocol_words(prune))
    with progress:
        chosen, rounds = prune_supernet([ops] * len(EDGES), score, {n: traits(n).direction for n in names},
                                        ctx.config.metric.repeats, report, prune.precision, prune.rounding)
    frame = pd.DataFrame([{"round": r.round, **c, "pruned": r.pruned.get(int(c["edge"])) == c["op"]}
                          for r in rounds for c in r.candidates])
    out.table("prune_rounds", frame)
    payload = prune_payload(ctx, names, format_ops(chosen), rounds, supernet, ops, seconds)
    found_accuracy = payload["found"]["accuracy"][key]
    summary = out.summary("prune_search", payload, {"found_accuracy": found_accuracy,
                                                    "score_seconds": float(sum(seconds))}, score.first, epochs=0)
    out.figure("prune_rounds", lambda: rounds_figure(frame, f"pruning by {' + '.join(names)} | found {key} "
                                                            f"{found_accuracy:.2f}% | seed {ctx.seed}"))
    print_prune(payload, key, device_name(ctx.device))
    return summary


def rounds_figure(frame: pd.DataFrame, title: str) -> Any:
    """Per round, each candidate's rank sum (lower: the op matters less), the pruned ones marked."""
    rounds = sorted(frame["round"].unique())
    fig, axes = pyplot().subplots(1, len(rounds), figsize=(3.2 * len(rounds), 3.4), squeeze=False, sharey=True)
    for ax, r in zip(axes[0], rounds):
        part = frame[frame["round"] == r]
        labels = [f"e{e}:{op.replace('nor_conv_', 'c').replace('avg_pool_3x3', 'pool')}"
                  for e, op in zip(part["edge"], part["op"])]
        colors = ["tab:red" if p else "tab:gray" for p in part["pruned"]]
        ax.bar(range(len(part)), part["rank_sum"], color=colors)
        ax.set_xticks(range(len(part)), labels, rotation=90, fontsize=6)
        ax.set_title(f"round {r} (red: pruned)", fontsize=8)
    axes[0][0].set_ylabel("rank sum")
    fig.suptitle(title, fontsize=8)
    return fig


register_task("prune_search", spaces=("nasbench201",), config=PruneTaskConfig)(
    run_prune_search)
