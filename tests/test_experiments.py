"""Every experiment config runs at tiny scale on the tests' fixture benchmark, and the report rebuilds its table/figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ntkexp.report import write_report

from .conftest import CONF, DIGITS, ROOT

EMBEDDED = [*DIGITS, "dataset=digits", "ntk.batch_size=8", "logger=csv", "task.progress=false",
            "threads=1"]
TINY_TRAIN = ["dataset.train_subset=128", "dataset.batch_size=64"]
# sweep values given on the command line replace the experiment's (full-scale) sweeper params
CASES = {
    "benchmarks_at_init": (["n_archs=6"], 3, "correlate",
                           {"group": {"bn_mode=train", "bn_mode=per_sample", "bn_mode=eval"}}),
    "deciles": (["task.decile=1,10", "seed=0,1", "n_archs=5"], 4, "correlate",
                {"group": {"task.decile=1", "task.decile=10"}}),
    "init_sensitivity": (["n_archs=6"], 4, "correlate",
                         {"group": {f"init={i}" for i in ("default", "xavier", "kaiming", "gaussian")}}),
    "lga_after_training": (["n_archs=4", "task.track_epochs=[0,1]", *TINY_TRAIN], 1, "kernel_evolution",
                           {"epoch": {0, 1}}),
    "search_table": (["search_algo=random,rea", "metric.train_epochs=1", "dataset=digits", "seed=0",
                      "search_algo.budget_evals=3", *TINY_TRAIN], 2, "search", {"algorithm": {"random", "rea"}}),
}


def test_every_experiment_is_covered() -> None:
    assert {p.stem for p in (CONF / "experiment").glob("*.yaml")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_experiment_runs_tiny_and_reports(tmp_path: Path, name: str) -> None:
    overrides, n_jobs, task, expected = CASES[name]
    sweep = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "run.py", f"experiment={name}", *EMBEDDED, *overrides,
                           f"hydra.sweep.dir={sweep}", f"paths.cache_dir={tmp_path / 'cache'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(sweep.rglob("summary.json"))) == n_jobs
    report = write_report(sweep, tmp_path / "report", title=name)
    text = report.read_text()
    summary = pd.read_csv(tmp_path / "report" / f"{task}_summary.csv")
    for column, values in expected.items():
        assert set(summary[column]) == values, (column, set(summary[column]))
    assert "|" in text
    if task == "correlate":
        assert {"lga", "fnorm", "mean", "ncn"} <= set(summary["metric"])
        assert (tmp_path / "report" / "correlate_kendall.png").stat().st_size > 1000
        if name == "deciles":
            assert (tmp_path / "report" / "correlate_box.png").stat().st_size > 1000
            assert set(summary["kendall_tau_n"]) == {2}  # two seeds per decile
    if task == "kernel_evolution":
        assert (tmp_path / "report" / "kernel_evolution_tau.png").stat().st_size > 1000
