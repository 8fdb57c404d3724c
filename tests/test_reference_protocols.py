"""The reference protocols, as the papers and their code run them: TE-NAS linear regions, TEG-NAS repeats and init,
the REINFORCE reward and presets, GradSign's reference convention, honest search costs, search on every space family."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ntkexp.benchmarks import BenchmarkConfig, load_ground_truth
from ntkexp.search.base import algo_settings
from ntkexp.main import run
from ntkexp.metrics import LinearRegionsConfig, MetricContext, compute_metrics
from ntkexp.metrics.tegnas import tenas_crops
from ntkexp.ntk import NTKConfig
from ntkexp.scoring import ArchScorer, RunContext
from ntkexp.search import SEARCH_ALGOS, OracleGuide, SearchContext
from ntkexp.search.algorithms import step_difference
from ntkexp.spaces import NASBench101, NASBench201, NDSSpace
from ntkexp.spaces.nds import parse_genotype

from .conftest import DIGITS, make_cfg

TINY = ["ntk.batch_size=8", "logger=csv", "task.progress=false", "threads=1"]


# --------------------------------------------------------------------------------------- 1. linear regions (TE-NAS)
def test_linear_regions_vary_across_nb201_archs_and_exceed_the_probe_batch(tmp_path: Path) -> None:
    summary = run(make_cfg(["metric=linear_regions", "n_archs=12", *TINY], tmp_path))
    counts = pd.read_csv(tmp_path / "run" / "scores.csv")["linear_regions"]
    assert counts.max() > 8 * 10  # far beyond the 8 probe images: counted over 3 x 1,000 crops
    assert counts.nunique() >= 8  # it tells archs apart
    assert summary["conventions"]["metric_settings"]["linear_regions"]["protocol"] == "tenas"


def test_the_region_counter_on_a_line_where_regions_are_intervals() -> None:
    """A one-hidden-layer ReLU net on the interval [-3, 3]: its regions are the pieces between the units' kinks."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(1, 9), nn.ReLU(), nn.Linear(9, 2)).double()
    w, b = net[0].weight.detach().numpy()[:, 0], net[0].bias.detach().numpy()
    kinks = -b / w
    expected = int(np.sum((kinks > -3) & (kinks < 3))) + 1
    line = torch.linspace(-3, 3, 6001, dtype=torch.float64)[:, None]
    ctx = MetricContext(net, line[:4], torch.zeros(4, dtype=torch.long), 2, NTKConfig(dtype="float64"),
                        inputs={"linear_regions": (None, line)})
    assert compute_metrics(["linear_regions"], ctx)["linear_regions"] == expected


def test_tenas_crops_are_pooled_one_channel_and_fixed_by_seed(tmp_path: Path) -> None:
    ctx = RunContext.build(make_cfg(["metric=linear_regions", *TINY], tmp_path), need_ground_truth=False)
    images, cfg = ctx.data.train_tensors[0], LinearRegionsConfig()
    crops = tenas_crops(images, cfg, 1, 0, 0)
    assert crops.shape == (3000, 1, 3, 3)
    assert torch.equal(crops, tenas_crops(images, cfg, 1, 0, 0)) and not torch.equal(crops, tenas_crops(images, cfg, 1, 0, 1))
    thin = NASBench201().thin_network(NASBench201().arch_of(7), 10)
    assert thin(crops[:5]).shape == (5, 10)
    assert sum(isinstance(m, nn.Conv2d) and m.in_channels == 3 for m in thin.modules()) == 0  # no stem


# --------------------------------------------------------------------------------------- 2. TEG-NAS preset, repeats
def test_the_tegnas_preset_follows_the_paper() -> None:
    cfg = make_cfg(["metric=tegnas_paper"])
    assert cfg.init.name == "kaiming" and cfg.ntk.bn_mode == "train" and cfg.metric.repeats == 3
    assert list(cfg.metric.names) == ["tegnas", "cond", "linear_regions", "ntk_mse"]
    assert cfg.metric.settings.linear_regions.protocol == "tenas"


