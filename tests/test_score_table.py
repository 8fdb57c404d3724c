"""Precomputed score tables (issue 42 item 3's table, usable on any machine): a run's scores exported with their
conventions, read back by a run under the same conventions instead of computing (equal values, nothing computed),
refused in one line under other conventions, archs the table lacks computed as usual."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ntkexp.main import run
from ntkexp.scoring.table import ScoreTable, export
from tests.conftest import QUIET, cli, make_cfg, python

ARCHS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
         "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"]
SMALL = [*QUIET, "search_space.kwargs.C=4", "search_space.kwargs.N=1"]


def _correlate(tmp_path: Path, name: str, archs: list[str], *extra: str) -> pd.DataFrame:
    listed = "archs=[" + ",".join(f"'{a}'" for a in archs) + "]"
    cfg = make_cfg([*SMALL, listed, f"paths.cache_dir={tmp_path / name / 'cache'}", *extra], tmp_path / name)
    run(cfg)
    return pd.read_csv(tmp_path / name / "run" / "scores.csv")


def test_a_run_under_the_tables_conventions_reads_it_and_computes_only_what_it_lacks(tmp_path: Path) -> None:
    first = _correlate(tmp_path, "a", ARCHS[:2])
    table_path = export(tmp_path / "t.npz", [tmp_path / "a" / "run"])
    table = ScoreTable.load(table_path)
    assert set(table.metrics) == {"lga", "fnorm", "mean", "ncn"} and len(table.frame) == 2
    again = _correlate(tmp_path, "b", ARCHS, f"score_table={table_path}", "use_cache=false")
    by_arch = again.set_index("arch")
    for _, row in first.iterrows():  # the table's archs: its values, read, not computed
        assert by_arch.loc[row["arch"], "cached"]
        for m in ("lga", "fnorm", "mean", "ncn"):
            assert by_arch.loc[row["arch"], m] == pytest.approx(row[m], rel=0, abs=0, nan_ok=True)
    assert not by_arch.loc[ARCHS[2], "cached"]  # not in the table: computed
    summary = json.loads((tmp_path / "b" / "run" / "summary.json").read_text())
    assert summary["n_cached"] == 2 and summary["n_computed"] == 1
    assert summary["score_table"]["archs_read"] == 2 and summary["score_table"]["path"] == str(table_path)
    assert "run:" in summary["score_table"]["provenance"]  # the run folder it was exported from, and what ran


def test_other_conventions_are_refused_in_one_line_naming_them(tmp_path: Path) -> None:
    _correlate(tmp_path, "a", ARCHS[:2])
    table_path = export(tmp_path / "t.npz", [tmp_path / "a" / "run"])
    listed = "archs=[" + ",".join(f"'{a}'" for a in ARCHS[:2]) + "]"
    proc = cli(*SMALL, listed, "ntk.batch_size=16", f"score_table={table_path}", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert "was computed under other conventions" in proc.stderr and "ntk.batch_size: run 16, table 8" in proc.stderr
    seeded = cli(*SMALL, listed, "seed=3", f"score_table={table_path}", f"hydra.run.dir={tmp_path / 's'}")
    assert seeded.returncode == 2 and "seed: run 3, table 0" in seeded.stderr
    # export refuses runs under different conventions and a run of trained scores
    _correlate(tmp_path, "c", ARCHS[:2], "ntk.batch_size=16")
    with pytest.raises(ValueError, match="ntk.batch_size"):
        export(tmp_path / "u.npz", [tmp_path / "a" / "run", tmp_path / "c" / "run"])
    bad = python("-m", "ntkexp.scoring", "export-table", str(tmp_path / "v.npz"), str(tmp_path / "nothing"))
    assert bad.returncode == 2 and "is not a finished task=correlate or task=score run" in bad.stderr
