"""The structure the code must keep: layers that import only downwards, and plug-ins that take one file (and one
config) to add."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from ntkexp.main import run
from ntkexp.metrics import METRICS, MetricContext, expand, register_metric

from .conftest import ROOT, make_cfg

#: ntkexp's modules from the bottom up; a module may import only from its own package or from one listed before it
LAYERS = [
    ["io", "registry", "resources", "extras", "places"],
    ["plotting", "tables", "store", "init", "ntk", "spaces", "loggers", "downloads"],
    ["data", "benchmarks"],
    ["metrics"],
    ["stats", "train", "api"],
    ["config"],
    ["scoring"],
    ["search"],
    ["tasks"],
    ["report", "main"],
    ["cli"],
    ["studies"],
]


def _layer_of(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else ""
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"ntkexp.{top} is in no layer of this test")


def _ntkexp_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ntkexp.") and node.level == 0:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("ntkexp.")]
    return out


def test_no_module_imports_from_a_higher_layer() -> None:
    package = ROOT / "ntkexp"
    wrong = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        if module == "ntkexp":
            continue
        own = _layer_of(module)
        for target in _ntkexp_imports(path):
            same_package = target.split(".")[1] == module.split(".")[1]
            if not same_package and _layer_of(target) >= own:
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


def param_count(ctx: MetricContext) -> float:
    """A plug-in defined in this test file: the number of trainable parameters (a known zero-cost baseline)."""
    return float(sum(p.numel() for p in ctx.model.parameters() if p.requires_grad))


@pytest.fixture
def plugin_metric():  # type: ignore[no-untyped-def]
    """``param_count`` registered for one test (conftest removes it afterwards)."""
    return register_metric("param_count", direction=+1, needs=())(param_count)


def test_a_metric_registered_here_runs_through_correlate_and_search(tmp_path: Path, plugin_metric) -> None:
    assert "param_count" in METRICS and METRICS.get("param_count").needs == ()
    tiny = ["n_archs=6", "ntk.batch_size=8", "logger=csv", "task.progress=false", "threads=1"]
    summary = run(make_cfg(["metric=param_count", *tiny], tmp_path / "c"))
    assert set(summary["correlations"]) == {"param_count"}
    # defined for every arch but those whose output ignores the input (flagged no_input_path by every metric)
    scores = pd.read_csv(tmp_path / "c" / "run" / "scores.csv")
    dead = scores["flags"].fillna("").str.contains("no_input_path")
    assert summary["correlations"]["param_count"]["n_undefined"] == dead.sum() < len(scores)
    assert scores.loc[~dead, "param_count"].notna().all()
    found = run(make_cfg(["metric=param_count", "task=search", "search_algo=rea", "search_algo.budget_evals=8",
                          *tiny], tmp_path / "s"))
    assert found["metric"] == "param_count" and found["found"]["evaluations"] == 8
    assert "param_count" in expand(["all"]).metrics  # the `all` set is derived from the registry


def test_a_metric_declaring_an_unknown_need_fails_when_it_registers() -> None:
    with pytest.raises(ValueError, match="unknown needs.*'activations'"):
        register_metric("bad_needs", direction=+1, needs=("activations",))(lambda ctx: 0.0)
    assert "bad_needs" not in METRICS


def test_a_metric_traits_are_declared_with_it() -> None:
    assert METRICS.get("ncn").keep_infinite and METRICS.get("ncn").log_axis
    assert not METRICS.get("lga").log_axis and not METRICS.get("naswot").keep_infinite
    assert METRICS.get("ntk_mse").needs_held_out and not METRICS.get("lga").needs_held_out
    net = torch.nn.Linear(2, 2)
    assert param_count(MetricContext(net, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), 2)) == 6.0


def test_the_readmes_layer_list_is_the_one_enforced_here() -> None:
    """README's "Code layout" names the layers in order, separated by '->': the same modules, in the same layers."""
    text = (ROOT / "README.md").read_text()
    start = text.index("Layers, each importing only from those before it")
    sentence = text[text.index("\n", start):text.index(". `config` is", start)]
    readme = [sorted(re.findall(r"`(\w+)`", part)) for part in sentence.split("->")]
    assert readme == [sorted(layer) for layer in LAYERS]
