"""A user's own search space and metric, from their own package (no file inside ntkexp touched): found through the
``ntkexp.plugins`` entry point of an installed package, or named with ``plugins=[...]``, and run from the command
line with the package's own config files on Hydra's search path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import ROOT

PACKAGE = '''
"""userpkg: a search space of plain convolutional chains and a metric counting weights, registered on import."""
import numpy as np
from torch import nn

from ntkexp.metrics import register_metric
from ntkexp.spaces import SPACES, InvalidArchError, SearchSpace

WIDTHS = (4, 8, 16)


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


SPACES.register("conv_chain", ConvChain)


@register_metric("weight_count", direction=+1, needs=())
def weight_count(ctx):
    """Trainable parameters of the network (a size baseline)."""
    return float(sum(p.numel() for p in ctx.model.parameters() if p.requires_grad))
'''

SPACE_YAML = "name: conv_chain\nkwargs:\n  kernel: 3\n"
METRIC_YAML = "names: [weight_count]\n"


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
    if entry_point:  # what `pip install` of a package declaring the entry point leaves behind
        dist = site / "userpkg-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: userpkg\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text("[ntkexp.plugins]\nuserpkg = userpkg\n")
    return site


def _run(site: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "run.py", "task=score", "search_space=conv_chain", "metric=weight_count",
                           f"hydra.searchpath=[file://{site / 'userpkg' / 'conf'}]", "n_archs=5", "logger=csv",
                           "task.progress=false", f"paths.cache_dir={tmp_path / 'cache'}",
                           f"hydra.run.dir={tmp_path / 'run'}", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


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
