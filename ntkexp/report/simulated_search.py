"""``task=simulated_search`` in a sweep report: each method's mean accuracy per group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ntkexp.report.base import register_section
from ntkexp.tables import aggregate, markdown, write_csv


def simulated_rows(summary: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**base, "method": method, **{k: v for k, v in values.items() if k.endswith("_mean")}}
            for method, values in summary["results"].items()]


@register_section("simulated_search", rows=simulated_rows)
def simulated_section(frame: pd.DataFrame, out_dir: Path) -> list[str]:
    columns = [c for c in frame.columns if c.endswith("_mean")]
    table = aggregate(frame, ["group", "method"], columns)
    write_csv(table, out_dir / "simulated_search_summary.csv")
    return ["## Simulated searches (mean accuracy %, mean over jobs)", "", markdown(table, 2), ""]
