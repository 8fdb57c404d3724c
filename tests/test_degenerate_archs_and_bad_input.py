"""Degenerate archs, malformed input and damaged files, OOM retry, W&B failure, shared caches."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.errors import ConfigCompositionException, HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf.errors import OmegaConfBaseException

from ntkexp.benchmarks.groundtruth import read_table
from ntkexp.data import MissingFileError
from ntkexp.metrics import METRICS, MetricContext, compute_metrics
from ntkexp.ntk import NTKConfig, empirical_ntk
from ntkexp.ntk import engine as engine_module
from ntkexp.registry import UnknownNameError
from ntkexp.scoring import RunContext, choose_archs
from ntkexp.spaces import NASBench201

from .conftest import DIGITS_TABLE, QUIET, ROOT, TINY, cli, cli_started, make_cfg

CLEAN_ERRORS = (ValueError, KeyError, FileNotFoundError, MissingFileError, UnknownNameError, OmegaConfBaseException,
                ConfigCompositionException, HydraException, NotImplementedError)
DEGENERATE = {
    "all_none": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "all_skip": "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "all_pool": "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
}


@pytest.mark.parametrize("bn_mode", ["train", "eval"])
@pytest.mark.parametrize("kind", sorted(DEGENERATE))
def test_degenerate_archs_get_defined_flagged_scores_for_every_metric(kind: str, bn_mode: str) -> None:
    torch.manual_seed(0)
    net = NASBench201(C=4, N=1).build(DEGENERATE[kind], num_classes=10)
    x, xt = torch.randn(8, 3, 8, 8), torch.randn(8, 3, 8, 8)
    y = torch.arange(8) % 4
    ctx = MetricContext(net, x, y, 10, NTKConfig(bn_mode=bn_mode), x_test=xt, y_test=y.clone())
    values = compute_metrics(METRICS.names(), ctx)
    for name, value in values.items():
        assert np.isfinite(value) or np.isnan(value) or name in ("ncn", "cond"), (name, value)
        if not np.isfinite(value):
            assert f"nonfinite:{name}" in ctx.flags or "singular" in ctx.flags, (name, ctx.flags)
    if kind == "all_none":  # no gradient reaches the cells: a rank-deficient kernel, flagged
        assert {"singular", "zero_kernel"} & ctx.flags


def test_cuda_out_of_memory_retries_with_smaller_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine_module._jacobian
    seen: list[int | None] = []

    def flaky(model, x, cfg, chosen, rest, chunk, weights):  # type: ignore[no-untyped-def]
        seen.append(chunk)
        if chunk is None or chunk > 2:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real(model, x, cfg, chosen, rest, chunk, weights)

    torch.manual_seed(0)
    net = NASBench201(C=3, N=1).build(NASBench201().arch_of(3), num_classes=10)
    x = torch.randn(6, 3, 8, 8)
    expected = empirical_ntk(net, x, NTKConfig(chunk_size=8, dtype="float64")).kernel
    monkeypatch.setattr(engine_module, "_jacobian", flaky)
    got = empirical_ntk(net, x, NTKConfig(chunk_size=8, dtype="float64")).kernel
    assert seen == [8, 4, 2] and torch.allclose(got, expected, rtol=1e-12)


def test_wandb_failure_falls_back_to_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    from ntkexp.loggers import ExperimentLogger, LoggerConfig, WandbLogger, build_logger

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("no network")

    monkeypatch.setattr(wandb, "init", broken)
    logger = build_logger(LoggerConfig(name="wandb", mode="online"), tmp_path, {}, "x")
    assert type(logger) is ExperimentLogger and not isinstance(logger, WandbLogger)
    logger.log_summary({"a": 1.0})
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["a"] == 1.0


def _damaged_copies(tmp_path: Path) -> dict[str, list[str]]:
    table = pd.read_csv(DIGITS_TABLE)
    text = table.to_csv(index=False)
    (tmp_path / "cut.csv").write_text(text[: len(text) // 2])  # cut mid-row
    (tmp_path / "garbage.csv").write_bytes(b"\x00\x01\x02 not a table")
    (tmp_path / "empty.csv").write_text("arch_str,digits\n")
    np.savez(tmp_path / "good.npz", train_x=np.zeros((8, 8, 8, 1), np.uint8), train_y=np.zeros(8, np.int64),
             test_x=np.zeros((4, 8, 8, 1), np.uint8), test_y=np.zeros(4, np.int64))
    raw = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "scores.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 100)
    npz = ["dataset.kind=npz", "dataset.in_channels=1"]
    return {
        "cut table": [f"search_space.benchmark.table={tmp_path / 'cut.csv'}"],
        "garbage table": [f"search_space.benchmark.table={tmp_path / 'garbage.csv'}"],
        "empty table": [f"search_space.benchmark.table={tmp_path / 'empty.csv'}"],
        "cut npz": [*npz, f"dataset.path={tmp_path / 'cut.npz'}"],
        "missing npz": [*npz, f"dataset.path={tmp_path / 'nope.npz'}"],
        "corrupt cache": [f"paths.cache_dir={tmp_path / 'cache'}"],
    }


def test_damaged_files_give_one_clean_error(tmp_path: Path) -> None:
    from ntkexp.main import run

    for label, overrides in _damaged_copies(tmp_path).items():
        cfg = make_cfg(TINY + overrides, tmp_path / label.replace(" ", "_"))
        if label == "corrupt cache":
            from omegaconf import open_dict

            with open_dict(cfg):
                cfg.paths.cache_dir = str(tmp_path / "cache")
        with pytest.raises(CLEAN_ERRORS) as info:
            run(cfg)
        assert str(info.value), label
        assert not (Path(cfg.paths.output_dir) / "scores.csv").exists(), label


OVERRIDE_KEYS = ["n_archs", "seed", "ntk.batch_size", "ntk.reduction", "ntk.params", "ntk.dtype", "ntk.chunk_size",
                 "ntk.logit_index", "metric.names", "init.name", "init.std", "dataset.num_classes", "archs",
                 "metric", "bn_mode", "init", "search_space", "dataset", "task.decile", "metric.train_epochs"]
VALUES = st.one_of(st.integers(-3, 100), st.sampled_from(["", "x", "null", "[]", "[lga]", "[nope]", "train", "1.5",
                                                         "|none~0|", "float16", "cifar100", "-1", "[1,2]"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(OVERRIDE_KEYS), VALUES), min_size=1, max_size=3))
def test_fuzzed_overrides_are_accepted_or_refused_cleanly(tmp_path: Path, overrides: list[tuple[str, object]]) -> None:
    from ntkexp.cli import check_group_overrides

    from .conftest import CONF

    args = [f"{k}={v}" for k, v in overrides]
    try:
        check_group_overrides(args, CONF)  # what run.py does before Hydra composes
        cfg = make_cfg(TINY + args, tmp_path)
        ctx = RunContext.build(cfg)
        archs = choose_archs(ctx)
    except CLEAN_ERRORS:
        return
    # accepted: a run that can start, with at least two distinct valid archs of its space
    assert len(archs) >= 2 and len(set(archs)) == len(archs)
    assert all(ctx.space.validate(a) == a for a in archs)


def test_bad_arch_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    proc = cli('archs=["|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"]', "logger=none", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and "unknown op 'conv'" in proc.stderr and "Traceback" not in proc.stderr


def test_concurrent_jobs_share_one_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"

    def start(run_dir: Path) -> subprocess.Popen[str]:
        return cli_started("n_archs=12", *QUIET, f"hydra.run.dir={run_dir}", f"paths.cache_dir={cache}")

    procs = [start(tmp_path / "a"), start(tmp_path / "b")]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    a = pd.read_csv(tmp_path / "a" / "scores.csv")
    b = pd.read_csv(tmp_path / "b" / "scores.csv")
    pd.testing.assert_frame_equal(a[["arch", "lga"]], b[["arch", "lga"]])
    import sqlite3

    with sqlite3.connect(cache / "scores.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 12


def test_runs_started_together_keep_their_own_result_directories(tmp_path: Path) -> None:
    """Three runs started at once, each with the default run directory, leave three directories, each with its own
    seed's results."""
    procs = [cli_started("n_archs=3", "ntk.batch_size=4", "logger=csv", f"seed={seed}", "task.progress=false",
                         f"paths.cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
             for seed in (1, 2, 3)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    summaries = sorted((tmp_path / "outputs").rglob("summary.json"))
    assert len(summaries) == 3
    assert sorted(json.loads(p.read_text())["config"]["seed"] for p in summaries) == [1, 2, 3]


@pytest.mark.parametrize("task", ["search", "simulated_search", "correlate"])
def test_a_search_whose_guide_fails_on_every_arch_says_so_and_exits_non_zero(tmp_path: Path, task: str) -> None:
    """init.std=-1 makes every metric evaluation fail (the network cannot be initialised); the search must not print
    a "found" arch and exit 0, and every task says so in one line (no traceback) with exit status 1."""
    extra = (["task=search", "search_algo.budget_evals=4"] if task == "search" else
             ["task=simulated_search", "task.simulated.runs=1", "task.simulated.methods=[G-RS]",
              "task.simulated.budget_train_seconds=3000", "search_space.kwargs.C=4"] if task == "simulated_search" else
             ["n_archs=3"])
    proc = cli(*extra, "init=gaussian", "init.std=-1", "ntk.batch_size=4", "logger=csv", "task.progress=false",
               f"hydra.run.dir={tmp_path / 'run'}", f"paths.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "failed" in proc.stderr and "found:" not in proc.stdout
    assert proc.stderr.strip().splitlines()[-1].startswith("ntkexp: error:")


def test_a_run_into_a_directory_with_an_earlier_runs_results_clears_them_first(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = ["n_archs=3", "ntk.batch_size=4", "logger=csv", "task.progress=false", f"hydra.run.dir={run_dir}",
            f"paths.cache_dir={tmp_path / 'cache'}"]
    assert cli(*args).returncode == 0
    (run_dir / "search_curve.csv").write_text("from another task\n")  # a table the next run does not write
    (run_dir / "notes.txt").write_text("mine\n")
    assert cli(*args).returncode == 0
    assert not (run_dir / "search_curve.csv").exists() and (run_dir / "notes.txt").exists()
    assert (run_dir / "summary.json").exists()
    # a rerun that fails leaves no complete-looking results of the earlier one
    failed = cli(*args, "init.name=nope")
    assert failed.returncode != 0
    assert not (run_dir / "summary.json").exists() and not (run_dir / "scores.csv").exists()


@pytest.mark.parametrize("override, message", [
    ("seed=123456789012345678901", "must be between 0 and 2\\*\\*63 - 1"),
    ("paths.cache_dir=README.md", "is, or lies under, a file: point paths.cache_dir at a directory"),
    ("device=mps", "device=mps is not supported \\(ntkexp runs on cpu and cuda\\)"),
    ("search_space.kwargs.C=abc", "have a value of the wrong type for the nasbench201 space"),
])
def test_bad_settings_are_refused_in_one_clear_line(tmp_path: Path, override: str, message: str) -> None:
    """Each of these once ended in an unclear message ('Overflow when unpacking long long', 'File exists') or a
    traceback; the one-line error names the setting and what to do."""
    proc = cli("n_archs=2", "logger=none", override, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert re.search(message, proc.stderr), proc.stderr[-2000:]


def test_a_cached_score_reports_its_own_metrics_flags_and_keeps_each_computations_seconds(tmp_path: Path) -> None:
    """A metric=synflow score reports the same flags whether it was computed alone or read from a row that another
    metric (here one that is always undefined, so always flagged) filled too; a later computation of other metrics
    adds its seconds to the row instead of overwriting the first one's."""
    from ntkexp.metrics import expand, register_metric
    from ntkexp.scoring import ArchScorer

    register_metric("undefined_test", direction=1, needs=())(lambda ctx: float("nan"))
    arch = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
    small = ["search_space.kwargs.C=4", "search_space.kwargs.N=1", "ntk.batch_size=4", "device=cpu"]

    def scorer(where: str, names: list[str]) -> ArchScorer:
        ctx = RunContext.build(make_cfg(small, tmp_path / where))
        return ArchScorer(ctx, expand(names))

    alone = scorer("alone", ["synflow"]).score(arch)
    joint = scorer("shared", ["undefined_test", "synflow"]).score(arch)
    assert "nonfinite:undefined_test" in joint.flags  # the other metric's flag, raised in the joint computation
    read = scorer("shared", ["synflow"]).score(arch)
    assert read.cached and read.flags == alone.flags and "nonfinite:undefined_test" not in read.flags
    first = scorer("partial", ["synflow"]).score(arch)
    scorer("partial", ["fnorm"]).score(arch)  # fills the same row with another metric
    again = scorer("partial", ["synflow"]).score(arch)
    assert again.cached and again.seconds == first.seconds


def test_archs_without_a_path_from_input_to_output_are_flagged_by_every_metric(tmp_path: Path) -> None:
    """The structural check agrees with the benchmark: exactly its 341 archs at chance accuracy (10 %) have no path
    from input to output. Such an arch gets NaN (undefined: ranks worst) and the flag no_input_path from every
    metric, ntk_mse, S_G and S_E included (which once ranked them first), and a live arch does not."""

    from ntkexp.metrics import expand
    from ntkexp.scoring import ArchScorer

    table = read_table(ROOT / "ntkexp" / "resources" / "nb201.npz")
    space = NASBench201()
    dead = table["arch_str"].map(lambda a: not space.has_input_path(a))
    assert dead.sum() == 341 and set(table.loc[dead, "cifar10"].round(1)) == {10.0}
    assert (table.loc[~dead, "cifar10"] > 11).all()
    names = ["ntk_mse", "s_g", "s_e", "fnorm", "synflow"]
    ctx = RunContext.build(make_cfg(["search_space.kwargs.C=4", "search_space.kwargs.N=1", "ntk.batch_size=4",
                                     "device=cpu", f"metric.names=[{','.join(names)}]"], tmp_path))
    scorer = ArchScorer(ctx, expand(names))
    record = scorer.score(table.loc[dead, "arch_str"].iloc[0])
    assert all(np.isnan(v) for v in record.values.values()) and record.flags == ["no_input_path"]
    live = scorer.score(table.loc[~dead, "arch_str"].iloc[0])
    assert "no_input_path" not in live.flags and np.isfinite(live.values["fnorm"])


def test_ctrl_c_says_in_one_line_what_was_kept_and_exits_130(tmp_path: Path) -> None:
    """Ctrl-C during scoring once printed a 100-line traceback; now one line names the cache and how to resume."""
    import signal

    proc = cli_started("n_archs=40", "logger=none", "threads=1", f"hydra.run.dir={tmp_path / 'run'}",
                       f"paths.cache_dir={tmp_path / 'cache'}")
    deadline = time.time() + 240
    cache = tmp_path / "cache" / "scores.sqlite"
    while time.time() < deadline and not cache.exists():  # interrupt once scoring has begun
        time.sleep(0.5)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "ntkexp: interrupted; the score cache" in err
    assert "run the same command again to resume" in err


@pytest.mark.parametrize("args, message", [
    (["--multirun", "seed=0,bad"], "'bad' is not a whole number \\(seed takes whole numbers"),
    (["task.top_k=[1.5]"], "each is a fraction of the archs in \\(0, 1\\]"),
])
def test_a_bad_number_is_refused_before_anything_runs(tmp_path: Path, args: list[str], message: str) -> None:
    """A bad value in a sweep's second job once failed deep inside Hydra (a dozen lines); a top-k fraction above 1
    was accepted and reported."""
    proc = cli("n_archs=2", "logger=none", *args, f"hydra.run.dir={tmp_path / 'run'}",
               f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert re.search(message, proc.stderr), proc.stderr[-2000:]


def test_images_of_another_size_than_the_data_set_declares_are_refused(tmp_path: Path) -> None:
    """16x16 images given as CIFAR-10 (32x32) were scored without a word; the benchmark's accuracies are for 32x32."""
    from ntkexp.data import ArrayDataModule, DataConfig

    rng = np.random.default_rng(0)
    npz = tmp_path / "small.npz"
    np.savez(npz, train_x=rng.integers(0, 256, (20, 16, 16, 3), dtype=np.uint8), train_y=rng.integers(0, 10, 20),
             test_x=rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8), test_y=rng.integers(0, 10, 4))
    cfg = DataConfig(name="cifar10_npz", kind="npz", path=str(npz), num_classes=10, in_channels=3, resolution=32)
    with pytest.raises(ValueError, match="train images are 16x16, but dataset.resolution=32"):
        ArrayDataModule(cfg).setup()
    ArrayDataModule(DataConfig(name="cifar10_npz", kind="npz", path=str(npz), num_classes=10, in_channels=3,
                               resolution=16)).setup()  # declared: accepted


def test_a_metrics_flags_do_not_depend_on_which_metric_computed_the_shared_work_first() -> None:
    """cond reads the eigenvalues that ncn computed first; a non-finite kernel must still be among cond's flags, as
    it is when cond is computed alone (shared work carries the flags of the work it used)."""
    def context() -> MetricContext:
        net = NASBench201(C=4, N=1).build(DEGENERATE["all_skip"], num_classes=10)
        with torch.no_grad():
            net.classifier.weight[0, 0] = float("nan")
        return MetricContext(net, torch.randn(6, 3, 8, 8), torch.arange(6) % 3, 10, NTKConfig(bn_mode="eval"))

    alone, shared = context(), context()
    compute_metrics(["cond"], alone)
    compute_metrics(["ncn", "cond"], shared)
    assert "nonfinite_kernel" in alone.metric_flags["cond"]
    assert shared.metric_flags["cond"] == alone.metric_flags["cond"]


@pytest.mark.parametrize("task", ["correlate", "kernel_evolution"])
def test_a_bad_top_k_is_refused_before_any_arch_is_scored(tmp_path: Path, task: str) -> None:
    """task.top_k is checked when the task starts, not after every arch was scored (or trained) for nothing."""
    import sqlite3

    from ntkexp.main import run

    own = ["task.select=sample", "task.track_epochs=[0]"] if task == "kernel_evolution" else []
    cfg = make_cfg([*TINY, "n_archs=3", f"task={task}", "task.top_k=[1.5]", *own], tmp_path)
    with pytest.raises(ValueError, match="each is a fraction of the archs in"):
        run(cfg)
    with sqlite3.connect(Path(cfg.paths.cache_dir) / "scores.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 0


@pytest.mark.parametrize("args", [["task=search", "search_algo=reinforce", "search_algo.lr=nan"],
                                  ["task=search", "search_algo=bohb", "search_algo.min_bandwidth=-inf"],
                                  ["task=simulated_search", "task.algorithms.reinforce.ema=inf"]])
def test_a_search_setting_that_is_not_a_finite_number_is_refused_up_front(args: list[str]) -> None:
    """search_algo.lr=nan ran REINFORCE until numpy's 'Probabilities contain NaN', which names no setting."""
    proc = cli(*args, "task.simulated.runs=1" if "task=simulated_search" in args else "search_algo.budget_evals=3",
               "logger=none", "task.progress=false")
    key, value = args[-1].split("=")
    assert proc.returncode == 2 and "not a finite number" in proc.stderr, proc.stderr
    assert f"{key.split('.')[-1]}={value}" in proc.stderr.splitlines()[-1] and "Traceback" not in proc.stderr


def test_a_space_setting_it_lacks_gets_the_spaces_own_line_without_a_plus() -> None:
    """search_space.kwargs.N=1 on a DARTS-type space got Hydra's "not in struct" and a '+' hint; with the '+', the
    good message appeared: now it appears either way."""
    for arg in ("search_space.kwargs.N=1", "+search_space.kwargs.N=1"):
        proc = cli("search_space=nds_darts", arg, "logger=none", "n_archs=2")
        assert proc.returncode == 2, proc.stderr
        assert "search_space.kwargs.N is not a setting of the nds_darts space; its settings: C, layers" in proc.stderr
        assert "not in struct" not in proc.stderr and "Traceback" not in proc.stderr


def test_an_error_line_reaches_the_terminal_once_and_the_run_log(tmp_path: Path) -> None:
    """Every error line appeared twice on a terminal (the console log line and stderr)."""
    proc = cli("n_archs=1", "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    terminal = proc.stdout + proc.stderr
    assert terminal.count("a rank correlation needs at least 2") == 1, terminal
    assert "a rank correlation needs at least 2" in (tmp_path / "run" / "run.log").read_text()


def test_run_cli_turns_off_logging_tracebacks_for_a_full_disk(tmp_path: Path, monkeypatch) -> None:
    """A full disk under the run folder printed a '--- Logging error ---' traceback per log line before the final
    line: run_cli turns logging's error reports off for the run."""
    import logging

    from ntkexp.cli import run_cli

    monkeypatch.setattr(logging, "raiseExceptions", True)
    cfg = make_cfg(["n_archs=1", "logger=none"], tmp_path)
    with pytest.raises(SystemExit):
        run_cli(cfg)
    assert logging.raiseExceptions is False
