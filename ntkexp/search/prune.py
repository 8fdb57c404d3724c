"""TE-NAS's pruning search (Chen et al., ICLR 2021, Algorithm 1; the baseline of the LGA paper's Table 2 and the
search of NTK-score's Section 5.4): start from the supernet whose every edge holds every op, and in each round
score, for every op of every edge that still holds more than one, the supernet without that op. An op whose removal
leaves the better network (by the oriented metric: higher is better) matters less; each metric ranks the candidates
by that, the ranks are summed over the driving metrics (TE-NAS: the condition number and the number of linear
regions), and on each edge the op with the smallest sum is pruned. It stops when every edge holds one op.

The comparison with the unpruned supernet that TE-NAS writes (Δκ = κ(N) − κ(N without o)) shifts every candidate of a
round by the same amount, so ranking the networks without each op ranks the Δs: the round's own supernet is not
scored. Ties in the rank sum go to the op that comes first in the benchmark's op order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.stats import rankdata

from ntkexp.metrics import oriented

#: scores a supernet (its per-edge op sets) with the driving metrics: name -> raw value
SupernetScorer = Callable[[list[tuple[str, ...]]], dict[str, float]]


@dataclass
class PruneRound:
    """One round: every candidate (edge, op) with the driving metrics of the supernet without it and its rank sum
    (lower: the op matters less), and the op pruned from each edge."""

    round: int
    candidates: list[dict[str, object]] = field(default_factory=list)
    pruned: dict[int, str] = field(default_factory=dict)


def without(state: Sequence[tuple[str, ...]], edge: int, op: str) -> list[tuple[str, ...]]:
    return [tuple(o for o in ops if o != op) if e == edge else tuple(ops) for e, ops in enumerate(state)]


def prune_supernet(edges: Sequence[Sequence[str]], score: SupernetScorer, directions: dict[str, int],
                   on_round: Callable[[PruneRound], None] | None = None) -> tuple[list[str], list[PruneRound]]:
    """Prune ``edges`` (each edge's op set) one op per edge per round until one op per edge remains; ``directions``
    gives each driving metric's direction (+1 higher is better, -1 lower). Returns the op of each edge and the
    rounds."""
    if not directions:
        raise ValueError("the pruning search needs at least one metric to drive it")
    state = [tuple(ops) for ops in edges]
    if any(not ops for ops in state):
        raise ValueError("every edge of the supernet needs at least one op")
    rounds: list[PruneRound] = []
    while any(len(ops) > 1 for ops in state):
        record = PruneRound(len(rounds) + 1)
        candidates = [(e, op) for e, ops in enumerate(state) if len(ops) > 1 for op in ops]
        values = [score(without(state, e, op)) for e, op in candidates]
        total = np.zeros(len(candidates))
        for name, direction in directions.items():
            goodness = oriented([v[name] for v in values], direction)
            total += rankdata(-goodness, method="average")  # rank 1: the best network without the op
        for (e, op), v, t in zip(candidates, values, total):
            record.candidates.append({"edge": e, "op": op, **v, "rank_sum": float(t)})
        for e, ops in enumerate(state):
            if len(ops) == 1:
                continue
            mine = [(t, ops.index(op), op) for (ce, op), t in zip(candidates, total) if ce == e]
            record.pruned[e] = min(mine)[2]
        state = [tuple(o for o in ops if o != record.pruned.get(e)) for e, ops in enumerate(state)]
        rounds.append(record)
        if on_round is not None:
            on_round(record)
    return [ops[0] for ops in state], rounds
