"""TE-NAS's pruning search: the supernet network (ops averaged, shared weights), the pruning rule (one op per edge per
round by summed ranks of each metric's relative change against the round's supernet, until one op per edge remains)
and a tiny end-to-end run on the shipped NB201 table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ntkexp.benchmarks.groundtruth import read_table
from ntkexp.main import run
from ntkexp.scoring import ArchScorer, RunContext
from ntkexp.search.prune import Draw, dense_ranks, prune_supernet
from ntkexp.spaces.base import InvalidArchError
from ntkexp.spaces.nasbench201 import (EDGES, OPS, NASBench201, NASBench201Supernet, format_supernet, parse_string,
                                       parse_supernet)
from tests.conftest import cli, make_cfg

TARGET = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none")


def keeps_target(state: list[tuple[str, ...]], draw: Draw | None = None) -> dict[str, float]:
    """A made-up metric (higher is better): 1 + how many edges still hold their TARGET op. Removing a TARGET op is
    the only removal that makes the network worse, so pruning must end at TARGET."""
    kept = float(sum(t in ops for t, ops in zip(TARGET, state)))
    return {"good": 1.0 + kept, "bad": -1.0 - kept}


def test_pruning_keeps_the_op_whose_removal_hurts_and_prunes_one_op_per_edge_per_round() -> None:
    calls: list[list[tuple[str, ...]]] = []

    def score(state: list[tuple[str, ...]], draw: Draw) -> dict[str, float]:
        calls.append(state)
        return keeps_target(state)

    ops, rounds = prune_supernet([OPS] * len(EDGES), score, {"good": +1})
    assert tuple(ops) == TARGET
    assert len(rounds) == len(OPS) - 1
    assert all(len(r.pruned) == len(EDGES) for r in rounds)  # one op from every edge in every round
    # every candidate is compared with its round's supernet on one draw: 2 x (30 + 24 + 18 + 12) scores asked for
    assert len(calls) == sum(2 * len(EDGES) * k for k in range(len(OPS), 1, -1))
    for r in rounds:
        assert all(op != TARGET[e] for e, op in r.pruned.items())
    # a lower-is-better metric is oriented, and several metrics' ranks are summed
    assert tuple(prune_supernet([OPS] * len(EDGES), keeps_target, {"bad": -1})[0]) == TARGET
    assert tuple(prune_supernet([OPS] * len(EDGES), keeps_target, {"good": +1, "bad": -1})[0]) == TARGET
    # the wrong orientation prunes each edge's TARGET op in the first round
    _, wrong = prune_supernet([OPS] * len(EDGES), keeps_target, {"good": -1})
    assert tuple(wrong[0].pruned[e] for e in range(len(EDGES))) == TARGET


def test_each_candidate_is_ranked_by_its_change_against_the_same_repeats_supernet() -> None:
    """TE-NAS's Delta: for every repeat, (kappa_0 - kappa) / kappa_0 against the round's supernet in that repeat
    (same init and batch), averaged over repeats; then dense ranks (equal changes share a rank) summed. The values
    below make repeat 1's supernet 10x repeat 0's: unpaired ratios (the mean candidate over the mean supernet) would
    rank edge 0's ops the other way round."""
    base = {0: 1.0, 1: 10.0}
    cond = {("a", 0): 0.5, ("a", 1): 9.9, ("b", 0): 0.99, ("b", 1): 5.0}  # candidate op left on edge 0, repeat

    def score(state: list[tuple[str, ...]], draw: Draw) -> dict[str, float]:
        if len(state[0]) == 2:
            return {"cond": base[draw.repeat]}
        return {"cond": cond[(state[0][0], draw.repeat)]}

    _, rounds = prune_supernet([("a", "b")], score, {"cond": -1}, repeats=2)
    rows = {c["op"]: c for c in rounds[0].candidates}
    # removing 'a' leaves 'b': changes (1 - 0.99)/1 and (10 - 5)/10; removing 'b' leaves 'a': 0.5 and 0.01
    assert rows["a"]["cond_change"] == pytest.approx((0.01 + 0.5) / 2)
    assert rows["b"]["cond_change"] == pytest.approx((0.5 + 0.01) / 2 + 0.0)
    assert dense_ranks([0.3, 0.1, 0.3, float("nan"), 0.2], 10).tolist() == [0, 2, 0, 3, 1]


