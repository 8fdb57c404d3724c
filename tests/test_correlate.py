"""task=correlate end to end on the embedded default, crash safety, caching and determinism."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ntkexp.main import run

from .conftest import QUIET, TINY, cli, cli_started, make_cfg, shared


def test_correlate_writes_scores_summary_and_plot(tmp_path: Path) -> None:
    cfg = make_cfg(TINY + ["metric=ntk"], tmp_path)
    summary = run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    scores = pd.read_csv(run_dir / "scores.csv")
    assert len(scores) == 6 and {"arch", "index", "lga", "fnorm", "mean", "ncn", "accuracy", "flags"} <= set(scores)
    assert (run_dir / "scatter.png").stat().st_size > 1000
    saved = json.loads((run_dir / "summary.json").read_text())
    # the reported correlation is scipy's on the written table (lga: direction +1, all finite here)
    if np.isfinite(scores["lga"]).all():
        assert saved["correlations"]["lga"]["kendall_tau"] == pytest.approx(
            stats.kendalltau(scores["lga"], scores["accuracy"]).statistic)
    assert saved["conventions"]["ntk"]["bn_mode"] == "per_sample" and saved["conventions"]["ntk"]["batch_size"] == 8
    assert saved["versions"]["torch"] and summary["n_archs"] == 6


def test_scores_are_cached_and_independent_of_order(tmp_path: Path) -> None:
    first = run(make_cfg(TINY, tmp_path))
    again = run(make_cfg(TINY, tmp_path))
    assert first["n_computed"] == 6 and again["n_computed"] == 0 and again["n_cached"] == 6
    # a different sample containing some of the same archs gives those archs identical scores
    other_dir = tmp_path / "other"
    run(make_cfg(TINY[:1] + ["n_archs=9"] + TINY[1:], other_dir))
    a = pd.read_csv(tmp_path / "run" / "scores.csv").set_index("arch")["lga"]
    b = pd.read_csv(other_dir / "run" / "scores.csv").set_index("arch")["lga"]
    common = a.index.intersection(b.index)
    assert len(common) > 0 and np.array_equal(a[common].to_numpy(), b[common].to_numpy())


def test_same_config_is_bit_identical_without_cache(tmp_path: Path) -> None:
    a = run(make_cfg(TINY + ["use_cache=false"], tmp_path / "a"))
    b = run(make_cfg(TINY + ["use_cache=false"], tmp_path / "b"))
    sa = pd.read_csv(tmp_path / "a" / "run" / "scores.csv")
    sb = pd.read_csv(tmp_path / "b" / "run" / "scores.csv")
    assert np.array_equal(sa["lga"].to_numpy(), sb["lga"].to_numpy(), equal_nan=True)
    assert json.dumps(a["correlations"]) == json.dumps(b["correlations"])  # NaN-aware, bit for bit


def test_degenerate_archs_are_flagged_in_a_run(tmp_path: Path) -> None:
    """The all-'none' cell (no path from input to output) is scored, flagged and ranked, not dropped or crashed on."""
    none_arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    cfg = make_cfg(TINY + ["metric=ntk"], tmp_path)
    from omegaconf import open_dict

    others = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
              "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
              "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"]
    with open_dict(cfg):
        cfg.archs = [none_arch, *others]
    summary = run(cfg)
    scores = pd.read_csv(tmp_path / "run" / "scores.csv").set_index("arch")
    assert len(scores) == 4 and none_arch in scores.index
    assert isinstance(scores.at[none_arch, "flags"], str) and scores.at[none_arch, "flags"]
    assert all(not isinstance(scores.at[a, "flags"], str) or "error" not in scores.at[a, "flags"] for a in others)
    assert summary["correlations"]["lga"]["n"] == 4


def _rows(cache: Path) -> int:
    import sqlite3

    db = cache / "scores.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0])
    except sqlite3.Error:
        return 0


def _args(run_dir: Path, cache: Path, n: int) -> list[str]:
    return [f"n_archs={n}", *QUIET, f"hydra.run.dir={run_dir}", f"paths.cache_dir={cache}"]


@pytest.mark.slow
def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    n = 24
    ref_dir = tmp_path / "ref"
    assert cli(*_args(ref_dir, tmp_path / "cache_ref", n)).returncode == 0
    reference = pd.read_csv(ref_dir / "scores.csv")

    run_dir, cache = tmp_path / "killed", tmp_path / "cache_killed"
    for target in (3, 9):  # killed twice mid-way, once a few more archs are durably stored
        proc = cli_started(*_args(run_dir, cache, n))
        deadline = time.time() + 300
        while _rows(cache) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (run_dir / "scores.csv").exists()  # nothing looks finished
    done = cli(*_args(run_dir, cache, n))
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = pd.read_csv(run_dir / "scores.csv")
    cols = ["arch", "index", "lga", "accuracy", "flags"]
    pd.testing.assert_frame_equal(resumed[cols], reference[cols])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_cached"] > 0, done.stdout  # the kills did leave finished archs behind


def test_default_run_prints_kendall_and_spearman(tmp_path: Path) -> None:
    proc = cli("n_archs=5", "ntk.batch_size=8", f"hydra.run.dir={tmp_path}", f"paths.cache_dir={tmp_path}/cache",
               env={**os.environ, "WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr
    assert "kendall_tau=" in proc.stdout and "spearman_rho=" in proc.stdout
    assert (tmp_path / "wandb").is_dir()  # the offline W&B run is in the run directory


def test_real_nb201_cifar10_smoke(tmp_path: Path) -> None:
    """The real benchmark table and real CIFAR-10 images, on a cheap C=4, N=1 skeleton."""
    root = shared("")
    cfg = make_cfg(["search_space=nasbench201", "search_space.kwargs.C=4", "search_space.kwargs.N=1", "dataset=cifar10_npz",
                    f"paths.data_root={root}", "n_archs=5", "ntk.batch_size=8", "logger=csv", "task.progress=false",
                    "metric=ntk", "bn_mode=eval"], tmp_path)
    summary = run(cfg)
    assert summary["n_archs"] == 5 and "cifar10" in summary["accuracy_label"]


def test_progress_logs_lines_when_not_on_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    from ntkexp.scoring import Progress

    with caplog.at_level("INFO", logger="ntkexp"), Progress(25, "scoring", interactive=False) as bar:
        for _ in range(25):
            bar.step()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("scoring:")]
    assert len(lines) == 13  # every 2 items (a tenth of 25) and at the end
    assert lines[-1].startswith("scoring: 25/25 done") and "left" in lines[-1]
    caplog.clear()
    with caplog.at_level("INFO", logger="ntkexp"), Progress(2, "scoring", enabled=False) as bar:
        bar.step()
        bar.step()
    assert not caplog.records


def test_progress_estimates_time_left_from_computed_items_only(caplog: pytest.LogCaptureFixture) -> None:
    from ntkexp.scoring import Progress

    with caplog.at_level("INFO", logger="ntkexp"), Progress(10, "scoring", interactive=False) as bar:
        for _ in range(5):
            bar.step(cached=True)
        assert bar.eta() is None  # nothing computed yet: no estimate, not "0 s left"
        first = [r.getMessage() for r in caplog.records][-1]
        assert "0 s left" not in first and "from the cache" in first
        bar.computed_seconds = 0.0
        bar.step(cached=False)
        bar.computed_seconds = 2.0  # one computed item took 2 s: 4 items left take about 8 s
        assert bar.eta() == pytest.approx(8.0)


def test_progress_counts_only_the_items_that_may_cost_in_the_time_left(caplog: pytest.LogCaptureFixture) -> None:
    from ntkexp.scoring import Progress

    # a simulated search: 4 runs without a metric (free), then 6 metric-assisted runs
    with caplog.at_level("INFO", logger="ntkexp"), Progress(10, "simulated runs", interactive=False, costly=6) as bar:
        for _ in range(4):
            bar.step(free=True)
        assert bar.eta() is None and bar.computed == 0
        bar.every_s = 0.0  # a line at every step from here on
        bar.step(cached=False)
        bar.computed_seconds = 3.0  # the first assisted run took 3 s: 5 assisted runs left, not 5 + anything free
        assert bar.eta() == pytest.approx(15.0)
        bar.step(cached=True)  # an assisted run whose archs were all cached still counts as done
        assert bar.eta() == pytest.approx(12.0)
    last = [r.getMessage() for r in caplog.records][-1]
    assert "6/10 done (1 cached, 4 without cost)" in last and "about 12 s left" in last
    with pytest.raises(ValueError, match="costly"):
        Progress(3, "x", costly=4)


def test_archs_from_a_file_score_exactly_those_archs(tmp_path: Path) -> None:
    first = run(make_cfg(TINY, tmp_path / "sampled"))
    sampled = pd.read_csv(tmp_path / "sampled" / "run" / "scores.csv")
    listing = tmp_path / "archs.txt"
    listing.write_text("# three of the sampled archs\n" + "\n".join(sampled["arch"][:3]) + "\n\n")
    again = run(make_cfg(TINY + [f"archs_file={listing}"], tmp_path / "listed"))
    listed = pd.read_csv(tmp_path / "listed" / "run" / "scores.csv")
    assert listed["arch"].tolist() == sampled["arch"][:3].tolist()
    assert listed["lga"].tolist() == sampled["lga"][:3].tolist() and again["n_archs"] == 3  # recomputed, same bits
    assert first["n_archs"] == 6
    with pytest.raises(FileNotFoundError, match="archs_file"):
        run(make_cfg(TINY + [f"archs_file={tmp_path / 'missing.txt'}"], tmp_path / "missing"))
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="lists no archs"):
        run(make_cfg(TINY + [f"archs_file={tmp_path / 'empty.txt'}"], tmp_path / "empty"))


def test_a_correlation_over_a_handful_of_archs_is_printed_with_a_small_sample_note() -> None:
    from .conftest import TINY, cli

    proc = cli(*[a for a in TINY if not a.startswith("n_archs")], "n_archs=3", "metric=fnorm", "logger=none")
    assert proc.returncode == 0, proc.stderr
    assert "note: only 3 archs" in proc.stdout and "p-values: fnorm" in proc.stdout
    many = cli(*TINY, "metric=fnorm", "logger=none", "n_archs=12")
    assert "note: only" not in many.stdout
