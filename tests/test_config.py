"""Every config group option composes against the schema; bad names and types are refused with clear messages."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from ntkexp.cli import group_options
from ntkexp.init import SCHEMES
from ntkexp.metrics import COMBINATIONS, METRICS
from ntkexp.ntk import BN_MODES

from .conftest import CONF, DIGITS, cli, make_cfg

GROUPS = ["search_space", "metric", "init", "bn_mode", "dataset", "task", "logger", "trainer", "search_algo", "ntk"]


def options(group: str) -> list[str]:
    return group_options(CONF, group)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes(group: str, option: str) -> None:
    cfg = make_cfg([f"{group}={option}"])
    assert cfg.seed == 0
    if group == "metric":
        assert all(n in METRICS or n in COMBINATIONS or n == "all" for n in cfg.metric.names)
    if group == "bn_mode":
        assert cfg.ntk.bn_mode == option and option in BN_MODES
    if group == "init":
        assert cfg.init.name in SCHEMES


def test_each_registered_metric_is_an_option_of_its_own_generated_from_the_registry() -> None:
    """``metric=<name>`` exists for every registered metric without a YAML of its own (the one-line YAMLs are gone)."""
    assert set(METRICS.names()) <= set(options("metric"))
    assert not (CONF / "metric" / "ncn.yaml").exists()
    for name in METRICS.names():
        assert list(make_cfg([f"metric={name}"]).metric.names) == [name]


def test_wrong_type_is_refused() -> None:
    with pytest.raises((ValidationError, ConfigCompositionException)):
        make_cfg(["n_archs=many"])
    with pytest.raises((ValidationError, ConfigCompositionException)):
        make_cfg(["ntk.batch_size=1.5"])


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ConfigCompositionException):
        make_cfg(["ntk.batchsize=32"])


def test_unknown_metric_on_the_command_line_lists_valid_metrics() -> None:
    proc = cli("search_space=nasbench201", "metric=nc")
    assert proc.returncode != 0
    assert "metric=nc: no such option; did you mean ncn?" in proc.stderr and proc.stderr.count("\n") == 1
    for name in ("lga", "ncn", "fnorm"):
        assert name in proc.stderr


@pytest.mark.parametrize("args, expected", [
    (["search_space=nds_darts", "metric=ncn", "init=gaussian"], ["nds/DARTS.json", "NDS"]),  # the README's command
    (["search_space=nasbench201", "search_space.benchmark.table={tmp}/nb201.csv"], ["nb201.csv", "NATS"]),
    (["dataset=cifar10"], ["cifar-10-batches-py", "kriz"]),
])
def test_missing_benchmark_or_data_file_fails_with_the_path(tmp_path, args: list[str], expected: list[str]) -> None:
    proc = cli(*[a.format(tmp=tmp_path) for a in args], f"paths.data_root={tmp_path}", "logger=none",
                f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 2
    assert proc.stderr.startswith("ntkexp: error:") and proc.stderr.count("\n") == 1
    assert str(tmp_path) in proc.stderr and all(e in proc.stderr for e in expected), proc.stderr
    assert "Traceback" not in proc.stderr


def test_dataset_that_does_not_fit_the_benchmark_is_one_line(tmp_path) -> None:
    proc = cli(*DIGITS, "dataset=cifar10_probe", "logger=none", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 2 and "'cifar10'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, expected", [
    (["search_algo.population_size=20"], "search_algo.population_size is not a setting of search_algo=random "
                                         "(its own settings: none beyond every algorithm's); it is a setting of "
                                         "search_algo=rea"),
    (["search_algo=rea", "search_algo.population_size=20"], "search_algo.name='rea' does not apply: "
                                                            "task=correlate runs no search algorithm"),
    (["search_algo=rea"], "search_algo.name='rea' does not apply: task=correlate runs no search algorithm"),
    (["task=search", "search_algo=rea", "search_algo.lr=0.1"], "search_algo.lr is not a setting of search_algo=rea "
                                                               "(its own settings: population_size, sample_size, "
                                                               "iterations); it is a setting of search_algo=reinforce"),
    (["task=simulated_search", "search_algo=rea", "search_algo.population_size=5"],
     "search_algo.name='rea' does not apply: task=simulated_search does not read it"),
    (["task=simulated_search", "task.algorithms.rea.lr=0.1"], "task.algorithms.rea: search algorithm rea has no "
                                                              "setting 'lr'"),
    (["task=simulated_search", "search_algo.budget_evals=5"], "search_algo.budget_evals=5 does not apply: "
                                                              "task=simulated_search does not read it"),
    (["task.track_epochs=[1]"], "task.track_epochs does not apply to task=correlate"),
    (["dataset.batch_size=64"], "the training batch is set with trainer.batch_size"),
    (["experiment=gradsign_table55_cpu", "task.decile=1"], "task.decile does not apply to task=simulated_search"),
])
def test_a_setting_that_does_not_apply_is_refused_in_one_line(tmp_path, args: list[str], expected: str) -> None:
    proc = cli(*args, "n_archs=3", "logger=none", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expected in proc.stderr, proc.stderr


@pytest.mark.parametrize("args", [["foo=1"], ["ntk.batch_size=abc"], ["metric=nc"]])
def test_a_config_hydra_refuses_exits_2_like_ntkexps_own_bad_settings(args: list[str]) -> None:
    """One documented status for bad settings: Hydra's composition errors exited 1 (a run that failed as a whole)."""
    proc = cli(*args, "logger=none")
    assert proc.returncode == 2, proc.stderr[-1000:]


@pytest.mark.parametrize("arg, hint", [("n_arch=6", "did you mean n_archs"), ("trainer.lrr=0.1", "did you mean trainer.lr"),
                                       ("ntk.bn=train", "the settings there: batch_size, bn_mode")])
def test_a_mistyped_setting_suggests_the_close_known_ones(arg: str, hint: str) -> None:
    """n_arch=6 got Hydra's 'use +n_arch=6' hint, which ntkexp then refused; nothing suggested n_archs."""
    from .conftest import cli

    proc = cli(arg, "logger=none")
    assert proc.returncode == 2 and hint in proc.stderr and "+" not in proc.stderr.split(hint)[0][-60:], proc.stderr
    assert proc.stderr.count("\n") == 1
