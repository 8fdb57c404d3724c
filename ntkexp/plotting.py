"""Figures: a headless pyplot and an atomic PNG save shared by every task and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ntkexp.io import atomic_write


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Lay out, write ``fig`` to ``path`` as PNG (all or nothing), close it and return the path."""
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    pyplot().close(fig)
    return path
