"""Installable and at home anywhere (issue 40): the ``ntkexp`` command from a wheel in a fresh venv, run from an empty
folder; a light core whose missing extras are named in one line; threads divided among a sweep's jobs; sweeps that
summarise themselves; dashboards named and grouped; per-arch progress while a run goes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from ntkexp.benchmarks.groundtruth import read_table, write_table
from ntkexp.io import resolve_path

from .conftest import QUIET, ROOT, cli, python

SMALL = ["n_archs=3", *QUIET, "metric=fnorm"]


def _blocked(modules: list[str], *args: str, cwd: Path, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    """``ntkexp *args`` in a process where ``modules`` cannot be imported (as on a core install without them)."""
    code = textwrap.dedent(f"""
        import sys
        for name in {modules!r}:
            sys.modules[name] = None
        sys.argv = ["ntkexp", *{list(args)!r}]
        from ntkexp.cli import main
        main()
    """)
    return python("-c", code, cwd=cwd, env={**os.environ, **(env or {})}, timeout=600)


# ------------------------------------------------------------------------------------ 1. the installed command
@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_runs_ntkexp_from_an_empty_folder(tmp_path: Path) -> None:
    """Built as a wheel (not editable) and installed into a new venv (its dependencies from this interpreter's
    site-packages, so nothing is downloaded), ``ntkexp`` runs the shipped default from an empty folder: its config,
    the NB201 table and the probe images come from the installed package, its outputs go to that folder."""
    dist, venv, empty, src = tmp_path / "dist", tmp_path / "venv", tmp_path / "empty", tmp_path / "src"
    empty.mkdir()
    # the checkout's files as a fresh clone has them (no egg-info or build folder left by an earlier install, whose
    # file lists setuptools would otherwise reuse)
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        "*.egg-info", "build", "dist", "outputs", ".git", "__pycache__", ".pytest_cache", ".hypothesis", "wandb"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(dist), str(src)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("ntkexp-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                          str(wheel)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = {**os.environ, "NTKEXP_CACHE_DIR": str(tmp_path / "scores"), "WANDB_MODE": "offline",
           "PYTHONPATH": "", "PYTHONNOUSERSITE": "1"}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import ntkexp; print(ntkexp.__file__)"], cwd=empty,
                           env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr  # the wheel, not the checkout
    run = subprocess.run([str(venv / "bin" / "ntkexp"), *SMALL], cwd=empty, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    (summary,) = (empty / "outputs").rglob("summary.json")
    assert json.loads(summary.read_text())["correlations"]["fnorm"]["n"] == 3
    assert (tmp_path / "scores" / "scores.sqlite").is_file()  # the score cache is the user's place, not the folder
    helped = subprocess.run([str(venv / "bin" / "ntkexp"), "--help"], cwd=empty, env=env, capture_output=True,
                            text=True, timeout=120)
    assert helped.returncode == 0 and "nasbench201" in helped.stdout


def test_help_lists_every_group_and_where_things_go_without_composing(tmp_path: Path) -> None:
    proc = cli("--help", cwd=tmp_path, env={**os.environ, "NTKEXP_CACHE_DIR": str(tmp_path / "here")})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    listed: dict[str, str] = {}
    for line in out.split("config groups")[1].split("\n\n")[0].splitlines()[1:]:
        if line.startswith("  ") and not line.startswith("   "):
            group = line.split()[0]
            listed[group] = line
        else:
            listed[group] += line
    for group, option in (("task", "kernel_evolution"), ("metric", "lga"), ("search_algo", "bohb"),
                          ("logger", "tensorboard"), ("experiment", "tenas_prune_cpu"), ("bn_mode", "per_sample")):
        assert option in listed[group].replace(",", " ").split(), (group, option)
    assert str(tmp_path / "here") in out and "usage: ntkexp" in out
    assert not (tmp_path / "outputs").exists()  # no run was started


def test_data_and_scores_default_to_the_users_place_not_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    from .conftest import make_cfg

    assert make_cfg([]).paths.cache_dir == os.environ["NTKEXP_CACHE_DIR"]  # the variable wins
    env = {k: v for k, v in os.environ.items() if k not in ("NTKEXP_DATA_ROOT", "NTKEXP_CACHE_DIR")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    for name in ("NTKEXP_DATA_ROOT", "NTKEXP_CACHE_DIR"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    cfg = make_cfg([])
    assert cfg.paths.data_root == str(tmp_path / "xdg" / "ntkexp" / "data")
    assert cfg.paths.cache_dir == str(tmp_path / "xdg" / "ntkexp" / "scores")
    status = python("-m", "ntkexp.data", "status", cwd=tmp_path, env=env)
    assert f"score cache: {tmp_path / 'xdg' / 'ntkexp' / 'scores'}" in status.stdout
    assert f"data root: {tmp_path / 'xdg' / 'ntkexp' / 'data'}" in status.stdout


# ------------------------------------------------------------------------------- 2. a light core, named extras
def test_the_shipped_table_reads_without_pyarrow_and_matches_the_published_values() -> None:
    """The NB201 table ships as npz (numpy only). Published values (PROVENANCE.md, from the official NATS files):
    arch 11 has 91.5833 on CIFAR-10 test and 87.94 on cifar10-valid; the best CIFAR-10 test accuracy is 94.3733."""
    code = ("import sys; sys.modules['pyarrow'] = None\n"
            "from ntkexp.benchmarks.groundtruth import read_table\nfrom ntkexp.io import resolve_path\n"
            "t = read_table(resolve_path('pkg://nb201.npz'))\n"
            "print(len(t), t.loc[11, 'cifar10'], t.loc[11, 'cifar10_valid'], t['cifar10'].max(),"
            " t.loc[11, 'arch_str'])")
    proc = python("-c", code)
    assert proc.returncode == 0, proc.stderr
    n, acc, valid, best, arch = proc.stdout.split()
    assert int(n) == 15625 and float(acc) == pytest.approx(91.5833, abs=1e-4)
    assert float(valid) == pytest.approx(87.94, abs=1e-3) and float(best) == pytest.approx(94.3733, abs=1e-4)
    assert arch.startswith("|") and arch.count("~") == 6


def test_an_npz_table_round_trips_exactly(tmp_path: Path) -> None:
    frame = pd.DataFrame({"arch_str": ["a", "bb", "ccc"], "cifar10": [91.1, float("nan"), 1 / 3],
                          "arch_index": pd.array([0, 5, 7], dtype="int32")})
    write_table(frame, tmp_path / "t.npz")
    back = read_table(tmp_path / "t.npz")
    assert list(back.columns) == list(frame.columns) and back["arch_str"].tolist() == ["a", "bb", "ccc"]
    assert back["cifar10"].iloc[2] == 1 / 3 and pd.isna(back["cifar10"].iloc[1]) and back["arch_index"].dtype == "int32"


def test_a_parquet_table_without_pyarrow_names_the_extra(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    read_table(resolve_path("pkg://nb201.npz")).head(20).to_parquet(tmp_path / "t.parquet", index=False)
    code = (f"import sys; sys.modules['pyarrow'] = None; sys.modules['fastparquet'] = None\n"
            f"from pathlib import Path\nfrom ntkexp.benchmarks.groundtruth import read_table\n"
            f"read_table(Path({str(tmp_path / 't.parquet')!r}))")
    proc = python("-c", code)
    assert proc.returncode != 0 and "pip install 'ntkexp[benchmarks]'" in proc.stderr.splitlines()[-1]


def test_a_search_algorithm_whose_extra_is_missing_is_one_line_naming_it(tmp_path: Path) -> None:
    proc = _blocked(["hpbandster", "ConfigSpace"], "task=search", "search_algo=bohb", *QUIET,
                    f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ntkexp: error: search_algo=bohb") and "pip install 'ntkexp[hpo]'" in last
    assert "Traceback" not in proc.stderr


def test_without_wandb_the_default_run_logs_to_files_and_says_which_extra(tmp_path: Path) -> None:
    proc = _blocked(["wandb"], *[a for a in SMALL if not a.startswith("logger=")], "logger=wandb",
                    f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pip install 'ntkexp[wandb]'" in proc.stdout + proc.stderr
    assert (tmp_path / "run" / "summary.json").is_file() and (tmp_path / "run" / "metrics.jsonl").is_file()


def test_help_and_the_pre_checks_do_not_import_lightning(tmp_path: Path) -> None:
    code = ("import sys\nsys.modules['lightning'] = None\nsys.argv = ['ntkexp', '--help']\n"
            "from ntkexp.cli import main\ntry:\n    main()\nexcept SystemExit as e:\n    print('status', e.code)")
    proc = python("-c", code, cwd=tmp_path)
    assert "status 0" in proc.stdout, proc.stderr[-2000:]


def test_an_at_initialisation_run_does_not_import_lightning(tmp_path: Path) -> None:
    """Scoring at initialisation needs the data arrays, not Lightning's DataModule (issue 40: Lightning only when
    training); with Lightning unimportable the default run still scores and writes its summary."""
    proc = _blocked(["lightning", "pytorch_lightning"], *SMALL, "metric=lga", f"hydra.run.dir={tmp_path / 'run'}",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["n_archs"] == 3


def test_tab_completion_answers_with_the_options_and_hydra_flags_are_not_settings(tmp_path: Path) -> None:
    """Hydra's shell completion (``eval "$(ntkexp -sc install=bash)"``) asks ``ntkexp -sc query=bash``: the
    pre-checks once read ``query=bash`` as a setting and refused every Tab press."""
    from ntkexp.cli import overrides_of

    env = {**os.environ, "COMP_LINE": "ntkexp metric=", "COMP_POINT": "14"}
    proc = cli("-sc", "query=bash", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "metric=lga" in proc.stdout.split() and "metric=ncn" in proc.stdout.split()
    assert overrides_of(["-sc", "query=bash", "--cfg", "job", "-p", "ntk", "n_archs=3", "--multirun", "+x=1"]) == \
        ["n_archs=3", "+x=1"]
    assert overrides_of(["-c", "job", "metric=lgaa"]) == ["metric=lgaa"]  # still checked with --cfg


# ------------------------------------------------------------------------------------------- 3. threads
def test_default_threads_divide_the_cores_among_a_launchers_jobs(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    cores = len(os.sched_getaffinity(0))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    proc = cli("--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1",
               *[a for a in SMALL if not a.startswith("threads=")], f"hydra.sweep.dir={tmp_path / 'sweep'}",
               f"paths.cache_dir={tmp_path / 'cache'}", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/summary.json")]
    assert len(summaries) == 2
    assert {s["cpu_threads"] for s in summaries} == {max(1, cores // 2)}
    assert {s["omp_wait_policy"] for s in summaries} == {"PASSIVE"}  # set before torch loads
    single = cli(*[a for a in SMALL if not a.startswith("threads=")], f"hydra.run.dir={tmp_path / 'one'}",
                 f"paths.cache_dir={tmp_path / 'cache'}", env=env, cwd=tmp_path)
    assert json.loads((tmp_path / "one" / "summary.json").read_text())["cpu_threads"] == cores, single.stderr[-999:]


# ------------------------------------------------------------------------------- 4. sweeps summarise themselves
def test_a_sweep_writes_and_prints_its_report_and_a_cross_task_failure_is_listed(tmp_path: Path) -> None:
    proc = cli("--multirun", "seed=0,1", "task=correlate,kernel_evolution", *SMALL,
               f"hydra.sweep.dir={tmp_path / 'sweeps'}/${{task.name}}", f"paths.cache_dir={tmp_path / 'cache'}",
               cwd=tmp_path)
    assert proc.returncode == 1  # kernel_evolution cannot train on the probe-only default data set
    report = tmp_path / "sweeps" / "correlate" / "report.md"
    assert report.is_file() and "| all | fnorm |" in proc.stdout and f"sweep report: {report}" in proc.stdout
    assert "mean" in (tmp_path / "sweeps" / "correlate" / "correlate_summary.csv").read_text()
    failures = proc.stderr[proc.stderr.index("sweep jobs failed"):]
    assert "2 of 4 sweep jobs failed" in proc.stderr
    assert failures.count(str(tmp_path / "sweeps" / "kernel_evolution")) == 2 and "needs a training set" in failures


# --------------------------------------------------------------------------------------------- 5. dashboards
def test_run_names_carry_metric_and_bn_mode_and_a_sweep_is_one_group(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    uri = f"file:{tmp_path / 'mlruns'}"
    proc = cli("--multirun", "seed=0,1", *[a for a in SMALL if not a.startswith("logger=")], "logger=mlflow",
               f"logger.tracking_uri={uri}", "bn_mode=eval", f"hydra.sweep.dir={tmp_path / 'sweep'}",
               f"paths.cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [p for p in (tmp_path / "mlruns").glob("*/*") if (p / "tags").is_dir()]
    assert len(runs) == 2
    names = {(r / "tags" / "mlflow.runName").read_text() for r in runs}
    assert names == {f"correlate-nasbench201-fnorm-eval-cifar10_probe-s{s}" for s in (0, 1)}
    groups = {(r / "tags" / "group").read_text() for r in runs}
    assert len(groups) == 1 and groups.pop().endswith(tmp_path.name + "/sweep")
    for r in runs:  # the summary's numbers and the per-arch progress reached the dashboard
        assert (r / "metrics" / "summary" / "fnorm" / "kendall_tau").is_file()
        assert (r / "metrics" / "progress" / "archs_done").read_text().count("\n") == 3


def test_tensorboard_gets_the_progress_and_the_summary(tmp_path: Path) -> None:
    pytest.importorskip("tensorboardX")
    proc = cli(*[a for a in SMALL if not a.startswith("logger=")], "logger=tensorboard",
               f"hydra.run.dir={tmp_path / 'run'}", f"paths.cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (events,) = (tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*")
    data = events.read_bytes()
    assert b"summary/fnorm/kendall_tau" in data and b"running/fnorm/kendall_tau" in data


def test_a_refused_config_creates_no_dashboard_run(tmp_path: Path) -> None:
    proc = cli(*[a for a in SMALL if not a.startswith("logger=")], "logger=wandb", "dataset=cifar10",
               f"paths.data_root={tmp_path / 'empty'}", f"hydra.run.dir={tmp_path / 'run'}",
               env={**os.environ, "WANDB_MODE": "offline"}, cwd=tmp_path)
    assert proc.returncode == 2 and "cifar" in proc.stderr.lower()
    assert not (tmp_path / "run" / "wandb").exists()


def test_the_running_tau_reaches_the_final_tau_at_the_last_arch(tmp_path: Path) -> None:
    proc = cli("n_archs=7", *QUIET, "metric=ntk", f"hydra.run.dir={tmp_path / 'run'}",
               f"paths.cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    progress = [r for r in rows if "progress/archs_done" in r]
    assert [r["progress/archs_done"] for r in progress] == list(range(1, 8))
    last = progress[-1]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for metric, row in summary["correlations"].items():
        assert last[f"running/{metric}/kendall_tau"] == pytest.approx(row["kendall_tau"], abs=1e-12), metric


# ----------------------------------------------------------------------------------------- 8. benchmark query
def test_a_benchmark_query_gives_the_published_numbers_by_string_or_index() -> None:
    """PROVENANCE.md's published values: arch 11 has 91.5833 (CIFAR-10 test) and 87.94 (cifar10-valid), the best
    CIFAR-10 test accuracy is 94.3733; an arch written in another order of its ops' indices is the same arch."""
    import ntkexp

    nb201 = ntkexp.benchmark("nb201")
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert len(nb201) == 15625 and nb201.query(best) == pytest.approx(94.3733, abs=1e-4)
    assert nb201.query(11) == pytest.approx(91.5833, abs=1e-4)
    assert nb201.query(11, split="valid") == pytest.approx(87.94, abs=1e-3)
    assert nb201.query(nb201.archs[11], "cifar10") == nb201.query(11)
    record = nb201.record(11)
    assert nb201.query(11, "cifar100", epochs=12, split="valid") == record["cifar100_valid_12ep"]
    assert nb201.train_seconds(11, "cifar10", epochs=12) == pytest.approx(12 * record["cifar10_valid_epoch_seconds"])
    assert ntkexp.benchmark("NAS-Bench-201").query(11, "ImageNet16-120") == record["ImageNet16-120"]