def test_repeats_average_independent_batches_and_inits(tmp_path: Path) -> None:
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    one = ArchScorer(RunContext.build(make_cfg(["metric=ntk", *TINY], tmp_path / "a"), need_ground_truth=False))
    three = ArchScorer(RunContext.build(make_cfg(["metric=ntk", "metric.repeats=3", *TINY], tmp_path / "b"),
                                        need_ground_truth=False))
    single = one.score(arch).values
    parts = []
    for repeat in range(3):  # each repeat: its own initialisation and probe batch, measured on its own
        x, y, _, _ = three._probe(repeat)
        ctx = MetricContext(three.build_model(arch, repeat), x, y, 10, three.ctx.ntk)
        parts.append(compute_metrics(["lga", "fnorm"], ctx))
    assert parts[0]["lga"] == single["lga"] and parts[1]["lga"] != parts[0]["lga"]
    averaged = three.score(arch).values
    for name in ("lga", "fnorm"):
        assert averaged[name] == pytest.approx(np.mean([p[name] for p in parts]), rel=1e-12)


def test_the_one_line_convention_names_what_a_metric_computes_its_own_way(tmp_path: Path) -> None:
    def convention(*overrides: str) -> str:
        cfg = make_cfg([*overrides, *TINY], tmp_path / str(len(list(tmp_path.iterdir()))))
        return ArchScorer(RunContext.build(cfg, need_ground_truth=False)).description(0)["convention"]

    plain = convention("metric=ntk")
    assert "params all" in plain and "gradsign" not in plain and "repeats" not in plain
    line = convention("metric=gradsign")
    assert "params all" in line and "gradsign: params conv_linear_weights, bn_mode per_sample" in line
    assert "gradsign: params ntk, bn_mode ntk" in convention("metric=gradsign", "metric.settings.gradsign.params=ntk",
                                                             "metric.settings.gradsign.bn_mode=ntk")
    paper = convention("metric=tegnas_paper")
    assert "linear_regions: protocol tenas, inputs 1000, batches 3, crop 3" in paper
    assert "averaged over 3 repeats" in paper


# --------------------------------------------------------------------------------------- 3. REINFORCE and presets
def test_the_reinforce_reward_is_teg_nas_equation_16() -> None:
    assert step_difference([5.0], 5.0) == 0.0  # the first step has no previous value
    assert step_difference([1.0, 3.0, 2.0], 2.0) == pytest.approx((2 - 3) / (3 - 1))
    assert step_difference([1.0, 3.0, 7.0], 7.0) == pytest.approx((7 - 3) / (7 - 1))
    assert step_difference([2.0, 2.0], 2.0) == 0.0


@pytest.mark.parametrize("preset, expected", [
    ("reinforce_tegnas", {"iterations": 500, "lr": 0.04, "ema": 0.9, "reward": "step_difference",
                          "derive": "policy_argmax"}),
    ("rea_tegnas", {"population_size": 256, "sample_size": 64, "iterations": 1000, "derive": "population"}),
    ("rea", {"population_size": 10, "sample_size": 3}),
])
def test_search_presets_carry_the_papers_settings(preset: str, expected: dict) -> None:
    cfg = make_cfg([f"search_algo={preset}"])
    assert {k: cfg.search_algo[k] for k in expected} == expected


def test_reinforce_returns_its_policy_argmax_cleanly() -> None:
    gt = load_ground_truth(BenchmarkConfig(table="pkg://nb201.npz"))
    space = NASBench201()
    cfg = algo_settings("reinforce", budget_evals=60, iterations=60, lr=0.5, derive="policy_argmax")
    ctx = SearchContext(space, OracleGuide(gt, "cifar10"), cfg, 0, gt, "cifar10")
    found = SEARCH_ALGOS.get("reinforce")(ctx)
    assert found == ctx.details["policy_argmax"] and ctx.details["iterations"] == 60
    assert space.validate(found) == found


