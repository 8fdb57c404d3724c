"""Benchmark-simulated search, the other standard NAS protocol (NAS-Bench-201's, used by GradSign Sec. 5.5): a search
sees only what training would tell it, and pays for it on a clock of the benchmark's recorded training seconds.

Evaluating an arch returns its validation accuracy after the benchmark's 12-epoch schedule and charges 12 epochs of
the training time the benchmark records for it (:class:`SimulatedTraining`; Hyperband's top fidelity returns the
200-epoch validation accuracy and charges 200 epochs). The search stops once the clock has reached its budget (the
evaluation that crosses it still counts, as in NAS-Bench-201's own loops). Its result is the evaluated arch with the
best validation accuracy seen; what it is worth is that arch's final accuracies.

Every algorithm has a metric-assisted variant (GradSign's App. A): ``pool_size`` candidates are drawn where the plain
algorithm draws one, and the one with the best metric score is evaluated (G-RS, G-REA, G-REINFORCE, G-HB); A-REA
chooses REA's initial population as the best ``population_size`` of ``init_pool`` random archs by the metric. The
metric's own cost is reported beside the clock (in the seconds of the device that computed it), not charged to it.
Hyperband and BOHB use Optuna (its Hyperband pruner; TPE sampling for BOHB).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ntkexp.benchmarks import GroundTruth
from ntkexp.registry import Registry
from ntkexp.spaces import SearchSpace

SIMULATED_ALGOS: Registry[Callable[["SimContext"], None]] = Registry("simulated search algorithm")


def register_simulated(name: str) -> Callable[[Callable[["SimContext"], None]], Callable[["SimContext"], None]]:
    def wrap(fn: Callable[["SimContext"], None]) -> Callable[["SimContext"], None]:
        return SIMULATED_ALGOS.register(name, fn)

    return wrap


@dataclass
class SimulatedTraining:
    """The clock and the benchmark's answers for one data set (``dataset``: cifar10, cifar100, ImageNet16-120)."""

    ground_truth: GroundTruth
    dataset: str
    budget_seconds: float
    spent: float = 0.0
    evaluations: int = 0
    charges: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        frame = self.ground_truth.frame
        self.epoch_column = next((c for c in (f"{self.dataset}_valid_epoch_seconds", f"{self.dataset}_epoch_seconds")
                                  if c in frame.columns), None)
        self.fidelities = {12: f"{self.dataset}_valid_12ep", 200: f"{self.dataset}_valid"}
        if self.epoch_column is None or self.fidelities[12] not in frame.columns:
            raise ValueError(f"the ground truth {self.ground_truth.path} lacks the 12-epoch validation accuracy or the "
                             f"training time of {self.dataset} that a simulated search needs")
        self._seconds = frame[self.epoch_column].to_dict()
        self._acc = {epochs: frame[col].to_dict() for epochs, col in self.fidelities.items() if col in frame.columns}

    def exhausted(self) -> bool:
        return self.spent >= self.budget_seconds

    def has_fidelity(self, epochs: int) -> bool:
        return epochs in self._acc

    def cost(self, arch: str, epochs: int = 12) -> float:
        return float(self._seconds[arch]) * epochs

    def evaluate(self, arch: str, epochs: int = 12) -> float:
        """The validation accuracy after ``epochs`` (12, or 200) epochs; charges their recorded training time."""
        if epochs not in self._acc:
            raise ValueError(f"the benchmark records no {epochs}-epoch validation accuracy of {self.dataset}")
        charge = self.cost(arch, epochs)
        if not charge > 0:  # a free (or NaN) training would never exhaust the budget: the search would loop forever
            raise ValueError(f"the benchmark records no positive training time for {arch} on {self.dataset} "
                             f"({self.epoch_column} = {self._seconds[arch]}); a simulated search cannot charge it")
        self.spent += charge
        self.charges.append(charge)
        self.evaluations += 1
        return float(self._acc[epochs][arch])


Scores = Callable[[list[str]], np.ndarray]


@dataclass
class SimContext:
    """One run of a simulated search: the space, the clock, the metric (higher is better, or None), the history."""

    space: SearchSpace
    sim: SimulatedTraining
    rng: np.random.Generator
    cfg: Any  # SimulatedSearchConfig
    metric: Scores | None = None
    history: list[tuple[str, float, int]] = field(default_factory=list)  # (arch, validation accuracy seen, epochs)

    def random_arch(self) -> str:
        return self.space.sample(self.rng)

    def pick(self, candidates: list[str]) -> str:
        """The candidate with the best metric score (the first on ties; the first candidate without a metric)."""
        if self.metric is None or len(candidates) == 1:
            return candidates[0]
        return candidates[int(np.argmax(self.metric(candidates)))]

    def pool(self, draw: Callable[[], str]) -> str:
        """One draw (plain), or the best of ``pool_size`` draws by the metric (metric-assisted)."""
        if self.metric is None:
            return draw()
        return self.pick([draw() for _ in range(self.cfg.pool_size)])

    def evaluate(self, arch: str, epochs: int = 12) -> float:
        acc = self.sim.evaluate(arch, epochs)
        self.history.append((arch, acc, epochs))
        return acc

    def best(self) -> tuple[str, float]:
        """The result: the arch with the best validation accuracy seen, judged at the highest fidelity any evaluated
        arch reached (Hyperband's survivors; 12 epochs for the other algorithms), and that accuracy."""
        if not self.history:
            raise RuntimeError("the simulated search evaluated nothing: its time budget is smaller than one training")
        top = max(epochs for _, _, epochs in self.history)
        arch, acc, _ = max((item for item in self.history if item[2] == top), key=lambda item: item[1])
        return arch, acc


