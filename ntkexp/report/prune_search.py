"""``task=prune_search`` in a sweep report: the accuracy of the pruned arch per metric and data set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ntkexp.report.base import register_section
from ntkexp.tables import aggregate, markdown


def prune_rows(summary: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**base, "metric": summary["metric"], "dataset": dataset, "found": acc,
             "best": summary["benchmark_best_accuracy"][dataset], "score_seconds": summary["cost"]["score_seconds"]}
            for dataset, acc in summary["found"]["accuracy"].items()]


@register_section("prune_search", rows=prune_rows)
def prune_section(frame: pd.DataFrame, out_dir: Path) -> list[str]:
    table = aggregate(frame, ["group", "metric", "dataset"], ["found", "best", "score_seconds"])
    table.to_csv(out_dir / "prune_search_summary.csv", index=False)
    return ["## Pruning searches (test accuracy %, mean, std and n over seeds)", "", markdown(table), ""]
