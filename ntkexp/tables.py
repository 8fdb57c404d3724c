"""Small table helpers shared by the tasks' report sections: aggregation over seeds and Markdown tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ntkexp.io import atomic_write


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` to ``path`` as CSV, all or nothing."""
    with atomic_write(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def aggregate(frame: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """mean, std and n of ``values`` over seeds for every combination of ``keys``."""
    grouped = frame.groupby(keys, sort=False)[values]
    out = grouped.agg(["mean", "std", "count"])
    out.columns = [f"{v}_{s if s != 'count' else 'n'}" for v, s in out.columns]
    return out.reset_index()


def markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """``frame`` as a GitHub Markdown table (floats to ``digits`` places)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, digits) for v in row) + " |")
    return "\n".join(lines)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.{digits}f}"
    return str(value)
