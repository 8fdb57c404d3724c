"""TE-NAS's pruning search: the supernet network, the pruning rule (one op per edge per round by summed metric ranks,
until one op per edge remains) and a tiny end-to-end run on the shipped NB201 table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from ntkexp.main import run
from ntkexp.search.prune import prune_supernet
from ntkexp.spaces.base import InvalidArchError
from ntkexp.spaces.nasbench201 import (EDGES, OPS, NASBench201, NASBench201Supernet, format_supernet, parse_string,
                                       parse_supernet)
from tests.conftest import ROOT, make_cfg

TARGET = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none")


def keeps_target(state: list[tuple[str, ...]]) -> dict[str, float]:
    """A made-up metric (higher is better): how many edges still hold their TARGET op. Removing a TARGET op is the
    only removal that makes the network worse, so pruning must end at TARGET."""
    return {"good": float(sum(t in ops for t, ops in zip(TARGET, state))),
            "bad": -float(sum(t in ops for t, ops in zip(TARGET, state)))}


def test_pruning_keeps_the_op_whose_removal_hurts_and_prunes_one_op_per_edge_per_round() -> None:
    calls: list[list[tuple[str, ...]]] = []

    def score(state: list[tuple[str, ...]]) -> dict[str, float]:
        calls.append(state)
        return keeps_target(state)

    ops, rounds = prune_supernet([OPS] * len(EDGES), score, {"good": +1})
    assert tuple(ops) == TARGET
    assert len(rounds) == len(OPS) - 1
    assert all(len(r.pruned) == len(EDGES) for r in rounds)  # one op from every edge in every round
    assert len(calls) == sum(len(EDGES) * k for k in range(len(OPS), 1, -1))  # 30 + 24 + 18 + 12 supernets
    for r in rounds:
        assert all(op != TARGET[e] for e, op in r.pruned.items())
    # a lower-is-better metric is oriented, and several metrics' ranks are summed
    assert tuple(prune_supernet([OPS] * len(EDGES), keeps_target, {"bad": -1})[0]) == TARGET
    assert tuple(prune_supernet([OPS] * len(EDGES), keeps_target, {"good": +1, "bad": -1})[0]) == TARGET
    # the wrong orientation prunes each edge's TARGET op in the first round
    _, wrong = prune_supernet([OPS] * len(EDGES), keeps_target, {"good": -1})
    assert tuple(wrong[0].pruned[e] for e in range(len(EDGES))) == TARGET


def test_pruning_refuses_an_empty_edge_or_no_metric() -> None:
    with pytest.raises(ValueError, match="at least one metric"):
        prune_supernet([OPS] * 6, keeps_target, {})
    with pytest.raises(ValueError, match="at least one op"):
        prune_supernet([OPS] * 5 + [()], keeps_target, {"good": 1})


def test_supernet_strings_round_trip_and_bad_ones_are_refused() -> None:
    sets = [("none", "skip_connect"), OPS, ("nor_conv_3x3",), ("avg_pool_3x3", "nor_conv_1x1"), OPS, ("none",)]
    text = format_supernet(sets)
    assert parse_supernet(text) == tuple(tuple(o for o in OPS if o in s) for s in sets)
    single = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|"
    assert parse_supernet(single) == tuple((op,) for op in parse_string(single))
    for bad in ("|~0|+|none~0|none~1|+|none~0|none~1|none~2|", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                "|none,none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "|none~0|+|none~0|"):
        with pytest.raises(InvalidArchError):
            parse_supernet(bad)


def test_a_supernet_edge_sums_its_ops_and_a_one_op_supernet_is_the_network() -> None:
    x = torch.randn(4, 3, 16, 16)
    plain, supernet = NASBench201(C=4, N=1), NASBench201Supernet(C=4, N=1)
    arch = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
    torch.manual_seed(0)
    a = plain.build(arch, 10).eval()
    torch.manual_seed(0)
    b = supernet.build(format_supernet([(op,) for op in parse_string(arch)]), 10).eval()
    torch.testing.assert_close(a(x), b(x))
    # adding `none` to every edge changes nothing (it outputs zeros); adding skip_connect does
    torch.manual_seed(0)
    c = supernet.build(format_supernet([(op, "none") for op in parse_string(arch)]), 10).eval()
    torch.testing.assert_close(a(x), c(x))
    cell = supernet.build(format_supernet([OPS] * 6), 10).cells[0]
    edge = cell.edges[0]
    h = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(edge(h), sum(op(h) for op in edge.ops))
    assert len(edge.ops) == len(OPS)


@pytest.mark.slow
def test_the_pruning_task_ends_with_a_benchmark_arch(tmp_path: Path) -> None:
    cfg = make_cfg(["task=prune_search", "metric=tegnas_paper", "metric.names=[cond,linear_regions]",
                    "metric.repeats=1", "search_space.kwargs.C=2", "search_space.kwargs.N=1", "ntk.batch_size=4",
                    "metric.linear_regions.inputs=50", "logger=csv", "task.progress=false", "threads=1",
                    "device=cpu"], tmp_path)
    run(cfg)
    out = tmp_path / "run"
    summary = json.loads((out / "summary.json").read_text())
    arch = summary["found"]["arch"]
    assert len(parse_string(arch)) == len(EDGES)  # a plain arch: one op per edge
    frame = pd.read_csv(out / "prune_rounds.csv")
    assert len(frame) == 84 and frame["pruned"].sum() == 24
    assert frame.groupby("round")["pruned"].sum().tolist() == [6, 6, 6, 6]
    gt = pd.read_parquet(Path(__file__).resolve().parents[1] / "ntkexp" / "resources" / "nb201.parquet")
    row = gt.set_index("arch_str").loc[arch]
    assert summary["found"]["accuracy"]["cifar10"] == pytest.approx(float(row["cifar10"]))
    assert summary["driving_metrics"] == ["cond", "linear_regions"] and summary["cost"]["supernets_scored"] == 84
    assert summary["metric"] == "cond+linear_regions"  # named by every driving metric, not the first alone
    assert {"cond", "linear_regions", "rank_sum"} <= set(frame.columns)
    # every pruned op is the lowest rank sum of its edge in its round
    for (_, _), part in frame.groupby(["round", "edge"]):
        assert part.loc[part["pruned"], "rank_sum"].item() == part["rank_sum"].min()


@pytest.mark.parametrize("space", ["nasbench101", "nds_darts"])
def test_the_pruning_task_refuses_another_space_in_one_line_before_loading_anything(tmp_path: Path,
                                                                                     space: str) -> None:
    # no data root: a space check that came after loading the benchmark would report the missing benchmark instead
    proc = subprocess.run([sys.executable, "run.py", "task=prune_search", f"search_space={space}", "logger=none",
                           f"paths.data_root={tmp_path / 'nothing'}", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert f"task=prune_search runs on search_space=nasbench201 only, not search_space={space}" in proc.stderr
