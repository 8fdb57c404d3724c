"""``task=score`` in a sweep report: how many archs each group scored, and at what cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ntkexp.report.base import register_section
from ntkexp.tables import aggregate, markdown, write_csv


def score_rows(summary: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**base, "n_archs": summary["n_archs"], "score_seconds": summary["score_seconds_total"]}]


@register_section("score", rows=score_rows)
def score_section(frame: pd.DataFrame, out_dir: Path) -> list[str]:
    table = aggregate(frame, ["group"], ["n_archs", "score_seconds"])
    write_csv(table, out_dir / "score_summary.csv")
    return ["## Scoring runs (no benchmark)", "", markdown(table), ""]