@register_simulated("rs")
def simulated_random(ctx: SimContext) -> None:
    """Random search (G-RS: each evaluated arch is the best of a random pool by the metric)."""
    while not ctx.sim.exhausted():
        ctx.evaluate(ctx.pool(ctx.random_arch))


@register_simulated("rea")
def simulated_rea(ctx: SimContext) -> None:
    """Regularized evolution on the validation accuracy (G-REA: the child is the best of ``pool_size`` mutants of the
    parent by the metric; with ``init_pool`` (A-REA) the initial population is the best ``population_size`` of that
    many random archs by the metric)."""
    cfg = ctx.cfg
    population: deque[tuple[str, float]] = deque()
    if cfg.init_pool and ctx.metric is not None:
        pool = [ctx.random_arch() for _ in range(cfg.init_pool)]
        order = np.argsort(-ctx.metric(pool), kind="stable")[:cfg.population_size]
        initial = [pool[i] for i in order]
    else:
        initial = [ctx.random_arch() for _ in range(cfg.population_size)]
    for arch in initial:
        if ctx.sim.exhausted():
            return
        population.append((arch, ctx.evaluate(arch)))
    while not ctx.sim.exhausted():
        sample = [population[i] for i in ctx.rng.choice(len(population), size=min(cfg.sample_size, len(population)),
                                                        replace=False)]
        parent = max(sample, key=lambda item: item[1])[0]
        child = ctx.pool(lambda: ctx.space.mutate(parent, ctx.rng))
        population.append((child, ctx.evaluate(child)))
        population.popleft()


class DebiasedEMA:
    """An exponential moving average with its start-up bias divided out: after one value it is that value."""

    def __init__(self, momentum: float) -> None:
        self.momentum, self.weighted, self.weight = momentum, 0.0, 0.0

    def update(self, value: float) -> float:
        self.weighted = self.momentum * self.weighted + (1 - self.momentum) * value
        self.weight = self.momentum * self.weight + (1 - self.momentum)
        return self.weighted / self.weight


@register_simulated("reinforce")
def simulated_reinforce(ctx: SimContext) -> None:
    """REINFORCE as NAS-Bench-201's reference runs it: a softmax policy per decision, updated by Adam (``lr``) on
    -(r - b) log pi(arch), the reward r the 12-epoch validation accuracy in %, the baseline b a debiased moving
    average (``ema``) that includes the current reward (G-REINFORCE: the evaluated arch is the best of ``pool_size``
    mutants of the policy's sample by the metric, and the policy learns from that arch)."""
    import torch

    cfg = ctx.cfg
    logits = [torch.zeros(len(c), dtype=torch.float64, requires_grad=True) for c in ctx.space.choices()]
    optimizer = torch.optim.Adam(logits, lr=cfg.lr)
    baseline = DebiasedEMA(cfg.ema)
    while not ctx.sim.exhausted():
        probs = [torch.softmax(lg.detach(), 0).numpy() for lg in logits]
        sampled = ctx.space.decode([int(ctx.rng.choice(len(p), p=p / p.sum())) for p in probs])
        arch = sampled if ctx.metric is None else \
            ctx.pick([ctx.space.mutate(sampled, ctx.rng) for _ in range(cfg.pool_size)])
        reward = ctx.evaluate(arch)
        advantage = reward - baseline.update(reward)
        log_prob = sum(torch.log_softmax(lg, 0)[c] for lg, c in zip(logits, ctx.space.encode(arch)))
        optimizer.zero_grad()
        (-advantage * log_prob).backward()  # type: ignore[union-attr]
        optimizer.step()


def _optuna_search(ctx: SimContext, sampler: Any) -> None:
    """Hyperband over the benchmark's two validation fidelities (12 and 200 epochs), with Optuna."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not ctx.sim.has_fidelity(200):
        raise ValueError(f"Hyperband needs the 200-epoch validation accuracy of {ctx.sim.dataset}, which the benchmark "
                         "table lacks (it has it for cifar10)")
    choices = ctx.space.choices()
    names = [f"d{i}" for i in range(len(choices))]
    distributions = {n: optuna.distributions.CategoricalDistribution(list(range(len(c))))
                     for n, c in zip(names, choices)}
    pruner = optuna.pruners.HyperbandPruner(min_resource=12, max_resource=200, reduction_factor=ctx.cfg.eta)
    # the study's name seeds Hyperband's bracket assignment (a random UUID by default): name it from the run's seed
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner,
                                study_name=f"ntkexp-simulated-{int(ctx.rng.integers(2**31))}")
    while not ctx.sim.exhausted():
        if ctx.metric is not None:  # G-HB: the trial's arch is the best of a random pool by the metric
            chosen = ctx.pool(ctx.random_arch)
            study.enqueue_trial(dict(zip(names, ctx.space.encode(chosen))))
        trial = study.ask(distributions)
        arch = ctx.space.decode([trial.params[n] for n in names])
        low = ctx.evaluate(arch, 12)
        trial.report(low, 12)
        if trial.should_prune() or ctx.sim.exhausted():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        high = ctx.evaluate(arch, 200)
        trial.report(high, 200)
        study.tell(trial, high)


@register_simulated("hb")
def simulated_hyperband(ctx: SimContext) -> None:
    """Hyperband with random configurations (G-HB: each configuration the best of a random pool by the metric)."""
    import optuna

    _optuna_search(ctx, optuna.samplers.RandomSampler(seed=int(ctx.rng.integers(2**31))))


@register_simulated("bohb")
def simulated_bohb(ctx: SimContext) -> None:
    """BOHB-style: Hyperband with configurations proposed by a tree-structured Parzen estimator (Optuna's TPE)."""
    import optuna

    _optuna_search(ctx, optuna.samplers.TPESampler(seed=int(ctx.rng.integers(2**31))))