def test_the_supernets_of_one_repeat_share_their_weights(tmp_path: Path) -> None:
    """A pruned supernet and the one it was pruned from are built with the same weights in a repeat (TE-NAS copies
    the unpruned supernet's weights into each candidate); another repeat re-initialises."""
    ctx = RunContext.build(make_cfg(["device=cpu", "task=prune_search"], tmp_path))
    supernet = NASBench201Supernet(C=3, N=1, universe=OPS[1:])
    scorer = ArchScorer(__import__("dataclasses").replace(ctx, space=supernet))
    full = format_supernet([OPS[1:]] * 6)
    pruned = format_supernet([OPS[1:]] * 5 + [("skip_connect", "nor_conv_3x3")])
    a, b = scorer.build_model(full, 0).state_dict(), scorer.build_model(pruned, 0).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = scorer.build_model(full, 1).state_dict()
    assert any(not torch.equal(a[k], other[k]) for k in a if a[k].is_floating_point() and a[k].numel() > 1)


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
    plain, supernet = NASBench201(C=4, N=1), NASBench201Supernet(C=4, N=1, mix="sum", universe=None, paired=False)
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
    # TE-NAS's supernet averages the ops an edge still holds (its modules for pruned ops stay, unused)
    mean = NASBench201Supernet(C=4, N=1, universe=OPS[1:])
    edge = mean.build(format_supernet([OPS[1:]] * 5 + [("skip_connect", "nor_conv_3x3")]), 10).cells[0].edges[5]
    assert len(edge.ops) == 4 and edge.active == [0, 2]  # skip_connect, nor_conv_3x3 of the 4 held
    torch.testing.assert_close(edge(h), (edge.ops[0](h) + edge.ops[2](h)) / 2)


@pytest.mark.slow
def test_the_pruning_task_ends_with_a_benchmark_arch(tmp_path: Path) -> None:
    cfg = make_cfg(["task=prune_search", "metric=tegnas_paper", "metric.names=[cond,linear_regions]",
                    "metric.repeats=2", "task.prune.C=2", "ntk.batch_size=4", "bn_mode=per_sample",
                    "metric.settings.linear_regions.inputs=50", "logger=csv", "task.progress=false", "threads=1",
                    "device=cpu"], tmp_path)
    run(cfg)
    out = tmp_path / "run"
    summary = json.loads((out / "summary.json").read_text())
    arch = summary["found"]["arch"]
    assert len(parse_string(arch)) == len(EDGES)  # a plain arch: one op per edge
    frame = pd.read_csv(out / "prune_rounds.csv")
    # TE-NAS: 'none' removed first, so 4 ops and 3 rounds (24 + 18 + 12 candidates); 'none' never kept
    assert len(frame) == 54 and frame["pruned"].sum() == 18 and "none" not in set(frame["op"])
    assert frame.groupby("round")["pruned"].sum().tolist() == [6, 6, 6] and "none" not in arch
    gt = read_table(Path(__file__).resolve().parents[1] / "ntkexp" / "resources" / "nb201.npz")
    row = gt.set_index("arch_str").loc[arch]
    assert summary["found"]["accuracy"]["cifar10"] == pytest.approx(float(row["cifar10"]))
    assert summary["driving_metrics"] == ["cond", "linear_regions"] and summary["repeats"] == 2
    # as the released code: each candidate and the round's supernet beside it on a new batch, per repeat
    assert summary["cost"]["supernets_scored"] == 2 * 2 * 54
    assert (summary["weights"], summary["batches"]) == ("per_round", "per_call")
    assert "one weight set per round" in summary["protocol"]
    assert summary["metric"] == "cond+linear_regions"  # named by every driving metric, not the first alone
    assert {"cond", "linear_regions", "cond_change", "linear_regions_change", "rank_sum"} <= set(frame.columns)
    # every pruned op is the lowest rank sum of its edge in its round
    for (_, _), part in frame.groupby(["round", "edge"]):
        assert part.loc[part["pruned"], "rank_sum"].item() == part["rank_sum"].min()


