"""Where a file lives is not what it holds: a full disk, a read-only or forbidden path is reported as such (never as
a damaged file, never with advice to delete a healthy cache), and the cache stays intact; SIGTERM unwinds a run as
Ctrl-C does; a genotype with an unquoted op says which."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from ntkexp.benchmarks import BenchmarkConfig, load_ground_truth
from ntkexp.data import load_arrays
from ntkexp.io import StorageError, write_json
from ntkexp.spaces.base import InvalidArchError
from ntkexp.spaces.nds import parse_genotype
from ntkexp.store import ScoreStore

from .conftest import TINY, cli, cli_started, make_cfg


def _fill_up(store: ScoreStore) -> None:
    """SQLite's own 'database or disk is full' (SQLITE_FULL), as a full disk gives it: no page may be added."""
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_cache_on_a_full_disk_says_full_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    store = ScoreStore(path)
    for i in range(5):
        store.put(f"k{i}", {"values": {"lga": i}})
    _fill_up(store)
    with pytest.raises(StorageError, match="the disk is full.*intact.*run the same command again") as info:
        store.put("big", {"values": {"x": "y" * 200_000}})
    assert "corrupt" not in str(info.value) and "delete" not in str(info.value)
    store.close()
    again = ScoreStore(path)  # every committed row is still there and the file is sound
    assert len(again) == 5 and again.get("k3") == {"values": {"lga": 3}}
    assert again._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_cache_that_cannot_be_opened_is_not_called_corrupt_but_a_damaged_one_is(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()  # SQLite: "unable to open database file"
    with pytest.raises(StorageError, match="cannot open the score cache .*cannot be opened") as info:
        ScoreStore(tmp_path / "dir.sqlite")
    assert "corrupt" not in str(info.value)
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database" * 200)
    with pytest.raises(ValueError, match="is corrupt"):
        ScoreStore(tmp_path / "junk.sqlite")


def test_a_full_disk_while_scoring_ends_the_run_in_one_line_with_the_cache_intact(tmp_path: Path,
                                                                                 monkeypatch, capsys) -> None:
    from ntkexp.cli import run_cli

    cfg = make_cfg([*TINY, "n_archs=4", "metric=fnorm"], tmp_path)
    real_put = ScoreStore.put
    puts = []

    def put(self: ScoreStore, key: str, value: dict) -> None:
        if len(puts) == 2:  # the disk fills after two archs: the third row (padded to need new pages) cannot land
            _fill_up(self)
            value = {**value, "pad": "x" * 100_000}
        puts.append(key)
        real_put(self, key, value)

    monkeypatch.setattr(ScoreStore, "put", put)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(cfg)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the disk is full" in err and "Traceback" not in err, err
    monkeypatch.setattr(ScoreStore, "put", real_put)
    cache = ScoreStore(Path(cfg.paths.cache_dir) / "scores.sqlite")
    assert len(cache) == 2  # the archs scored before the disk filled, whole; the run resumes from them


def test_a_full_disk_while_writing_results_names_the_file_and_keeps_the_old_one(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "summary.json"
    write_json(target, {"old": 1})

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(StorageError, match=f"cannot write {target}: the disk is full"):
        write_json(target, {"new": 2})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temporary file left


def test_permission_denied_is_not_called_truncated_or_corrupt(tmp_path: Path, monkeypatch) -> None:
    npz = tmp_path / "d.npz"
    np.savez(npz, train_x=np.zeros((2, 3, 4, 4), np.uint8), train_y=np.zeros(2), test_x=np.zeros((2, 3, 4, 4),
             np.uint8), test_y=np.zeros(2))
    table = tmp_path / "gt.csv"
    table.write_text("arch_str,cifar10\na,1\n")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(np, "load", forbidden)
    with pytest.raises(StorageError, match="cannot read .*d.npz: permission denied") as info:
        load_arrays("npz", path=npz)
    assert "corrupt" not in str(info.value)
    monkeypatch.setattr("pandas.read_csv", forbidden)
    with pytest.raises(StorageError, match="permission denied"):
        load_ground_truth(BenchmarkConfig(table=str(table)))


def test_a_damaged_user_table_is_not_said_to_rebuild_from_a_source_it_lacks(tmp_path: Path) -> None:
    table = tmp_path / "gt.parquet"
    table.write_bytes(b"PAR1 garbage")
    with pytest.raises(ValueError, match="truncated or corrupt") as info:
        load_ground_truth(BenchmarkConfig(table=str(table)))
    assert "rebuild it from the benchmark source" not in str(info.value) and "no benchmark source" in str(info.value)


def test_a_damaged_converted_table_is_converted_again_from_its_source(tmp_path: Path) -> None:
    geno = ("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('max_pool_3x3', 0), ('dil_conv_3x3', 2), "
            "('sep_conv_5x5', 1), ('avg_pool_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 3)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 0), ('avg_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('avg_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
    source = tmp_path / "archs.csv"
    source.write_text(f'"{geno}",80.0\n')
    cfg = BenchmarkConfig(table=str(tmp_path / "t.parquet"), source=str(source), source_format="darts_csv")
    assert len(load_ground_truth(cfg)) == 1
    (tmp_path / "t.parquet").write_bytes(b"PAR1 damaged")  # the converted table damaged; its source unchanged
    gt = load_ground_truth(cfg)
    assert len(gt) == 1 and gt.frame["cifar10_valid"].iloc[0] == 80.0


def test_an_unquoted_op_in_a_genotype_is_named() -> None:
    with pytest.raises(InvalidArchError, match=r"sep_conv_3x3 is not a literal \(an op name is quoted") as info:
        parse_genotype("Genotype(normal=[(sep_conv_3x3, 0), ('skip_connect', 1)], normal_concat=[2], "
                       "reduce=[('max_pool_3x3', 0), ('skip_connect', 1)], reduce_concat=[2])")
    assert "<ast." not in str(info.value)


def test_sigterm_unwinds_like_ctrl_c_and_finishes_the_wandb_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = cli_started("n_archs=300", "ntk.batch_size=8", "logger=wandb", f"paths.cache_dir={tmp_path / 'cache'}",
                       f"hydra.run.dir={run_dir}", "threads=1", env=env)
    cache = tmp_path / "cache" / "scores.sqlite"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # wait until a few archs are committed
        try:
            if cache.exists() and len(ScoreStore(cache)) >= 2:
                break
        except (sqlite3.Error, OSError, ValueError):
            pass
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    lines = err.strip().splitlines()
    assert lines[-1].startswith("ntkexp: terminated (SIGTERM); the score cache") and "Traceback" not in err
    log = (run_dir / "run.log").read_text()
    assert "finished (failed, exit code 1)" in log  # the W&B run was closed, marked failed


def test_a_full_disk_inside_an_archs_scoring_ends_the_run_instead_of_flagging_every_arch(tmp_path: Path, monkeypatch,
                                                                                      capsys) -> None:
    from ntkexp.cli import run_cli

    def full(*args: object, **kwargs: object) -> None:  # e.g. a training checkpoint written inside the computation
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ckpt.pt"))

    monkeypatch.setattr("ntkexp.scoring.scorer.compute_metrics", full)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(make_cfg([*TINY, "n_archs=3", "metric=fnorm"], tmp_path))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert f"cannot write {tmp_path / 'ckpt.pt'}: the disk is full" in err, err


def test_a_read_only_place_for_the_run_directory_is_one_line_naming_it(tmp_path: Path, monkeypatch, capsys) -> None:
    """(This machine runs tests as root, so the read-only file system is simulated where the directory is made.)"""
    from ntkexp.cli import run_cli

    cfg = make_cfg([*TINY], tmp_path)
    run_dir = Path(cfg.paths.output_dir)
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        if self == run_dir:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(cfg)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    assert f"cannot create the run directory {run_dir}: the file system is read-only" in err


def test_a_run_folder_held_by_a_live_run_is_refused_in_one_line(tmp_path: Path) -> None:
    """Two runs into one explicit hydra.run.dir would mix their files and run.log: the second is refused while the
    first lives, and the folder is free again once it has ended (a crashed holder releases it too)."""
    import subprocess
    import sys

    from ntkexp.main import RUN_LOCK

    run_dir = tmp_path / "same"
    run_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; h = open(sys.argv[1], 'a+'); fcntl.flock(h, fcntl.LOCK_EX); "
        "h.write(str(os.getpid())); h.flush(); print('held', flush=True); time.sleep(60)"), str(run_dir / RUN_LOCK)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = cli(*TINY, f"hydra.run.dir={run_dir}")
        assert proc.returncode == 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if "ntkexp: error" in line]
        assert len(lines) == 1 and "in use by another live run" in lines[0] and str(holder.pid) in lines[0]
        assert "Traceback" not in proc.stderr and not (run_dir / "scores.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    proc = cli(*TINY, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "scores.csv").exists()


def test_an_unreadable_cache_row_is_named_removed_and_recomputed(tmp_path: Path, caplog) -> None:
    store = ScoreStore(tmp_path / "scores.sqlite")
    store.put("k" * 40, {"a": 1})
    store._db.execute("UPDATE scores SET value = ? WHERE key = ?", ('{"a": 1,', "k" * 40))
    store._db.commit()
    with caplog.at_level("WARNING", logger="ntkexp"):
        assert store.get("k" * 40) is None
    assert "unreadable row" in caplog.text and str(tmp_path / "scores.sqlite") in caplog.text
    assert len(store) == 0  # removed, so the next run recomputes and stores it
    store.put("k" * 40, {"a": 2})
    assert store.get("k" * 40) == {"a": 2}


def test_a_cache_locked_by_another_process_says_it_is_waiting(tmp_path: Path, caplog, monkeypatch) -> None:
    import ntkexp.store

    monkeypatch.setattr(ntkexp.store, "LOCK_NOTICE", 0.1)
    path = tmp_path / "scores.sqlite"
    ScoreStore(path).close()
    other = sqlite3.connect(str(path))
    other.execute("BEGIN EXCLUSIVE")
    store = ScoreStore.__new__(ScoreStore)
    store.path, store._db = path, sqlite3.connect(str(path), timeout=0.1)
    monkeypatch.setattr(ntkexp.store, "LOCK_WAIT", 0.5)
    with caplog.at_level("WARNING", logger="ntkexp"), pytest.raises(StorageError, match="locked"):
        store.put("k", {"a": 1})
    assert "is locked by another process" in caplog.text and "waiting up to" in caplog.text
    other.rollback()
    store.put("k", {"a": 1})
    assert store.get("k") == {"a": 1}


def test_a_read_only_cache_folder_is_named_as_the_score_cache(tmp_path: Path, monkeypatch) -> None:
    def refuse(self, *args, **kwargs):  # the machine runs as root: simulate a read-only file system
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(StorageError, match=r"score cache's folder .* \(paths.cache_dir\).*read-only"):
        ScoreStore(tmp_path / "ro" / "scores.sqlite")


def test_a_run_folder_on_a_place_that_cannot_be_written_is_one_line(tmp_path: Path, monkeypatch) -> None:
    """hydra.run.dir on a read-only place ended in Hydra's OSError traceback: refused in one line first (the machine
    runs as root, so the read-only place is simulated)."""
    from ntkexp.cli import check_output_dirs

    readonly = tmp_path / "ro"
    readonly.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == readonly else real(p, mode))
    with pytest.raises(ValueError, match=r"hydra.run.dir=.*ro/deep/run: cannot create the run folder there: .*ro is "
                                         r"not writable"):
        check_output_dirs([f"hydra.run.dir={readonly / 'deep' / 'run'}"])
    check_output_dirs([f"hydra.run.dir={tmp_path / 'fine' / 'run'}"])  # a writable place passes
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_output_dirs([f"hydra.sweep.dir={tmp_path / 'file'}"])
