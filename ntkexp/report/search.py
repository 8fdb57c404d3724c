"""``task=search`` in a sweep report: the accuracy found, the oracle's and a random arch's, and the cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ntkexp.report.base import register_section
from ntkexp.tables import aggregate, markdown


def search_rows(summary: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**base, "algorithm": summary["algorithm"], "metric": summary["metric"], "dataset": dataset,
             "found": acc, "oracle": summary["oracle"]["accuracy"][dataset],
             "random": summary["random_arch_mean_accuracy"][dataset], "searched_on": summary["dataset_key"],
             "score_seconds": summary["found"]["score_seconds"], "evaluations": summary["found"]["evaluations"],
             "speedup_over_training": summary.get("cost", {}).get("speedup_over_training")}
            for dataset, acc in summary["found"]["accuracy"].items()]


@register_section("search", rows=search_rows)
def search_section(frame: pd.DataFrame, out_dir: Path) -> list[str]:
    table = aggregate(frame, ["group", "algorithm", "metric", "dataset"],
                      ["found", "oracle", "random", "score_seconds", "evaluations"])
    table.to_csv(out_dir / "search_summary.csv", index=False)
    return ["## Search results (test accuracy %, mean, std and n over seeds)", "", markdown(table), ""]
