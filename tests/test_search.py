"""Search algorithms on the tiny fixture benchmark and the shipped NB201 table: budget, no re-scoring, oracle sanity, end to
end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ntkexp.benchmarks import BenchmarkConfig, load_ground_truth
from ntkexp.main import run
from ntkexp.config import SearchAlgoConfig
from ntkexp.search.base import algo_settings
from ntkexp.search import SEARCH_ALGOS, OracleGuide, SearchContext
from ntkexp.spaces import NASBench201

from .conftest import DIGITS_TABLE, make_cfg

GT = load_ground_truth(BenchmarkConfig(table=str(DIGITS_TABLE)))
SPACE = NASBench201(C=8, N=1)


def _oracle_search(name: str, seed: int, budget: int = 30) -> tuple[SearchContext, str, OracleGuide]:
    scorer = OracleGuide(GT, "digits")
    ctx = SearchContext(SPACE, scorer, algo_settings(name, budget_evals=budget), seed, GT, "digits",
                        candidates=GT.archs())
    return ctx, SEARCH_ALGOS.get(name)(ctx), scorer


class CountingScorer(OracleGuide):
    """Counts how often each arch reaches the underlying scoring."""

    def __init__(self) -> None:
        super().__init__(GT, "digits")
        self.per_arch: dict[str, int] = {}

    def _score(self, arch: str) -> tuple[dict[str, float], float, float]:
        self.per_arch[arch] = self.per_arch.get(arch, 0) + 1
        return super()._score(arch)


@pytest.mark.parametrize("name", ["random", "rea", "reinforce"])
def test_budget_is_respected_and_no_arch_is_scored_twice(name: str) -> None:
    scorer = CountingScorer()
    ctx = SearchContext(SPACE, scorer, algo_settings(name, budget_evals=25), 0, GT, "digits",
                        candidates=GT.archs())
    found = SEARCH_ALGOS.get(name)(ctx)
    assert scorer.cost.evaluations <= 25 and len(ctx.evaluated) == scorer.cost.evaluations
    assert all(count == 1 for count in scorer.per_arch.values())
    assert found in ctx.evaluated
    assert found == max(ctx.evaluated, key=lambda a: GT.accuracy([a], "digits")[0])  # the oracle picks the best seen
    curve = pd.DataFrame(ctx.curve)
    assert curve["best_accuracy"].is_monotonic_increasing  # best-so-far never gets worse


SHIPPED = load_ground_truth(BenchmarkConfig(table="pkg://nb201.npz"))


def _shipped_oracle(name: str, seed: int, budget: int = 300) -> float:
    """The 200-epoch CIFAR-10 test accuracy of the arch ``name`` finds with the benchmark itself as the metric."""
    scorer = OracleGuide(SHIPPED, "cifar10")
    # lr 0.01 (NATS-Bench's): the test is of learning at all; the presets' 0.5 (NB201's REINFORCE.sh) learns less
    # in 300 evaluations (as the paper's REINFORCE row shows)
    lr = {"lr": 0.01} if name == "reinforce" else {}
    ctx = SearchContext(NASBench201(), scorer, algo_settings(name, budget_evals=budget, **lr), seed,
                        SHIPPED, "cifar10")
    return float(SHIPPED.accuracy([SEARCH_ALGOS.get(name)(ctx)], "cifar10")[0])


@pytest.mark.parametrize("name", ["rea", "reinforce"])
def test_with_the_oracle_rea_and_reinforce_beat_random_search_on_the_shipped_nb201(name: str) -> None:
    """The whole NB201 space (the shipped 200-epoch CIFAR-10 accuracies), 300 evaluations, 10 seeds: measured means
    RS 93.98, REA 94.34, REINFORCE 94.23 (std of a mean about 0.06). A tournament that breeds from its worst member,
    or a policy step with its sign flipped, falls to random search's level or below."""
    seeds = range(10)
    random = np.mean([_shipped_oracle("random", s) for s in seeds])
    guided = np.mean([_shipped_oracle(name, s) for s in seeds])
    assert guided > random + 0.15, (name, guided, random)


def test_oracle_searches_reach_the_top_decile_of_the_fixture_benchmark() -> None:
    top_decile = GT.frame["digits"].quantile(0.9)
    for name in ("random", "rea", "reinforce"):
        for seed in range(5):
            assert GT.accuracy([_oracle_search(name, seed)[1]], "digits")[0] >= top_decile


def test_restricted_mutation_stays_in_the_benchmark_and_moves() -> None:
    ctx, _, _ = _oracle_search("random", 0, budget=1)
    archs = set(GT.archs())
    for arch in list(archs)[:20]:
        child = ctx.mutate(arch)
        assert child in archs and child != arch
        assert ctx.from_code(SPACE.encode(arch)) == arch


def test_unrestricted_rea_mutates_in_the_whole_space() -> None:
    ctx = SearchContext(SPACE, OracleGuide(GT, "digits"), SearchAlgoConfig(budget_evals=5), 0)
    child = ctx.mutate(SPACE.arch_of(0))
    assert sum(a != b for a, b in zip(SPACE.encode(child), SPACE.encode(SPACE.arch_of(0)))) == 1


