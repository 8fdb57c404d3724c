"""The cache keyed by the data's content, converted tables refreshed and complete,
sweeps that survive a failing job, one-line errors, arch selection, W&B fallbacks, file modes, progress, clusters."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ntkexp.benchmarks import BenchmarkConfig, load_ground_truth
from ntkexp.benchmarks.groundtruth import read_table
from ntkexp.io import resolve_path
from ntkexp.main import run

from .conftest import DIGITS_TABLE, QUIET, TINY, cli, make_cfg, python


def _cli(tmp_path: Path, *args: str, sweep: bool = False, env: dict[str, str] | None = None,
         timeout: int = 600) -> subprocess.CompletedProcess[str]:
    where = f"hydra.sweep.dir={tmp_path / 'sweep'}" if sweep else f"hydra.run.dir={tmp_path / 'run'}"
    return cli(*(["--multirun"] if sweep else []), where, f"paths.cache_dir={tmp_path / 'cache'}", *args,
               timeout=timeout, env={**os.environ, **(env or {})})


# ------------------------------------------------------------------------------------------------ 1. cache by content
def _probe_copy(path: Path, shift: int) -> None:
    arrays = dict(np.load(resolve_path("pkg://cifar10_probe.npz")))
    for key in ("train_x", "test_x"):
        arrays[key] = np.roll(arrays[key], shift, axis=0)  # other images (and labels) at the same positions
    for key in ("train_y", "test_y"):
        arrays[key] = np.roll(arrays[key], shift, axis=0)
    np.savez(path, **arrays)


def _shared_cache(args: list[str], run_dir: Path, cache: Path):  # type: ignore[no-untyped-def]
    from omegaconf import open_dict

    cfg = make_cfg(args, run_dir)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache)
    return cfg


def test_the_score_cache_follows_the_data_file_content(tmp_path: Path) -> None:
    data, cache = tmp_path / "probe.npz", tmp_path / "cache"
    args = TINY + ["metric=ntk", f"dataset.path={data}"]
    _probe_copy(data, 0)
    first = run(_shared_cache(args, tmp_path / "a", cache))
    _probe_copy(data, 137)  # the same file name, other images
    second = run(_shared_cache(args, tmp_path / "b", cache))
    assert first["n_computed"] == 6 and second["n_cached"] == 0 and second["n_computed"] == 6
    a = pd.read_csv(tmp_path / "a" / "run" / "scores.csv")
    b = pd.read_csv(tmp_path / "b" / "run" / "scores.csv")
    assert list(a["arch"]) == list(b["arch"]) and not np.allclose(a["lga"], b["lga"], equal_nan=True)
    assert first["conventions"]["dataset"]["probe_data"] != second["conventions"]["dataset"]["probe_data"]
    _probe_copy(data, 0)  # back to the first file: its scores come from the cache, unchanged
    third = run(_shared_cache(args, tmp_path / "c", cache))
    assert third["n_cached"] == 6
    assert np.array_equal(pd.read_csv(tmp_path / "c" / "run" / "scores.csv")["lga"], a["lga"], equal_nan=True)


# --------------------------------------------------------------------------------- 2, 3. tables refreshed and complete
def _darts_csv(path: Path, rows: int) -> None:
    geno = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
            "('skip_connect', 0), ('dil_conv_3x3', {k}), ('skip_connect', 0), ('skip_connect', 1)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
    lines = [f'"{geno.format(k=k % 4)}",{50 + k}' for k in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def test_a_converted_table_is_converted_again_when_its_source_changes(tmp_path: Path) -> None:
    source, table = tmp_path / "src.csv", tmp_path / "cache" / "table.csv"
    cfg = BenchmarkConfig(table=str(table), source=str(source), source_format="darts_csv")
    _darts_csv(source, 2)  # a truncated source: two of four archs
    assert len(load_ground_truth(cfg)) == 2
    assert json.loads(table.with_name("table.csv.source.json").read_text())["source"]["size"] == source.stat().st_size
    _darts_csv(source, 4)  # the complete source
    gt = load_ground_truth(cfg)
    assert len(gt) == 4 and gt.provenance()["converted_from"]["path"] == str(source.resolve())
    source.unlink()  # a data root that does not exist: the frozen table is not used blindly
    with pytest.raises(FileNotFoundError, match="was converted from"):
        load_ground_truth(cfg)
    assert len(load_ground_truth(BenchmarkConfig(table=str(table)))) == 4  # as it is, when asked for


def test_an_incomplete_table_is_refused_unless_allowed(tmp_path: Path) -> None:
    full = read_table(resolve_path("pkg://nb201.npz"))
    half = tmp_path / "half.csv"
    full.head(7812).to_csv(half, index=False)
    cfg = BenchmarkConfig(table=str(half), expected_rows=15625)
    with pytest.raises(ValueError, match="7,812 archs but the benchmark has 15,625"):
        load_ground_truth(cfg)
    cfg.allow_incomplete = True
    assert len(load_ground_truth(cfg)) == 7812
    summary = run(make_cfg(TINY + [f"search_space.benchmark.table={half}",
                                   "search_space.benchmark.allow_incomplete=true"], tmp_path))
    assert summary["ground_truth"]["rows"] == 7812 and summary["ground_truth"]["expected_rows"] == 15625
    assert summary["ground_truth"]["path"] == str(half)


# ---------------------------------------------------------------------------------------------- 4. sweeps
@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]])
def test_a_sweep_runs_every_job_and_lists_the_failed_ones(tmp_path: Path, launcher: list[str]) -> None:
    proc = _cli(tmp_path, *launcher, "n_archs=0,5", *QUIET, sweep=True)
    assert proc.returncode == 1
    sweep = tmp_path / "sweep"
    assert "1 of 2 sweep jobs failed" in proc.stderr and str(sweep / "0") in proc.stderr
    assert "n_archs=0" in (sweep / "0" / "FAILED").read_text()
    assert "n_archs=0" in (sweep / "0" / "run.log").read_text()  # the error line is in the job's log too
    assert (sweep / "1" / "summary.json").exists() and not (sweep / "1" / "FAILED").exists()


def test_a_cluster_launcher_sweep_gives_the_basic_launchers_results(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    basic = _cli(tmp_path / "basic", "n_archs=4,5", *QUIET, sweep=True)
    local = _cli(tmp_path / "local", "hydra/launcher=submitit_local", "n_archs=4,5", *QUIET, sweep=True)
    assert basic.returncode == 0 and local.returncode == 0, local.stderr[-2000:]
    for job in ("0", "1"):
        a = pd.read_csv(tmp_path / "basic" / "sweep" / job / "scores.csv")
        b = pd.read_csv(tmp_path / "local" / "sweep" / job / "scores.csv")
        pd.testing.assert_frame_equal(a.drop(columns=["seconds", "cached"]), b.drop(columns=["seconds", "cached"]))


# --------------------------------------------------------------------------------------------- 5. one line
def test_bad_values_end_in_one_line_naming_them(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    binary = tmp_path / "archs.bin"
    binary.write_bytes(bytes(range(256)))
    cases = {
        "device=foo": "device",
        "threads=-1": "threads",
        "seed=-1": "seed",
        f"paths.cache_dir={blocker}/cache": str(blocker),
        f"archs_file={binary}": str(binary),
        f"archs_file={tmp_path}": "is a directory",
        "+foo=1": "foo",
    }
    for arg, named in cases.items():
        proc = _cli(tmp_path / arg.split("=")[0].strip("+"), arg, "logger=none", "n_archs=3", timeout=300)
        assert proc.returncode == 2, (arg, proc.stderr[-1500:])
        assert proc.stderr.startswith("ntkexp: error:") and proc.stderr.count("\n") == 1, (arg, proc.stderr)
        assert named in proc.stderr and "Traceback" not in proc.stderr, (arg, proc.stderr)


def test_the_report_on_an_empty_directory_is_one_line(tmp_path: Path) -> None:
    proc = python("scripts/report.py", str(tmp_path), timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip().startswith("ntkexp-report: error: no job summaries")
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------------------------- 6. arch selection
def test_arch_selection_refuses_what_it_cannot_rank(tmp_path: Path) -> None:
    table = read_table(resolve_path("pkg://nb201.npz"))
    one, two = table["arch_str"].iloc[0], table["arch_str"].iloc[1]
    with pytest.raises(ValueError, match=r"archs=\[\] names no arch"):
        run(make_cfg(TINY + ["archs=[]"], tmp_path / "empty"))
    with pytest.raises(ValueError, match="needs at least 2 archs"):
        run(make_cfg(TINY + [f"archs=[\"{one}\"]"], tmp_path / "single"))
    summary = run(make_cfg(TINY + [f"archs=[\"{one}\",\"{two}\",\"{one}\",\"{two}\",\"{one}\"]"], tmp_path / "dup"))
    assert summary["n_archs"] == 2  # each arch scored and counted once
    assert len(pd.read_csv(tmp_path / "dup" / "run" / "scores.csv")) == 2


def test_search_says_that_it_does_not_use_n_archs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="ntkexp"):
        run(make_cfg(TINY + ["task=search", "search_algo.budget_evals=3", "n_archs=40"], tmp_path))
    assert any("n_archs is not used" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="draws its own archs"):
        run(make_cfg(TINY + ["task=search", f"archs_file={DIGITS_TABLE}"], tmp_path / "b"))


# --------------------------------------------------------------------------------------------- 7. W&B
def test_wandb_with_a_key_but_no_network_logs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    from ntkexp.loggers import LoggerConfig, WandbLogger, build_logger

    original, modes = wandb.init, []

    def init(*args, **kwargs):  # type: ignore[no-untyped-def]
        modes.append(kwargs.get("mode"))
        if kwargs.get("mode") == "online":
            raise wandb.errors.CommError("timed out (no network)")
        return original(*args, **kwargs)

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    logger = build_logger(LoggerConfig(mode="online"), tmp_path, {}, "no-network")
    assert isinstance(logger, WandbLogger) and modes == ["online", "offline"]
    logger.log_summary({"a": 1.0})
    logger.finish()
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def _wandb_runs(run_dir: Path) -> list[Path]:
    return list((run_dir / "wandb").glob("offline-run-*")) if (run_dir / "wandb").exists() else []


def test_logger_mode_on_the_command_line_takes_effect(tmp_path: Path) -> None:
    env = {"WANDB_MODE": ""}  # an empty variable counts as unset
    off = _cli(tmp_path / "off", "logger.mode=offline", "n_archs=3", "ntk.batch_size=8", env=env)
    assert off.returncode == 0 and _wandb_runs(tmp_path / "off" / "run")
    dis = _cli(tmp_path / "dis", "logger.mode=disabled", "n_archs=3", "ntk.batch_size=8", env=env)
    assert dis.returncode == 0 and not (tmp_path / "dis" / "run" / "wandb").exists()
    assert (tmp_path / "dis" / "run" / "summary.json").exists()


def test_a_failed_run_is_not_a_success_in_wandb(tmp_path: Path) -> None:
    proc = _cli(tmp_path / "bad", "n_archs=0", env={"WANDB_MODE": "offline"})
    assert proc.returncode == 2
    assert _wandb_runs(tmp_path / "bad" / "run") == []  # a refused config leaves no (failed) dashboard run
    good = _cli(tmp_path / "good", "n_archs=2", "ntk.batch_size=8", env={"WANDB_MODE": "offline"})
    assert good.returncode == 0
    (ok,) = _wandb_runs(tmp_path / "good" / "run")
    assert "got exitcode: 0" in (ok / "logs" / "debug.log").read_text()


# --------------------------------------------------------------------------------------------- 8. file modes
def test_outputs_respect_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        run(make_cfg(TINY, tmp_path))
    finally:
        os.umask(old)
    for name in ("scores.csv", "summary.json", "scatter.png"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o644, name


def test_training_curves_go_to_the_runs_wandb_record(tmp_path: Path) -> None:
    from .conftest import DIGITS

    proc = _cli(tmp_path, *DIGITS, "metric=lga", "metric.train_epochs=1", "n_archs=2", "ntk.batch_size=8",
                "dataset.train_subset=256", env={"WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "run"
    curves = pd.read_csv(run_dir / "training_curves.csv")
    assert len(curves) == 2 * 2 and set(curves.columns) >= {"arch", "epoch", "step", "loss", "acc"}
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum("train/loss" in row for row in logged) == len(curves)
    (offline,) = _wandb_runs(run_dir)
    assert b"train/loss" in next(offline.glob("*.wandb")).read_bytes()  # the same W&B run as the results


def test_the_dashboard_run_of_a_refused_input_ends_with_the_processs_status(tmp_path, monkeypatch) -> None:
    """W&B said 'finished (failed, exit code 1)' while the process exited 2 for bad input."""
    import ntkexp.loggers
    from ntkexp.loggers import NullLogger
    from ntkexp.main import run

    codes: list[int] = []

    class Recording(NullLogger):
        def finish(self, exit_code: int = 0) -> None:
            codes.append(exit_code)

    monkeypatch.setattr(ntkexp.loggers, "build_logger", lambda cfg, run_dir, *a, **k: Recording(run_dir))
    with pytest.raises(ValueError):
        run(make_cfg(["n_archs=1", "logger=none"], tmp_path))
    assert codes == []  # refused before anything was logged: no dashboard run was created

    def refuse(summary: object) -> None:  # bad input found after the run has logged (its per-arch progress)
        raise ValueError("refused late")

    monkeypatch.setattr("ntkexp.tasks.correlate.print_table", refuse)
    with pytest.raises(ValueError, match="refused late"):
        run(make_cfg([*TINY, "n_archs=3", "logger=none"], tmp_path))
    assert codes == [2]
