"""Progress of long work: a rich bar on a terminal; elsewhere (a log file, a SLURM job) one log line with the count,
the rate and the time left at each tenth of the work and at least every minute.

The rate and the time left are estimated from the items actually computed: items answered from the cache cost
nothing and say nothing about the rest (a run of cached items reports no estimate rather than "0 s left"). Where some
items are known to cost nothing before they run (a simulated search's runs that use no metric), ``costly`` says how
many may cost, and the time left counts only those still to come.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

log = logging.getLogger("ntkexp")


class Progress:
    """``with Progress(total, "scoring") as p: ... p.step(cached=...)`` once per finished item; with ``costly`` (how
    many of the ``total`` items may cost anything), ``p.step(cached=..., free=...)``, ``free`` for the others."""

    def __init__(self, total: int, description: str, enabled: bool = True, *, every_s: float = 60.0,
                 interactive: bool | None = None, costly: int | None = None) -> None:
        self.total, self.description, self.enabled, self.every_s = total, description, enabled, every_s
        self.costly = total if costly is None else costly
        if not 0 <= self.costly <= total:
            raise ValueError(f"Progress: costly must be between 0 and total ({total}), got {costly}")
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.done = self.computed = self.free = 0
        self.computed_seconds = 0.0
        self._step = max(1, total // 10)
        self._start = self._last = self._last_item = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> "Progress":
        if self.enabled and self.interactive:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TimeRemainingColumn(), transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, err, tb)

    def eta(self) -> float | None:
        """Seconds left, from the computed items' mean cost times the items left that may cost; None before any item
        was computed."""
        if not self.computed:
            return None
        return self.computed_seconds / self.computed * max(0, self.costly - (self.done - self.free))

    def step(self, cached: bool = False, note: str = "", free: bool = False) -> None:
        """One item finished: ``cached`` if it cost nothing this time, ``free`` if it was known to cost nothing."""
        now = time.perf_counter()
        self.done += 1
        if free:
            self.free += 1
        elif not cached:
            self.computed += 1
            self.computed_seconds += now - self._last_item
        self._last_item = now
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.advance(self._task)
            return
        if self.done == self.total or self.done % self._step == 0 or now - self._last >= self.every_s:
            self._last = now
            eta = self.eta()
            if eta is None:
                rate = f"all {self.done} from the cache so far" if not self.free else "no estimate yet"
            else:
                rate = f"{self.computed_seconds / self.computed:.1f} s each computed, about {eta:.0f} s left"
            n_cached = self.done - self.computed - self.free
            parts = [f"{n_cached} cached"] * bool(n_cached) + [f"{self.free} without cost"] * bool(self.free)
            cached_part = f" ({', '.join(parts)})" if parts else ""
            log.info("%s: %d/%d done%s, %s%s", self.description, self.done, self.total, cached_part, rate,
                     f"; {note}" if note else "")
