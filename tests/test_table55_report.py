"""GradSign's Table 5.5 block, generated from simulated-search runs: a cell is marked only beyond 2 standard errors
of its difference from the paper, with the departures that can explain it; GradSign's help is stated only beyond 2
standard errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ntkexp.report import table55
from tests.conftest import python


def fake_run(folder: Path, rows: dict[str, tuple[float, float]], n: int = 100, published: dict | None = None) -> Path:
    rng = np.random.default_rng(0)
    records = []
    for method, (mean, std) in rows.items():
        values = rng.normal(0, 1, n)
        values = mean + std * (values - values.mean()) / values.std(ddof=1)  # exactly this mean and std
        records += [{"method": method, "run": i, "cifar10_test": v, "evaluations": 100} for i, v in enumerate(values)]
    folder.mkdir(parents=True)
    pd.DataFrame(records).to_csv(folder / "runs.csv", index=False)
    summary = {"metric": "gradsign", "a_rea_metric": "naswot",
               "clock": {"answer": "the mean of the seeds' 12-epoch validation accuracies (the table has no per-seed "
                                   "values)", "charge": "12 epochs of training"},
               "config": {"search_space": {"kwargs": {"C": 8, "N": 1}}, "ntk": {"batch_size": 32},
                          "search_algo": {"lr": 0.5, "bohb_model": "kde", "pool_size": 10},
                          "task": {"simulated": {"budget_seconds": 12000, "dataset": "cifar10",
                                                 "published": published or {}}}}}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_only_cells_beyond_two_standard_errors_are_marked_with_their_departures(tmp_path: Path) -> None:
    published = {"RS": {"cifar10_test": 93.72, "cifar10_test_std": 0.38},
                 "G-RS": {"cifar10_test": 94.02, "cifar10_test_std": 0.21}}
    # RS: 0.03 below the paper (0.7 SE); G-RS: 0.30 above (about 11 SE)
    run = fake_run(tmp_path / "run", {"RS": (93.69, 0.40), "G-RS": (94.32, 0.25)}, published=published)
    text = table55.section([run])
    rs_row = next(line for line in text.splitlines() if line.startswith("| RS |"))
    grs_row = next(line for line in text.splitlines() if line.startswith("| G-RS |"))
    assert "✱" not in rs_row and "✱" in grs_row
    flagged = text.split("**Cells beyond 2 standard errors**")[1]
    assert "**G-RS, C-10 test**" in flagged and "**RS, C-10 test**" not in flagged
    assert "C8N1 skeleton at batch 32" in flagged and "seed mean" in flagged
    assert "G-RS against RS: C-10 test +0.63" in text and "(gain)" in text


def test_gradsign_help_within_two_standard_errors_is_not_a_claim(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", {"REA": (93.90, 0.5), "G-REA": (93.95, 0.5)})
    text = table55.section([run])
    line = next(line for line in text.splitlines() if line.startswith("- G-REA against REA"))
    assert "(not resolved)" in line and "(gain)" not in line and "(loss)" not in line


def test_each_method_comes_from_the_folder_with_most_runs_and_the_block_replaces_itself(tmp_path: Path) -> None:
    few = fake_run(tmp_path / "few", {"RS": (90.0, 0.4)}, n=20)
    many = fake_run(tmp_path / "many", {"RS": (93.0, 0.4), "REA": (93.5, 0.4)}, n=500)
    frame, _ = table55.load_runs([few, many])
    assert len(frame[frame.method == "RS"]) == 500
    begin, end = table55.markers(table55.BLOCK)
    doc = tmp_path / "RESULTS.md"
    doc.write_text(f"# x\n{begin}\nold\n{end}\n# y\n")
    for _ in range(2):
        proc = python("scripts/report_table55.py", str(few), str(many), "--results", str(doc))
        assert proc.returncode == 0, proc.stderr
    text = doc.read_text()
    assert text.startswith("# x\n" + begin) and text.endswith(end + "\n# y\n") and "old" not in text
    assert "| RS | 500 |" in text