# --------------------------------------------------------------------------------------- 4. honest search costs
def test_a_search_pays_for_its_metric_only_and_baselines_get_its_budget(tmp_path: Path) -> None:
    cfg = make_cfg(["task=search", "metric=ntk", "search_algo=rea", "search_algo.budget_evals=500",
                    "search_algo.budget_score_seconds=1.0", "use_cache=false", *TINY], tmp_path)
    summary = run(cfg)
    assert summary["metric"] == "lga" and summary["components"] == ["lga"]  # not fnorm, mean, ncn too
    made = summary["found"]["evaluations"]
    assert made < 500 and summary["oracle"]["evaluations"] == made and summary["random_arch_draws"] == made
    assert set(summary["found"]["accuracy"]) == {"cifar10", "cifar100", "ImageNet16-120"}  # accuracies only
    cost = summary["cost"]
    assert cost["device"].startswith("cpu") and cost["score_seconds"] >= 1.0
    assert cost["benchmark_training_seconds"] > 100 * cost["score_seconds"] and cost["speedup_over_training"] > 100


# --------------------------------------------------------------------------------------- 5. GradSign's convention
def test_gradsign_by_default_is_its_reference_code(tmp_path: Path) -> None:
    """An independent loop: one forward pass per sample (train mode), the Conv/Linear weights' gradients only."""
    torch.manual_seed(0)
    net = NASBench201(C=4, N=1).build(NASBench201().arch_of(321), num_classes=10).double()
    x, y = torch.randn(6, 3, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 4, 5])
    weights = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    net.train()
    rows = []
    for i in range(6):
        loss = F.cross_entropy(net(x[i:i + 1]), y[i:i + 1])
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, weights)]))
    signs = torch.sign(torch.stack(rows))
    reference = float(signs.sum(0).abs().sum())
    value = compute_metrics(["gradsign"], MetricContext(net, x, y, 10, NTKConfig(bn_mode="train", dtype="float64")))
    # a sign can differ between two exact computations only where the gradient is a rounding error away from 0
    # (exact zeros are zero in both); each such entry moves the sum by at most 2
    magnitude = torch.stack(rows).abs()
    ambiguous = int(((magnitude > 0) & (magnitude < 1e-12)).sum())
    assert value["gradsign"] == pytest.approx(reference, abs=2 * ambiguous + 1e-9)


# --------------------------------------------------------------------------------------- 7. search on every space
def _nb101_table(path: Path, n: int = 12) -> None:
    space, rng = NASBench101(stem_channels=8, num_stacks=1, cells_per_stack=1), np.random.default_rng(0)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(3 * n)))[:n]
    pd.DataFrame({"arch_str": archs, "cifar10_valid": rng.uniform(80, 95, len(archs))}).to_csv(path, index=False)


def _nds_file(path: Path, n: int = 10) -> None:
    space, rng = NDSSpace("enas", C=4, layers=3), np.random.default_rng(0)
    records = []
    for k in range(n):
        geno = parse_genotype(space.sample(rng))
        records.append({"net": {"genotype": geno, "width": 4, "depth": 3}, "test_ep_top1": [50.0, 5.0 + k]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))


@pytest.mark.parametrize("algo", ["random", "rea", "reinforce"])
@pytest.mark.parametrize("family", ["nasbench201", "nasbench101", "nds"])
def test_every_search_algorithm_runs_on_every_space_family(tmp_path: Path, family: str, algo: str) -> None:
    args = [f"search_algo={algo}", "search_algo.budget_evals=4", "metric=grad_norm", "task=search", *TINY]
    if family == "nasbench101":
        _nb101_table(tmp_path / "nb101.csv")
        args += ["search_space=nasbench101", f"search_space.benchmark.table={tmp_path / 'nb101.csv'}",
                 "search_space.benchmark.source=null",
                 "search_space.benchmark.expected_rows=null", "search_space.kwargs.stem_channels=8",
                 "search_space.kwargs.num_stacks=1", "search_space.kwargs.cells_per_stack=1"]
    elif family == "nds":
        _nds_file(tmp_path / "data" / "nds" / "ENAS.json")
        args += ["search_space=nds_enas", f"paths.data_root={tmp_path / 'data'}"]
    summary = run(make_cfg(args, tmp_path))
    assert summary["found"]["evaluations"] == 4 and np.isfinite(summary["found"]["accuracy"]["cifar10"])
    assert summary["restricted_to_benchmark"] == (family != "nasbench201")