@pytest.mark.parametrize("space", ["nasbench101", "nds_darts"])
def test_the_pruning_task_refuses_another_space_in_one_line_before_loading_anything(tmp_path: Path,
                                                                                     space: str) -> None:
    # no data root: a space check that came after loading the benchmark would report the missing benchmark instead
    proc = cli("task=prune_search", f"search_space={space}", "logger=none", f"paths.data_root={tmp_path / 'nothing'}",
               f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert f"task=prune_search runs on search_space=nasbench201 only, not search_space={space}" in proc.stderr


def test_ranks_are_tenas_released_ranks_of_three_decimal_changes() -> None:
    """prune_tenas.py rounds each repeat's change to 3 decimals before the mean (prune_launch.py: precision=3), sorts
    by the mean at 3 significant figures and gives equal means one rank: changes of 0.10004 and 0.10001 tie; at 10
    significant figures (the old convention) they did not."""
    from ntkexp.search.prune import tenas_ranks

    np.testing.assert_array_equal(tenas_ranks([0.1, 0.3, 0.1, np.nan, 0.2], 3), [2, 0, 2, 3, 1])
    values = {("a", "x"): 1.10004, ("a", "y"): 1.10001, ("a", "z"): 0.5}

    def score(state: list[tuple[str, ...]], draw: Draw) -> dict[str, float]:
        missing = [op for op in ("x", "y", "z") if op not in state[0]]
        return {"m": values[("a", missing[0])] if missing else 1.0}

    _, rounds = prune_supernet([("x", "y", "z")], score, {"m": +1})
    ranks = {c["op"]: c["m_rank"] for c in rounds[0].candidates}
    assert ranks["x"] == ranks["y"] == 0 and ranks["z"] == 1
    _, old = prune_supernet([("x", "y", "z")], score, {"m": +1}, precision=10, rounding="significant")
    assert len({c["m_rank"] for c in old[0].candidates}) == 3
    with pytest.raises(ValueError, match="rounding"):
        prune_supernet([("x", "y")], score, {"m": +1}, rounding="bogus")


def test_the_tenas_preset_runs_the_released_code_init_params_and_rounding() -> None:
    cfg = make_cfg(["experiment=tenas_prune"])
    assert cfg.init.name == "default" and cfg.ntk.params == "weights" and cfg.ntk.bn_mode == "train"
    assert cfg.task.prune.precision == 3 and cfg.task.prune.rounding == "tenas"
    assert (cfg.task.prune.weights, cfg.task.prune.batches) == ("per_round", "per_call")
    assert make_cfg(["experiment=tenas_prune", "init=kaiming", "init.mode=fan_out"]).init.name == "kaiming"


def test_each_candidate_is_compared_with_the_round_supernet_on_its_own_draw() -> None:
    """TE-NAS's released code measures the round's supernet again beside each candidate, on that call's batch: the
    change of a candidate must use the supernet's value of the same draw. Here the draw of candidate i scales every
    value by 10**i; paired, the changes are the ops' own factors (removing b costs least, so b goes); against
    another draw's supernet value c's change would be the largest and c would go."""
    factor = {"a": 0.5, "b": 0.9, "c": 0.7}

    def score(state: list[tuple[str, ...]], draw: Draw) -> dict[str, float]:
        missing = set(factor) - set(state[0])
        return {"m": 10.0 ** draw.candidate * float(np.prod([factor[o] for o in missing]))}

    _, rounds = prune_supernet([("a", "b", "c")], score, {"m": +1}, repeats=2)
    assert rounds[0].pruned == {0: "b"}
    rows = {c["op"]: c for c in rounds[0].candidates}
    assert rows["c"]["m_change"] == pytest.approx(-0.3) and rows["c"]["m_supernet"] == pytest.approx(100.0)


def test_released_code_draws_one_weight_set_per_round_and_a_new_augmented_batch_per_call(tmp_path: Path) -> None:
    """task.prune.weights=per_round: every candidate and repeat of a round on the round's weights, the next round on
    new ones; batches=per_call: each (candidate, repeat) its own training batch, cropped and flipped; both
    per_repeat: the seeds (and so the cache keys) of runs made before the options existed."""
    from ntkexp.scoring import DataDraw
    from ntkexp.tasks.prune_search import DrawScorers, PruneSearchConfig, draw_seeds, repeat_seed

    released = PruneSearchConfig()
    assert (released.weights, released.batches) == ("per_round", "per_call")
    w = {draw_seeds(released, 7, Draw(1, r, i))[0] for r in range(3) for i in range(5)}
    assert len(w) == 1 and draw_seeds(released, 7, Draw(2, 0, 0))[0] not in w
    data = [draw_seeds(released, 7, Draw(1, r, i))[1] for r in range(3) for i in range(5)]
    assert len({d.seed for d in data}) == 15 and all(d.augment for d in data)
    old = PruneSearchConfig(weights="per_repeat", batches="per_repeat")
    assert [draw_seeds(old, 7, Draw(k, r, i)) for k, r, i in ((1, 0, 0), (3, 2, 4))] == [(7, None),
                                                                                          (repeat_seed(7, 2), None)]
    fixed = PruneSearchConfig(batches="per_repeat")
    assert draw_seeds(fixed, 7, Draw(2, 1, 3))[1] == draw_seeds(fixed, 7, Draw(2, 1, 0))[1] == DataDraw(
        repeat_seed(7, 1))
    with pytest.raises(ValueError, match="task.prune.weights"):
        draw_seeds(PruneSearchConfig(weights="per_candidate"), 7, Draw(1, 0, 0))

    ctx = RunContext.build(make_cfg(["device=cpu", "task=prune_search", "ntk.batch_size=4", "metric=cond",
                                     "task.prune.batches=per_repeat", "bn_mode=per_sample"], tmp_path))
    supernet = NASBench201Supernet(C=2, N=1, universe=OPS[1:])
    from ntkexp.scoring import Progress

    progress = Progress(2, "scoring supernets", interactive=False)
    scorers = DrawScorers(ctx, supernet, ["cond"], progress)
    state = [OPS[1:]] * 6
    first, again = scorers(state, Draw(1, 0, 0)), scorers(state, Draw(1, 0, 5))  # same weights and data
    assert first == again and len(scorers.seconds) == 1
    assert (progress.done, progress.computed) == (2, 1)  # the second answered without computing
    # the augmented batch: the same images as the un-augmented draw of that seed, cropped and flipped
    plain_x, plain_y = ctx.data.probe_batch(16, 3)
    aug_x, aug_y = ctx.data.probe_batch(16, 3, augment=True)
    assert torch.equal(plain_y, aug_y) and not torch.equal(plain_x, aug_x)
    quiet = __import__("dataclasses").replace(ctx.data.cfg, crop_padding=0, flip=False)
    ctx.data.cfg = quiet
    assert torch.equal(ctx.data.probe_batch(16, 3, augment=True)[0], plain_x)
    assert ArchScorer(ctx, draw=None).conventions.keys() < ArchScorer(ctx, draw=DataDraw(3, True)).conventions.keys()
