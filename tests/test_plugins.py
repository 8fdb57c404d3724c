"""A user's own search space and metric, from their own package (no file inside ntkexp touched): found through the
``ntkexp.plugins`` entry point of an installed package, or named with ``plugins=[...]``, and run from the command
line with the package's own config files on Hydra's search path."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import cli, python

PACKAGE = '''
"""userpkg: a search space of plain convolutional chains, a metric counting weights and one with settings and inputs
of its own, registered on import."""
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ntkexp.config import SearchAlgoConfig, TaskConfig
from ntkexp.metrics import register_metric
from ntkexp.report import register_section
from ntkexp.scoring import choose_archs
from ntkexp.search import register_search_algo
from ntkexp.spaces import InvalidArchError, SearchSpace, register_space
from ntkexp.tasks import register_task

WIDTHS = (4, 8, 16)


@register_space("conv_chain")
class ConvChain(SearchSpace):
    """Archs ``w<a>-w<b>``: two 3x3 convolutions of widths a and b, then global pooling and a linear head."""

    name = "conv_chain"
    size = len(WIDTHS) ** 2

    def __init__(self, kernel: int = 3) -> None:
        self.kernel = kernel

    def choices(self):
        return [[f"w{w}" for w in WIDTHS]] * 2

    def encode(self, arch):
        return [self.choices()[i].index(p) for i, p in enumerate(self.validate(arch).split("-"))]

    def decode(self, code):
        return "-".join(self.choices()[i][c] for i, c in enumerate(code))

    def validate(self, arch):
        parts = str(arch).split("-")
        if len(parts) != 2 or any(p not in self.choices()[0] for p in parts):
            raise InvalidArchError(f"{arch!r} is not w<a>-w<b> with widths from {WIDTHS}")
        return arch

    def sample(self, rng):
        return self.decode([int(rng.integers(len(WIDTHS))) for _ in range(2)])

    def mutate(self, arch, rng):
        code = self.encode(arch)
        i = int(rng.integers(2))
        code[i] = (code[i] + 1 + int(rng.integers(len(WIDTHS) - 1))) % len(WIDTHS)
        return self.decode(code)

    def describe(self):
        return {"name": self.name, "kernel": self.kernel}

    def build(self, arch, num_classes, in_channels=3):
        a, b = (int(p[1:]) for p in self.validate(arch).split("-"))
        k = self.kernel
        return nn.Sequential(nn.Conv2d(in_channels, a, k, padding=k // 2), nn.ReLU(), nn.Conv2d(a, b, k, padding=k // 2),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(b, num_classes))


@register_metric("weight_count", direction=+1, needs=())
def weight_count(ctx):
    """Trainable parameters of the network (a size baseline)."""
    return float(sum(p.numel() for p in ctx.model.parameters() if p.requires_grad))


@dataclass
class JitterConfig:
    """Settings of its own: how many jittered copies of the first training images, and how much jitter."""
    copies: int = 2
    scale: float = 1.0


def jittered_images(req):
    """Inputs of its own: copies of the first 4 training images plus Gaussian jitter, fixed by seed and repeat."""
    gen = torch.Generator().manual_seed(1000 * req.seed + req.repeat)
    base = req.train_images()[:4].repeat(req.settings.copies, 1, 1, 1)
    return base + req.settings.scale * torch.randn(base.shape, generator=gen).to(base.device)


@register_metric("jitter_spread", direction=+1, needs=(), settings=JitterConfig, inputs=jittered_images)
def jitter_spread(ctx):
    """How many inputs it was given (x1000) plus the mean output spread over them: both come from its own
    settings and inputs."""
    x = ctx.inputs_of("jitter_spread")
    with torch.no_grad():
        spread = ctx.model.eval()(x).std(0).mean()
    return 1000.0 * len(x) + float(spread)


@dataclass
class HillClimbConfig(SearchAlgoConfig):
    """A setting no algorithm of ntkexp has."""
    name: str = "hill_climb"
    starts: int = 4


@register_search_algo("hill_climb", config=HillClimbConfig)
def hill_climb(ctx):
    """Start from the best of ``starts`` random archs, then keep mutating the best one."""
    for _ in range(ctx.cfg.starts):
        ctx.evaluate(ctx.draw())
    while not ctx.exhausted():
        if ctx.evaluate(ctx.mutate(ctx.best())) is None:
            break
    return ctx.best()


@dataclass
class CountConfig(TaskConfig):
    """Settings of its own."""
    multiplier: int = 1


def run_count(ctx, out):
    """Count the archs it would score, times its own setting."""
    n = len(choose_archs(ctx))
    return out.summary("count", {"n": n * ctx.config.task.multiplier}, {"n": n})


register_task("count", config=CountConfig)(run_count)


@register_section("count", rows=lambda summary, base: [{**base, "n": summary["n"]}])
def count_section(frame, out_dir):
    """Its part of a sweep report."""
    return ["## Archs counted", "", f"{int(frame['n'].sum())} in all", ""]
'''

SPACE_YAML = "name: conv_chain\nkwargs:\n  kernel: 3\n"
METRIC_YAML = "names: [weight_count]\n"
JITTER_YAML = "names: [jitter_spread]\nsettings:\n  jitter_spread:\n    copies: 3\n"
TASK_YAML = "defaults:\n  - /task_schema/count@_here_\n  - _self_\nname: count\nmultiplier: 2\n"
ALGO_YAML = ("defaults:\n  - /search_algo_schema/hill_climb@_here_\n  - _self_\n"
             "name: hill_climb\nbudget_evals: 6\nstarts: 3\n")


def _params(arch: str, kernel: int = 3, channels: int = 3, classes: int = 10) -> int:
    """Independent count of the chain's weights, from the arch string."""
    a, b = (int(p[1:]) for p in arch.split("-"))
    return (channels * kernel**2 + 1) * a + (a * kernel**2 + 1) * b + (b + 1) * classes