def test_lga_t_search_on_the_fixture_trains_each_candidate_once(tmp_path: Path) -> None:
    summary = run(make_cfg([*DIGITS, "task=search", "metric=lga", "metric.train_epochs=1", "search_algo.budget_evals=3",
                            "dataset.train_subset=128", "trainer.batch_size=64", *TINY], tmp_path))
    assert summary["found"]["evaluations"] == 3 and summary["cost"]["score_seconds"] > 0


# --------------------------------------------------------------------- NB201's / GradSign's search code, second pass
def test_the_nb201_and_gradsign_presets_run_reinforce_at_lr_one_half() -> None:
    """NB201's documented `REINFORCE.sh cifar10 0.5 -1` (which GradSign's README runs): lr 0.5, for REINFORCE and
    G-REINFORCE alike (one setting serves both)."""
    from omegaconf import OmegaConf

    from ntkexp.tasks.simulated_search import algorithm_settings

    for overrides in (["task=simulated_search"], ["experiment=gradsign_table55"], ["experiment=gradsign_table55_cpu"]):
        cfg = make_cfg(overrides)
        settings = algorithm_settings(OmegaConf.to_container(cfg.task.algorithms), cfg.search_algo, {"reinforce"})
        assert settings["reinforce"].lr == 0.5, overrides
    changed = make_cfg(["task=simulated_search", "++task.algorithms.reinforce.lr=0.01"])  # as the command line adds it
    assert algorithm_settings(OmegaConf.to_container(changed.task.algorithms), changed.search_algo,
                              {"reinforce"})["reinforce"].lr == 0.01


def test_the_rea_tournament_draws_with_replacement() -> None:
    """With replacement, a tournament of 3 from a population of 3 misses the best member with probability
    (2/3)^3 = 0.296 (without replacement: never)."""
    from ntkexp.search.algorithms import tournament

    rng = np.random.default_rng(0)
    misses = np.mean(["best" not in tournament(["best", "b", "c"], 3, rng) for _ in range(20000)])
    assert misses == pytest.approx((2 / 3) ** 3, abs=0.01)


def test_nb201_mutation_picks_a_node_then_one_of_its_edges() -> None:
    """R_EA.py's mutate_arch_func: a node uniformly (1, 2, 3), then one of its incoming edges: edge 1<-0 changes with
    probability 1/3, each of node 2's two edges 1/6, each of node 3's three 1/9 (uniform over edges: 1/6 each)."""
    from ntkexp.spaces.nasbench201 import parse_string

    space, rng = NASBench201(), np.random.default_rng(0)
    arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    counts = np.zeros(6)
    for _ in range(18000):
        child = parse_string(space.mutate(arch, rng))
        changed = [i for i, op in enumerate(child) if op != "none"]
        assert len(changed) == 1
        counts[changed[0]] += 1
    np.testing.assert_allclose(counts / counts.sum(), [1 / 3, 1 / 6, 1 / 6, 1 / 9, 1 / 9, 1 / 9], atol=0.012)


class _CostlyBest:
    """A three-arch benchmark whose best arch ('c') costs more than the whole budget: querying it always crosses."""

    dataset = "fabricated"
    accuracy = {"a": 10.0, "b": 50.0, "c": 90.0}
    cost = {"a": 1.0, "b": 1.0, "c": 1000.0}

    def __init__(self, budget: float) -> None:
        self.budget_seconds, self.spent, self.archs, self.charges, self.refused = budget, 0.0, [], [], None

    def exhausted(self) -> bool:
        return self.spent >= self.budget_seconds

    def evaluate(self, arch: str, epochs: int = 12) -> float:
        from ntkexp.search.guides import BudgetExhausted

        if self.spent + self.cost[arch] > self.budget_seconds:
            self.refused = arch
            raise BudgetExhausted("over")
        self.spent += self.cost[arch]
        self.archs.append(arch)
        self.charges.append(self.cost[arch])
        return self.answer(arch)

    def answer(self, arch: str, epochs: int = 12) -> float:
        return self.accuracy[arch]


