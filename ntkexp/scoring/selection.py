"""Which archs a run scores: a named list or a file of them, a seeded sample of the benchmark (optionally from one
accuracy decile), every arch, or a few from each accuracy band."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ntkexp.scoring.context import RunContext

log = logging.getLogger("ntkexp")


def decile_pool(accuracy: pd.Series, decile: int, n_deciles: int = 10) -> list[str]:
    """The archs of accuracy decile P<decile> (P1 = the best 1/n_deciles) of the benchmark (Mok et al., Sec. 3.3)."""
    if not 1 <= decile <= n_deciles:
        raise ValueError(f"task.decile={decile} must be between 1 and task.n_deciles={n_deciles}")
    ranked = accuracy.dropna().sort_values(ascending=False, kind="stable")
    n = len(ranked)
    return list(ranked.index[(decile - 1) * n // n_deciles: decile * n // n_deciles])


def read_arch_file(path: Path) -> list[str]:
    """The archs listed in a text file, one per line; blank lines and lines starting with '#' are skipped."""
    if path.is_dir():
        raise ValueError(f"archs_file {path} is a directory; give a text file with one arch per line")
    if not path.is_file():
        raise FileNotFoundError(f"archs_file {path} does not exist (give a text file with one arch per line)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"archs_file {path} is not a text file (it does not decode as UTF-8); give one arch per "
                         "line") from None
    archs = [line.strip() for line in text.splitlines()]
    archs = [a for a in archs if a and not a.startswith("#")]
    if not archs:
        raise ValueError(f"archs_file {path} lists no archs")
    return archs


def _unique(archs: list[str], what: str) -> list[str]:
    seen = list(dict.fromkeys(archs))
    if len(seen) < len(archs):
        log.warning("%s names %d arch(s) more than once; each is scored and counted once", what,
                    len(archs) - len(seen))
    return seen


def named_archs(ctx: RunContext) -> list[str]:
    """The archs named by ``archs`` and the lines of ``archs_file``, each validated by the space and kept once (empty
    when none is named)."""
    cfg = ctx.config
    named = list(cfg.archs or [])
    if cfg.archs_file:
        named += read_arch_file(Path(cfg.archs_file))
    return _unique([ctx.space.validate(a) for a in named], "archs/archs_file") if named else []


def choose_archs(ctx: RunContext, minimum: int = 2, decile: int | None = None, n_deciles: int = 10) -> list[str]:
    """The named list ``archs`` (and/or the lines of ``archs_file``), each once; else ``n_archs`` drawn without
    replacement (by ``seed``) from the ground truth's archs (or from accuracy decile ``decile`` of ``n_deciles``);
    else (``n_archs=null``) all of them. Fewer than ``minimum`` archs is an error (a rank correlation needs 2)."""
    cfg, gt = ctx.config, ctx.require_ground_truth()
    available = gt.scored_archs(ctx.accuracy_key)
    if len(available) < len(gt):
        log.warning("%d of the %d archs of %s have no %s accuracy (a blank or NaN cell): they are left out",
                    len(gt) - len(available), len(gt), gt.path, ctx.accuracy_key)
    if decile is not None:
        available = decile_pool(gt.frame[ctx.accuracy_key], decile, n_deciles)
    if cfg.archs is not None and not cfg.archs and not cfg.archs_file:
        raise ValueError("archs=[] names no arch; name at least 2, or leave archs unset to sample n_archs")
    archs = named_archs(ctx)
    if archs:
        if len(archs) < minimum:
            raise ValueError(f"{len(archs)} arch named: a rank correlation needs at least {minimum} archs")
        pool = set(available)
        missing = [a for a in archs if a not in pool]
        if missing:
            raise ValueError(f"{len(missing)} of the named archs have no ground truth, e.g. {missing[0]}")
        return archs
    if cfg.n_archs is None:
        return available
    n = cfg.n_archs
    if n < minimum:
        raise ValueError(f"n_archs={n}: a rank correlation needs at least {minimum} archs")
    if n > len(available):
        raise ValueError(f"n_archs={n} but the ground truth has only {len(available)} archs (use n_archs=null for all)")
    rng = np.random.default_rng(cfg.seed)
    return [available[i] for i in sorted(rng.choice(len(available), size=n, replace=False))]


def band_archs(accuracy: pd.Series, bands: dict[str, list[float]], per_band: int, seed: int) -> list[tuple[str, str]]:
    """(arch, band) pairs: ``per_band`` archs drawn from each accuracy-quantile range [lo, hi]."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, str]] = []
    for band, (lo, hi) in bands.items():
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"band {band!r}: quantile range [{lo}, {hi}] must satisfy 0 <= lo < hi <= 1")
        q_lo, q_hi = accuracy.quantile(lo), accuracy.quantile(hi)
        pool = accuracy[(accuracy >= q_lo) & (accuracy <= q_hi)].index.tolist()
        if len(pool) < per_band:
            raise ValueError(f"band {band!r} holds only {len(pool)} archs; lower task.per_band ({per_band})")
        out.extend((pool[i], band) for i in sorted(rng.choice(len(pool), size=per_band, replace=False)))
    return out
