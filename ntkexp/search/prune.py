"""TE-NAS's pruning search (Chen et al., ICLR 2021, Algorithm 1, as its ``prune_tenas.py`` runs it; the baseline of
the LGA paper's Table 2 and the search of NTK-score's Section 5.4): start from the supernet whose every edge holds
every op (TE-NAS removes ``none`` first), and in each round score, for every op of every edge that still holds more
than one, the supernet without that op against the round's supernet, both on the weights and data of one
:class:`Draw` (round, repeat, candidate: the scorer decides which of them its weights and data follow). A
candidate's change for a metric is the relative change of its oriented value, (m - m_0) / |m_0| times the metric's
direction, averaged over the repeats: for the condition number TE-NAS's (kappa_0 - kappa) / kappa_0, for the linear regions
-(R_0 - R) / R_0. The op whose removal improves the network most matters least: each metric ranks the candidates by
their change (rank 0 the largest; as TE-NAS's released code: each repeat's change rounded to 3 decimals, equal
mean changes sharing a rank, :func:`tenas_ranks`), the ranks are summed over the driving metrics, and on each edge the op with the smallest sum
is pruned (ties: the first metric's rank, then the benchmark's op order). It stops when every edge holds one op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

@dataclass(frozen=True)
class Draw:
    """One comparison of a candidate with its round's supernet: both are scored on the weights and data this draw
    stands for. ``candidate`` is the candidate's index in the round; a scorer whose weights and data follow the round
    and repeat only gives every candidate of a round the same supernet score (TE-NAS's released code draws a new
    training batch for each candidate and repeat, on one weight set per round)."""

    round: int
    repeat: int
    candidate: int


#: scores a supernet (its per-edge op sets) on the weights and data of one draw: metric name -> raw value
SupernetScorer = Callable[[list[tuple[str, ...]], Draw], dict[str, float]]


@dataclass
class PruneRound:
    """One round: every candidate (edge, op) with each driving metric's value without it and the round's supernet's
    on the same draws (``<metric>_supernet``; means over repeats), its relative change, its rank sum (lower: the op matters less), and the op pruned from
    each edge."""

    round: int
    candidates: list[dict[str, object]] = field(default_factory=list)
    pruned: dict[int, str] = field(default_factory=dict)


def without(state: Sequence[tuple[str, ...]], edge: int, op: str) -> list[tuple[str, ...]]:
    return [tuple(o for o in ops if o != op) if e == edge else tuple(ops) for e, ops in enumerate(state)]


def significant(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant figures (NaN stays NaN)."""
    if not np.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits - 1}e}")


def dense_ranks(values: Sequence[float], digits: int) -> np.ndarray:
    """Rank 0 for the largest value, equal values (to ``digits`` significant figures) sharing a rank and the next
    distinct value one rank further; an undefined value ranks after every defined one."""
    rounded = [significant(v, digits) for v in values]
    distinct = sorted({v for v in rounded if np.isfinite(v)}, reverse=True)
    order = {v: i for i, v in enumerate(distinct)}
    return np.array([order[v] if np.isfinite(v) else len(distinct) for v in rounded], dtype=float)


def tenas_ranks(means: Sequence[float], digits: int) -> np.ndarray:
    """Ranks as TE-NAS's released ``prune_tenas.py`` gives them: the candidates sorted (stably, in their order) by
    their mean change rounded to ``digits`` significant figures, largest first; rank 0 for the first, and each next
    one a rank further unless its (unrounded) mean equals the previous one's. Undefined means rank last."""
    keyed = [(-significant(v, digits) if np.isfinite(v) else np.inf, i) for i, v in enumerate(means)]
    order = [i for _, i in sorted(keyed, key=lambda t: t[0])]
    ranks = np.zeros(len(means))
    for pos, i in enumerate(order):
        if pos:
            prev = order[pos - 1]
            same = means[i] == means[prev] or not (np.isfinite(means[i]) or np.isfinite(means[prev]))
            ranks[i] = ranks[prev] + (0 if same else 1)
    return ranks


ROUNDINGS = ("tenas", "significant")


def relative_change(value: float, origin: float, direction: int) -> float:
    """The oriented relative change of a metric from the round's supernet (``origin``) to the candidate."""
    if not (np.isfinite(value) and np.isfinite(origin)) or origin == 0:
        return float("nan")
    return direction * (value - origin) / abs(origin)


def prune_supernet(edges: Sequence[Sequence[str]], score: SupernetScorer, directions: dict[str, int],
                   repeats: int = 1, on_round: Callable[[PruneRound], None] | None = None,
                   precision: int = 3, rounding: str = "tenas") -> tuple[list[str], list[PruneRound]]:
    """Prune ``edges`` (each edge's op set) one op per edge per round until one op per edge remains; ``directions``
    gives each driving metric's direction (+1 higher is better, -1 lower), in the order of tie-breaking. Returns the
    op of each edge and the rounds. ``rounding``: ``tenas`` as TE-NAS's released code (``prune_launch.py``'s
    precision 3): each repeat's change rounded to ``precision`` decimals before the mean, ranks by
    :func:`tenas_ranks`; ``significant``: the means' dense ranks at ``precision`` significant figures."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"task.prune.rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    if not directions:
        raise ValueError("the pruning search needs at least one metric to drive it")
    if repeats < 1:
        raise ValueError(f"the pruning search needs at least one repeat, got {repeats}")
    state = [tuple(ops) for ops in edges]
    if any(not ops for ops in state):
        raise ValueError("every edge of the supernet needs at least one op")
    names = list(directions)
    rounds: list[PruneRound] = []
    while any(len(ops) > 1 for ops in state):
        record = PruneRound(len(rounds) + 1)
        candidates = [(e, op) for e, ops in enumerate(state) if len(ops) > 1 for op in ops]
        draws = [[Draw(record.round, r, i) for r in range(repeats)] for i in range(len(candidates))]
        origin = [[score(state, d) for d in ds] for ds in draws]
        values = [[score(without(state, e, op), d) for d in ds] for (e, op), ds in zip(candidates, draws)]

        def per_repeat(i: int, n: str, r: int) -> float:
            c = relative_change(values[i][r][n], origin[i][r][n], directions[n])
            return float(np.round(c, precision)) if rounding == "tenas" and np.isfinite(c) else c

        change = {n: [float(np.mean([per_repeat(i, n, r) for r in range(repeats)])) for i in range(len(values))]
                  for n in names}
        ranks = {n: tenas_ranks(change[n], precision) if rounding == "tenas" else dense_ranks(change[n], precision)
                 for n in names}
        total = sum(ranks[n] for n in names)
        for i, ((e, op), v) in enumerate(zip(candidates, values)):
            record.candidates.append({"edge": e, "op": op,
                                      **{n: float(np.mean([x[n] for x in v])) for n in names},
                                      **{f"{n}_supernet": float(np.mean([x[n] for x in origin[i]])) for n in names},
                                      **{f"{n}_change": change[n][i] for n in names},
                                      **{f"{n}_rank": float(ranks[n][i]) for n in names},
                                      "rank_sum": float(total[i])})
        for e, ops in enumerate(state):
            if len(ops) == 1:
                continue
            mine = [(total[i], ranks[names[0]][i], ops.index(op), op) for i, (ce, op) in enumerate(candidates)
                    if ce == e]
            record.pruned[e] = min(mine)[3]
        state = [tuple(o for o in ops if o != record.pruned.get(e)) for e, ops in enumerate(state)]
        rounds.append(record)
        if on_round is not None:
            on_round(record)
    return [ops[0] for ops in state], rounds