@pytest.mark.parametrize("algo, keeps", [("reinforce", True), ("random", False), ("rea", False)])
def test_reinforce_alone_keeps_the_arch_that_crossed_the_budget(algo: str, keeps: bool) -> None:
    """NB201's reinforce.py appends the arch whose training crosses the budget to its trace before the check, so it
    can be returned (uncharged); R_EA.py and random search drop it."""
    from ntkexp.search import ClockGuide

    from .test_simulated_search import ThreeArchs

    for seed in range(5):
        clock = _CostlyBest(budget=200.0)
        ctx = SearchContext(ThreeArchs(), ClockGuide(clock), algo_settings(algo, budget_evals=None),
                            np.random.default_rng(seed), progress=False)
        try:
            found = SEARCH_ALGOS.get(algo)(ctx)
        except RuntimeError:  # its very first query crossed: it evaluated nothing
            assert not keeps and not clock.archs
            continue
        assert clock.refused == "c" and "c" not in clock.archs and clock.spent <= 200.0  # never charged
        assert (found == "c") is keeps, (seed, found)


def test_hyperband_proposes_each_configuration_after_the_previous_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """As hpbandster runs a bracket with one worker: propose, evaluate, tell, then the next proposal (not a bracket's
    proposals drawn up front), and BOHB's KDE told every result at its budget (22.2, 66.7 and 200 epochs)."""
    from hpbandster.optimizers.config_generators.bohb import BOHB as KDEGenerator

    from ntkexp.search import ClockGuide, SimulatedTraining
    from ntkexp.search.hyperband import hyperband

    gt = load_ground_truth(BenchmarkConfig(table="pkg://nb201.npz"))
    events: list[str] = []
    ctx = SearchContext(NASBench201(), ClockGuide(SimulatedTraining(gt, "cifar10", 4000.0)),
                        algo_settings("hb", budget_evals=None), np.random.default_rng(0), progress=False)
    hyperband(ctx, lambda budget: events.append("propose") or ctx.draw(),
              lambda arch, value, budget: events.append("told"))
    assert events[:6] == ["propose", "told"] * 3

    budgets: list[float] = []
    original = KDEGenerator.new_result
    monkeypatch.setattr(KDEGenerator, "new_result",
                        lambda self, job, update_model=True: budgets.append(job.kwargs["budget"]) or
                        original(self, job, update_model))
    ctx = SearchContext(NASBench201(), ClockGuide(SimulatedTraining(gt, "cifar10", 12000.0)),
                        algo_settings("bohb", budget_evals=None), np.random.default_rng(0), progress=False)
    SEARCH_ALGOS.get("bohb")(ctx)
    assert {round(b, 1) for b in budgets} == {22.2, 66.7, 200.0}


def test_bohb_kde_learns_which_choice_is_good() -> None:
    """hpbandster's KDE model on a benchmark where only the first decision matters: once it has a model, its
    proposals take the good value far more often than random proposals (1 in 5)."""
    from ntkexp.search.hyperband import _bohb_kde

    class FirstDecision:
        names = ["valid"]

    space = NASBench201()
    scores: dict[str, float] = {}

    from ntkexp.search.guides import Guide

    class Oracle(Guide):
        free = True

        def __init__(self) -> None:
            super().__init__()
            self.names = ["valid"]

        def _score(self, arch: str) -> tuple[dict[str, float], float, float]:
            value = 90.0 if space.encode(arch)[0] == 3 else 10.0 + float(np.sum(space.encode(arch)))
            scores[arch] = value
            return {"valid": value}, 0.0, 0.0

        def direction(self, name: str) -> int:
            return 1

    ctx = SearchContext(space, Oracle(), algo_settings("bohb", budget_evals=300, hb_iterations=30),
                        np.random.default_rng(0), progress=False)
    _bohb_kde(ctx)
    late = ctx.evaluated[len(ctx.evaluated) // 2:]
    share = np.mean([space.encode(a)[0] == 3 for a in late])
    assert share > 0.5, share