@pytest.mark.parametrize("call, message", [
    (lambda b: b.query(11, "svhn"), "dataset='svhn' is not in the nb201 table"),
    (lambda b: b.query(11, "cifar100", split="valid"), "no valid accuracy after 200 epochs for cifar100"),
    (lambda b: b.query(11, epochs=50), "the table holds 200 epochs"),
    (lambda b: b.query("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"), "conv"),
    (lambda b: b.query(15625), "outside 0..15624"),
])
def test_a_bad_benchmark_query_is_one_clear_error(call, message) -> None:
    import ntkexp

    with pytest.raises((ValueError, KeyError)) as err:
        call(ntkexp.benchmark("nb201"))
    assert message in str(err.value)
    with pytest.raises(ValueError, match="shipped: nb201"):
        ntkexp.benchmark("nb101")


# ------------------------------------------------------------------------------------------------ 6. plots and text
def test_scatter_panels_carry_their_tau_rho_and_n_and_readable_log_axes() -> None:
    import numpy as np

    from ntkexp.tasks.correlate import scatter_figure

    rng = np.random.default_rng(0)
    acc = rng.uniform(80, 94, 30)
    frame = pd.DataFrame({"accuracy": acc, "lga": acc / 100 + rng.normal(0, 0.01, 30),
                          "fnorm": 10 ** rng.uniform(2, 6, 30), "ncn": -(10 ** rng.uniform(0, 3, 30))})
    correlations = {n: {"kendall_tau": 0.1 * i, "spearman_rho": 0.2 * i, "n": 30}
                    for i, n in enumerate(("lga", "fnorm", "ncn"), 1)}
    fig = scatter_figure(frame, ["lga", "fnorm", "ncn"], "title", "accuracy (%)", correlations)
    lga, fnorm, ncn = fig.axes[:3]
    assert lga.get_title() == "lga: tau +0.100, rho +0.200, n 30"
    assert ncn.get_title() == "ncn: tau +0.300, rho +0.600, n 30"
    assert fnorm.get_xscale() == "log" and ncn.get_xscale() == "log"  # NCN (all negative) drawn as its magnitude
    assert ncn.get_xlabel().startswith("-ncn (log scale)")
    fig.canvas.draw()
    labelled = [t for t in fnorm.get_xticklabels() if t.get_text()]
    assert 2 <= len(labelled) <= 6  # a few labelled decades, no overlapping minor labels


def test_kernel_evolution_prints_a_labelled_tau_table() -> None:
    from ntkexp.tasks.kernel_evolution import tau_table

    ranks = pd.DataFrame([{"step": s, "metric": m, "kendall_tau": t, "kendall_lo": t - 0.1, "kendall_hi": t + 0.1}
                          for s, row in ((0, (0.4, 0.2)), (196, (0.5, -0.1))) for m, t in zip(("lga", "ncn"), row)])
    lines = tau_table(ranks, ["lga", "ncn"], "NB201 | 3 archs").splitlines()
    assert lines[0] == "NB201 | 3 archs" and "Kendall tau" in lines[1]
    assert lines[2].split() == ["t", "(steps)", "lga", "ncn"]
    assert lines[4].split()[0] == "196" and "+0.500 [+0.40, +0.60]" in lines[4] and "-0.100 [-0.20, +0.00]" in lines[4]