def test_budget_in_seconds_stops_the_search(tmp_path: Path) -> None:
    cfg = make_cfg(["task=search", "search_algo=rea", "search_algo.budget_evals=1000",
                    "search_algo.budget_score_seconds=0.5", "ntk.batch_size=8", "logger=csv", "threads=1",
                    "use_cache=false"], tmp_path)
    summary = run(cfg)
    assert summary["found"]["evaluations"] < 1000
    assert summary["found"]["score_seconds"] >= 0.5


@pytest.mark.parametrize("algo", ["random", "rea", "reinforce"])
def test_search_task_end_to_end(tmp_path: Path, algo: str) -> None:
    cfg = make_cfg(["task=search", f"search_algo={algo}", "search_algo.budget_evals=12", "ntk.batch_size=8",
                    "logger=csv", "threads=1"], tmp_path)
    summary = run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["found"]["arch"] == summary["found"]["arch"]
    assert saved["found"]["evaluations"] == 12 and saved["oracle"]["evaluations"] == 12
    curve = pd.read_csv(run_dir / "search_curve.csv")
    oracle_curve = curve[curve["run"] == f"{algo}+oracle"]
    # the oracle's run returns the best arch it evaluated (by the benchmark's accuracy itself)
    assert saved["oracle"]["accuracy"]["cifar10"] == pytest.approx(oracle_curve["best_accuracy"].max())
    if algo == "random":  # the same draws: the oracle's pick is at least as good as the metric's
        assert saved["oracle"]["accuracy"]["cifar10"] >= saved["found"]["accuracy"]["cifar10"] - 1e-9
    assert set(curve["run"]) == {f"{algo}+lga", f"{algo}+oracle"}
    assert (run_dir / "search_curve.png").stat().st_size > 1000


def test_search_with_a_metric_combination(tmp_path: Path) -> None:
    cfg = make_cfg(["task=search", "metric=ntk_score", "search_algo.budget_evals=6", "ntk.batch_size=8",
                    "logger=csv", "threads=1"], tmp_path)
    summary = run(cfg)
    assert summary["components"] == ["s_t", "s_e", "s_g"] and summary["metric"] == "ntk_score"


def test_a_metric_guided_search_logs_its_progress(caplog: pytest.LogCaptureFixture) -> None:
    class MetricLike(OracleGuide):  # scores like a metric (not free, 1 s each), values taken from the table
        free = False

        def _score(self, arch: str) -> tuple[dict[str, float], float, float]:
            return super()._score(arch)[0], 1.0, 1.0

    ctx = SearchContext(SPACE, MetricLike(GT, "digits"), algo_settings("random", budget_evals=20), 0, GT, "digits",
                        candidates=GT.archs(), label="random+demo")
    with caplog.at_level("INFO", logger="ntkexp"):
        SEARCH_ALGOS.get("random")(ctx)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("random+demo:")]
    assert len(lines) == 10 and "20/20 done" in lines[-1] and "the metric's pick so far" in lines[-1]
    caplog.clear()
    with caplog.at_level("INFO", logger="ntkexp"):  # the oracle costs nothing: no progress lines
        _oracle_search("random", 0, budget=20)
    assert not [r for r in caplog.records if "done" in r.getMessage()]


@pytest.mark.parametrize("name", ["random", "rea", "reinforce"])
def test_the_same_seed_repeats_the_search_and_another_seed_does_not(name: str) -> None:
    def evaluated(seed: int) -> list[str]:
        ctx = SearchContext(NASBench201(), OracleGuide(SHIPPED, "cifar10"),
                            algo_settings(name, budget_evals=40), seed, SHIPPED, "cifar10")
        SEARCH_ALGOS.get(name)(ctx)
        return list(ctx.evaluated)

    assert evaluated(3) == evaluated(3) != evaluated(4)


def test_hyperband_returns_the_best_at_the_largest_budget_when_the_budget_ends_mid_bracket() -> None:
    """hpbandster's incumbent is the best arch evaluated at max_budget. Here every new arch is better than all before
    it, and the budget ends inside the second bracket's first stage: the better archs seen there never reached the
    largest budget, so the incumbent is the first bracket's top arch ("best at any budget" would differ)."""
    from ntkexp.search.hyperband import hyperband
    from ntkexp.search.guides import BudgetExhausted, Guide

    class Rising(Guide):
        remember = False  # every evaluation is made and counted, as under the simulated clock

        def __init__(self, limit: int) -> None:
            super().__init__()
            self.names, self.limit, self.order = ["valid"], limit, {}

        def _score(self, arch: str) -> tuple[dict[str, float], float, float]:
            if self.cost.evaluations >= self.limit:
                raise BudgetExhausted("over")
            self.order.setdefault(arch, len(self.order))
            return {"valid": float(self.order[arch])}, 1.0, 0.0

        def direction(self, name: str) -> int:
            return 1

    guide = Rising(limit=13 + 2)  # bracket 1: 9 + 3 + 1 evaluations; then 2 of bracket 2's first stage
    ctx = SearchContext(NASBench201(), guide, algo_settings("hb", budget_evals=None), 0, progress=False)
    found = hyperband(ctx, lambda budget: ctx.space.sample(ctx.rng))
    top = [a for a, i in guide.order.items() if i < 9]
    best_of_first = max(top, key=lambda a: guide.order[a])  # the last of bracket 1's first stage: promoted to the top
    assert found == best_of_first
    assert guide.order[found] < max(guide.order.values())  # a better arch was seen, below the largest budget