def _package(root: Path, entry_point: bool) -> Path:
    site = root / "site"
    (site / "userpkg" / "conf" / "search_space").mkdir(parents=True)
    (site / "userpkg" / "conf" / "metric").mkdir(parents=True)
    (site / "userpkg" / "__init__.py").write_text(PACKAGE)
    (site / "userpkg" / "conf" / "search_space" / "conv_chain.yaml").write_text(SPACE_YAML)
    (site / "userpkg" / "conf" / "metric" / "weight_count.yaml").write_text(METRIC_YAML)
    (site / "userpkg" / "conf" / "metric" / "jitter_spread.yaml").write_text(JITTER_YAML)
    for group, name, text in (("task", "count", TASK_YAML), ("search_algo", "hill_climb", ALGO_YAML)):
        (site / "userpkg" / "conf" / group).mkdir(exist_ok=True)
        (site / "userpkg" / "conf" / group / f"{name}.yaml").write_text(text)
    if entry_point:  # what `pip install` of a package declaring the entry point leaves behind
        dist = site / "userpkg-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: userpkg\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text("[ntkexp.plugins]\nuserpkg = userpkg\n")
    return site


def _run(site: Path, tmp_path: Path, *args: str, metric: str = "weight_count") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return cli("task=score", "search_space=conv_chain", f"metric={metric}",
               f"hydra.searchpath=[file://{site / 'userpkg' / 'conf'}]", "n_archs=5", "logger=csv", "task.progress=false",
               f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}", *args, env=env)


@pytest.mark.parametrize("how", ["entry_point", "plugins_list"])
def test_a_users_own_space_and_metric_run_from_their_package(tmp_path: Path, how: str) -> None:
    site = _package(tmp_path, entry_point=how == "entry_point")
    proc = _run(site, tmp_path, *(["plugins=[userpkg]"] if how == "plugins_list" else []))
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = pd.read_csv(tmp_path / "run" / "scores.csv")
    assert len(scores) == 5 and set(scores["arch"]) <= {f"w{a}-w{b}" for a in (4, 8, 16) for b in (4, 8, 16)}
    expected = np.array([_params(a) for a in scores["arch"]], dtype=float)
    np.testing.assert_array_equal(scores["weight_count"].to_numpy(), expected)


