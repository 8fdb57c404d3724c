"""The study presets: each composes at the paper's scale and states its cost; each reduced CPU variant runs (made tiny
here) and the report rebuilds its tables and figures; the report's Figure 3 and convention-spread tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ntkexp.report import write_report

from .conftest import CONF, DIGITS, QUIET, SHARED, cli, make_cfg, shared

PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
TINY_TRAIN = [*DIGITS, "dataset=digits", "dataset.train_subset=128", "trainer.batch_size=64", "trainer.epoch_images=128"]
# each CPU variant, made tiny: (extra overrides, jobs, task, {report column: expected values})
CPU_CASES = {
    "benchmarks_at_init_cpu": (["n_archs=6"], 2, "correlate", {"group": {"bn_mode=per_sample", "bn_mode=eval"}}),
    "deciles_cpu": (["task.decile=1,10", "seed=0,1", "n_archs=5"], 4, "correlate",
                    {"group": {"task.decile=1", "task.decile=10"}}),
    "init_sensitivity_cpu": (["n_archs=6", "init=default,gaussian"], 4, "correlate",
                             {"group": {f"bn_mode={b} init={i}" for b in ("per_sample", "eval")
                                        for i in ("default", "gaussian")}}),
    "metrics_by_band_cpu": ([*TINY_TRAIN, "task.per_band=2"], 1, "kernel_evolution", {"epoch": {0, 1}}),
    "lga_after_training_cpu": ([*TINY_TRAIN, "n_archs=4", "task.track_epochs=[0,2]"], 1, "kernel_evolution",
                               {"epoch": {0, 2}}),
    "lga1_table1_cpu": ([f"paths.data_root={SHARED}", "n_archs=3", "search_space.kwargs.stem_channels=4",
                         "dataset.train_subset=128", "trainer.epoch_images=128"], 1, "kernel_evolution",
                        {"epoch": {0, 1}}),
    "search_table_cpu": ([*TINY_TRAIN, "seed=0,1", "search_algo.budget_evals=3"], 2, "search",
                         {"algorithm": {"random"}}),
    "gradsign_table55_cpu": (["search_space.kwargs.C=4", "ntk.batch_size=4", "task.simulated.runs=1",
                              "task.simulated.budget_train_seconds=4000", "search_algo.pool_size=2",
                              "search_algo.init_pool=12"], 1, "simulated_search",
                             {"method": {"RS", "G-RS", "REA", "G-REA", "A-REA", "REINFORCE", "G-REINFORCE", "HB",
                                         "G-HB", "BOHB"}}),
    "tenas_prune_cpu": (["seed=0,1", "task.prune.C=2", "bn_mode=per_sample", "metric.settings.linear_regions.inputs=50"], 2,
                        "prune_search", {"metric": {"cond+linear_regions"}}),
}
SINGLE_RUN = {"gradsign_table55_cpu"}  # one job (its runs are inside it), not a sweep
NEEDS_SHARED = {"lga1_table1_cpu": ["nb101_vis_1k/nb101_1k.json", "cifar10_partial/cifar10_partial.npz"]}


def _header(name: str) -> str:
    return "\n".join(line for line in (CONF / "experiment" / f"{name}.yaml").read_text().splitlines()
                     if line.startswith("#"))


def _sweep(name: str) -> dict[str, str]:
    return yaml.safe_load((CONF / "experiment" / f"{name}.yaml").read_text())["hydra"]["sweeper"]["params"]


def test_every_preset_has_a_reduced_cpu_variant_and_a_test() -> None:
    full = [p for p in PRESETS if not p.endswith("_cpu")]
    assert {f"{p}_cpu" for p in full} == {p for p in PRESETS if p.endswith("_cpu")} == set(CPU_CASES)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_composes_and_states_its_cost(name: str) -> None:
    cfg = make_cfg([f"experiment={name}"])
    header = _header(name)
    assert "Cost" in header, name
    if name.endswith("_cpu"):
        assert "REDUCED" in header and "CPU" in header
    else:
        assert "H100" in header  # the estimated cost on one GPU
    assert cfg.logger.group == name


def test_the_full_presets_run_at_the_papers_scale() -> None:
    fig3 = _sweep("benchmarks_at_init")
    assert set(fig3["search_space"].split(",")) == {"nasbench201", "nasbench101", "nds_darts", "nds_enas",
                                                    "nds_nasnet", "nds_amoeba", "nds_pnas", "nds_pdarts"}
    assert {"per_sample", "eval"} <= set(fig3["bn_mode"].split(","))
    assert make_cfg(["experiment=benchmarks_at_init"]).n_archs == 1000
    fig2 = make_cfg(["experiment=metrics_by_band"])
    assert fig2.task.per_band == 200 and fig2.dataset.name == "cifar10" and fig2.task.select == "bands"
    fig6 = make_cfg(["experiment=lga_after_training"])
    assert fig6.n_archs == 1000 and list(fig6.task.track_epochs) == [0, 1, 3, 5, 10]
    assert set(_sweep("lga_after_training")["dataset"].split(",")) == {"cifar10", "cifar100", "imagenet16_120"}
    table2 = _sweep("search_table")
    assert set(table2["search_algo"].split(",")) == {"random", "rea_lga"}
    # REA's budget follows LGA_t as in the paper: 3,600 s with LGA_3, 5,400 s with LGA_5
    assert make_cfg(["search_algo=rea_lga", "metric.train_epochs=3"]).search_algo.budget_score_seconds == 3600
    assert make_cfg(["search_algo=rea_lga", "metric.train_epochs=5"]).search_algo.budget_score_seconds == 5400
    with pytest.raises(Exception, match="budgets for metric.train_epochs 3 and 5 only"):
        _ = make_cfg(["search_algo=rea_lga", "metric.train_epochs=4"]).search_algo.budget_score_seconds
    assert make_cfg(["experiment=search_table"]).search_algo.budget_evals == 100  # RS over 100 archs
    table55 = make_cfg(["experiment=gradsign_table55"])
    assert table55.task.name == "simulated_search" and list(table55.metric.names) == ["gradsign"]
    assert table55.task.simulated.runs == 500 and table55.task.simulated.budget_train_seconds == 12000
    assert table55.task.simulated.a_rea_metric == "naswot" and table55.ntk.batch_size == 128  # GradSign App. A.0.3
    assert table55.task.simulated.published["G-REA"]["cifar10_test"] == 94.10
    assert set(table55.task.simulated.published) == {"RS", "G-RS", "REA", "G-REA", "A-REA", "REINFORCE",
                                                     "G-REINFORCE", "BOHB", "G-HB"}
    # TE-NAS's pruning as prune_tenas.py runs it
    tenas = make_cfg(["experiment=tenas_prune"])
    assert (tenas.task.prune.C, tenas.task.prune.N, tenas.task.prune.mix, tenas.task.prune.keep_none) == \
        (3, 1, "mean", False)
    # the released code's init (PyTorch's default: its Kaiming name never matches) and its 'weight' parameters
    assert tenas.init.name == "default" and tenas.ntk.params == "weights" and tenas.ntk.bn_mode == "train"
    assert list(tenas.metric.names) == ["cond", "linear_regions"] and tenas.metric.repeats == 3
    assert tenas.ntk.batch_size == 72 and _sweep("tenas_prune")["seed"] == "0,1,2,3,4"  # >= 5 seeds (issue 38)
    assert (tenas.task.prune.weights, tenas.task.prune.batches) == ("per_round", "per_call")
    # metrics_by_band_cpu keeps the paper's step count per epoch on the partial data set
    assert make_cfg(["experiment=metrics_by_band_cpu"]).trainer.epoch_images == 50000
    # lga_after_training_cpu: the benchmarked network, t in optimiser steps (0 and 19), NB201's cosine cycle in steps
    lga_cpu = make_cfg(["experiment=lga_after_training_cpu"])
    assert lga_cpu.search_space.name == "nasbench201" and dict(lga_cpu.search_space.kwargs) == {"C": 16, "N": 5}
    assert lga_cpu.trainer.epoch_steps == 1 and list(lga_cpu.task.track_epochs) == [0, 19]
    assert lga_cpu.trainer.schedule_steps == 200 * 196 and lga_cpu.n_archs == 100 and lga_cpu.ntk.batch_size == 64


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.shared_data) if n in NEEDS_SHARED else n
                                  for n in sorted(CPU_CASES)])
def test_cpu_variant_runs_tiny_and_reports(tmp_path: Path, name: str) -> None:
    for path in NEEDS_SHARED.get(name, []):
        shared(path)  # skips where ../shared/data is absent
    overrides, n_jobs, task, expected = CPU_CASES[name]
    sweep = tmp_path / "sweep"
    where = f"hydra.run.dir={sweep / '0'}" if name in SINGLE_RUN else f"hydra.sweep.dir={sweep}"
    proc = cli(f"experiment={name}", *QUIET, *overrides, where, f"paths.cache_dir={tmp_path / 'cache'}", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(sweep.rglob("summary.json"))) == n_jobs
    report = write_report(sweep, tmp_path / "report", title=name)
    summary = pd.read_csv(tmp_path / "report" / f"{task}_summary.csv")
    for column, values in expected.items():
        assert set(summary[column]) == values, (column, set(summary[column]))
    text = report.read_text()
    assert "|" in text
    if task == "correlate":
        assert {"lga", "fnorm", "mean", "ncn"} <= set(summary["metric"])
        assert (tmp_path / "report" / "correlate_kendall.png").stat().st_size > 1000
    if name == "deciles_cpu":
        assert (tmp_path / "report" / "correlate_box.png").stat().st_size > 1000
        assert set(summary["kendall_tau_n"]) == {2}  # two seeds per decile
    if task == "kernel_evolution":
        assert (tmp_path / "report" / "kernel_evolution_tau.png").stat().st_size > 1000
        job = next(sweep.rglob("summary.json")).parent
        assert (job / "training_curves.csv").exists()  # the training steps, also sent to the logger


def _fake_job(sweep: Path, num: int, overrides: list[str], taus: dict[str, float], seed: int = 0) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    correlations = {m: {"n": 100, "direction": 1, "kendall_tau": t, "spearman_rho": t, "n_undefined": 0}
                    for m, t in taus.items()}
    (job / "summary.json").write_text(json.dumps({"task": "correlate", "correlations": correlations,
                                                  "config": {"seed": seed}}))


def test_the_report_gives_the_better_of_two_bn_modes_and_the_convention_spread(tmp_path: Path) -> None:
    sweep, num = tmp_path / "sweep", 0
    taus = {("nasbench201", "per_sample"): {"ncn": 0.5, "lga": 0.4}, ("nasbench201", "eval"): {"ncn": 0.1, "lga": 0.45},
            ("nasbench101", "per_sample"): {"ncn": -0.2, "lga": 0.1}, ("nasbench101", "eval"): {"ncn": 0.05, "lga": 0.0}}
    for (space, bn), values in taus.items():
        _fake_job(sweep, num, [f"search_space={space}", f"bn_mode={bn}", "seed=0"], values)
        num += 1
    write_report(sweep, tmp_path / "report")
    best = pd.read_csv(tmp_path / "report" / "correlate_best_bn_mode.csv").set_index(["search_space", "metric"])
    assert best.loc[("nasbench201", "ncn"), "best of Train/Eval"] == 0.5
    assert best.loc[("nasbench201", "lga"), "better mode"] == "eval"
    assert best.loc[("nasbench101", "ncn"), "best of Train/Eval"] == 0.05
    assert best.loc[("nasbench101", "ncn"), "tau per_sample"] == -0.2  # both modes shown next to the best
    assert (tmp_path / "report" / "correlate_best_bn_mode.png").stat().st_size > 1000

    spread_sweep = tmp_path / "spread"
    for num, (bn, init, tau) in enumerate([("per_sample", "default", 0.5), ("per_sample", "gaussian", 0.3),
                                           ("eval", "default", -0.1), ("eval", "gaussian", 0.2)]):
        _fake_job(spread_sweep, num, [f"bn_mode={bn}", f"init={init}"], {"ncn": tau})
    write_report(spread_sweep, tmp_path / "report2")
    spread = pd.read_csv(tmp_path / "report2" / "correlate_convention_spread.csv").set_index("metric")
    assert spread.loc["ncn", "eval / default"] == -0.1 and spread.loc["ncn", "spread"] == pytest.approx(0.6)
