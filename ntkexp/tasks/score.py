"""``task=score``: score archs of any space with the run's metrics, with no benchmark installed: the named archs
(``archs``, ``archs_file``) or ``n_archs`` distinct archs drawn from the space by ``seed``. Writes ``scores.csv``
(one row per arch: every metric, flags, seconds) and ``summary.json`` (what was computed, the conventions); a
correlation with accuracy needs the benchmark (``task=correlate``)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ntkexp.scoring import ArchScorer, RunContext, score_archs, scoring_counts
from ntkexp.scoring.selection import named_archs
from ntkexp.tasks.base import RunOutput, register_task

log = logging.getLogger("ntkexp")


def space_archs(ctx: RunContext) -> list[str]:
    """The named archs (validated by the space, each once), else ``n_archs`` distinct ones drawn from the space."""
    cfg = ctx.config
    named = named_archs(ctx)
    if named:
        return named
    if cfg.n_archs is None or cfg.n_archs < 1:
        raise ValueError("task=score draws n_archs archs from the space (give a number, or name archs with "
                         "archs=[...] or archs_file=...); n_archs=null means 'every benchmark arch' and there is no "
                         "benchmark here")
    rng = np.random.default_rng(cfg.seed)
    arch_of = getattr(ctx.space, "arch_of", None)
    if ctx.space.size is not None and arch_of is not None and cfg.n_archs <= ctx.space.size:
        # an enumerable space (NAS-Bench-201): the same draw as task=correlate's over its benchmark (by index,
        # without replacement, in index order), so the two tasks score the same archs for the same seed
        return [arch_of(int(i)) for i in sorted(rng.choice(ctx.space.size, size=cfg.n_archs, replace=False))]
    archs: dict[str, None] = {}
    for _ in range(100 * cfg.n_archs):
        archs[ctx.space.sample(rng)] = None
        if len(archs) == cfg.n_archs:
            break
    return list(archs)


def run_score(ctx: RunContext, out: RunOutput) -> dict[str, Any]:
    archs = space_archs(ctx)
    scorer = ArchScorer(ctx)
    log.info("scoring %d archs of %s with %s (no benchmark: no correlation)", len(archs), ctx.space.label(),
             ",".join(ctx.selection.names))
    frame = score_archs(ctx, scorer, archs, with_accuracy=False)
    names = ctx.selection.names
    out.scores(frame, names)
    payload = {"n_archs": len(frame), **scoring_counts(frame, scorer),
               "note": "scores only: a correlation with accuracy needs the benchmark (task=correlate)"}
    summary = out.summary("score", payload, {"n_archs": len(frame)}, scorer)
    print(frame[["arch", *names]].to_string(index=False, max_colwidth=60))
    return summary


register_task("score", needs_ground_truth=False)(run_score)