def test_without_the_plugin_its_names_are_unknown_in_one_line_that_says_how(tmp_path: Path) -> None:
    site = _package(tmp_path, entry_point=False)
    proc = _run(site, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown metric 'weight_count'" in proc.stderr and "plugins=[<module>]" in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


def test_a_plugin_that_cannot_be_imported_is_one_line(tmp_path: Path) -> None:
    site = _package(tmp_path, entry_point=False)
    (site / "broken.py").write_text("raise RuntimeError('boom')\n")
    proc = _run(site, tmp_path, "plugins=[userpkg,broken]")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "plug-in module 'broken' (plugins=[broken]) cannot be imported: RuntimeError: boom" in proc.stderr


def test_a_users_metric_with_settings_and_inputs_of_its_own_is_scored_and_recorded(tmp_path: Path) -> None:
    """One module and one YAML: its settings come from the YAML and the command line, its inputs from its hook, and
    the settings are recorded with the scores (and change the cache key)."""
    site = _package(tmp_path, entry_point=True)
    proc = _run(site, tmp_path, "metric.settings.jitter_spread.scale=0.5", metric="jitter_spread")
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = pd.read_csv(tmp_path / "run" / "scores.csv")
    counts = (scores["jitter_spread"] // 1000).to_numpy()
    assert (counts == 12).all()  # 4 images x copies=3 (the YAML's setting) reached the metric through its hook
    assert (scores["jitter_spread"] % 1000 > 0).all()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["conventions"]["metric_settings"] == {"jitter_spread": {"copies": 3, "scale": 0.5}}
    proc = _run(site, tmp_path, "metric.settings.jitter_spread.scale=2.0", "hydra.run.dir=" + str(tmp_path / "r2"),
                metric="jitter_spread")
    again = pd.read_csv(tmp_path / "r2" / "scores.csv")
    assert proc.returncode == 0 and not again["cached"].any()  # other settings: other scores, not the cached ones


def test_a_setting_a_metric_does_not_have_is_refused_in_one_line(tmp_path: Path) -> None:
    site = _package(tmp_path, entry_point=True)
    proc = _run(site, tmp_path, "+metric.settings.jitter_spread.copeis=2", metric="jitter_spread")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "copeis" in proc.stderr and "copies, scale" in proc.stderr


def test_a_users_task_with_settings_and_search_algorithm_run_from_their_package(tmp_path: Path) -> None:
    """A task (one module, its settings schema beside it, one YAML) and a search algorithm (one module, one YAML)."""
    site = _package(tmp_path, entry_point=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    common = [f"hydra.searchpath=[file://{site / 'userpkg' / 'conf'}]", "logger=csv", "task.progress=false",
              f"paths.cache_dir={tmp_path / 'cache'}"]
    proc = cli("task=count", "task.multiplier=3", "n_archs=4", *common, f"hydra.run.dir={tmp_path / 'count'}", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "count" / "summary.json").read_text())["n"] == 12
    report = python("-c", "import userpkg, pathlib; from ntkexp.report import write_report; "
                    f"print(write_report(pathlib.Path('{tmp_path / 'count'}')).read_text())", env=env, timeout=120)
    assert "## Archs counted" in report.stdout and "12 in all" in report.stdout, report.stderr[-2000:]
    proc = cli("task=count", "task.top_k=[0.1]", *common, f"hydra.run.dir={tmp_path / 'c2'}", env=env)
    assert proc.returncode == 2 and "task.top_k does not apply to task=count" in proc.stderr, proc.stderr

    proc = cli("task=search", "search_algo=hill_climb", "metric=weight_count", "search_space.kwargs.C=4",
               "search_space.kwargs.N=1", *common, f"hydra.run.dir={tmp_path / 'search'}", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "search" / "summary.json").read_text())
    assert summary["search_algo"]["name"] == "hill_climb" and summary["search_algo"]["starts"] == 3
    proc = cli("task=search", "search_algo=hill_climb", "search_algo.starts=2", "metric=weight_count",
               "search_space.kwargs.C=4", "search_space.kwargs.N=1", *common, f"hydra.run.dir={tmp_path / 's1'}", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]  # its own setting, from the command line, ntkexp unedited
    assert json.loads((tmp_path / "s1" / "summary.json").read_text())["search_algo"]["starts"] == 2
    proc = cli("task=search", "search_algo=hill_climb", "search_algo.lr=0.3", "metric=weight_count", *common,
               f"hydra.run.dir={tmp_path / 's2'}", env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert ("search_algo.lr is not a setting of search_algo=hill_climb (its own settings: starts); it is a setting "
            "of search_algo=reinforce") in proc.stderr
