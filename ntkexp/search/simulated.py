"""Benchmark-simulated search, the other standard NAS protocol (NAS-Bench-201's, used by GradSign Sec. 5.5): a search
sees only what training would tell it, and pays for it on a clock of the benchmark's recorded training seconds.

:class:`ClockGuide` is that clock as a guide of the one search stack (:mod:`ntkexp.search.base`): evaluating an arch
returns its validation accuracy after the benchmark's 12-epoch schedule and charges 12 epochs of the training time
the benchmark records for it, every time it is asked (training an arch again costs again). The evaluation that would
cross the budget is not charged, not seen, and ends the search, as in NAS-Bench-201's and GradSign's loops
(NAS-Bench-201's and GradSign's ``reinforce.py`` alone keep that last arch among their candidates, uncharged, and so
does REINFORCE here: :meth:`SearchContext.keep_crossing`). A search's
result is the evaluated arch with the best validation accuracy seen (Hyperband: among those at its largest budget);
what it is worth is that arch's final accuracies.
"""

from __future__ import annotations

from dataclasses import dataclass, field


from ntkexp.benchmarks import GroundTruth
from ntkexp.search.scorer import BudgetExhausted, Guide


@dataclass
class SimulatedTraining:
    """The clock and the benchmark's answers for one data set (``dataset``: cifar10, cifar100, ImageNet16-120)."""

    ground_truth: GroundTruth
    dataset: str
    budget_seconds: float
    spent: float = 0.0
    charges: list[float] = field(default_factory=list)
    archs: list[str] = field(default_factory=list)  # every evaluated arch, in order, repeats included
    refused: str | None = None  # the arch whose training would have crossed the budget (it ended the search)

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

    @property
    def evaluations(self) -> int:
        return len(self.archs)

    def exhausted(self) -> bool:
        return self.spent >= self.budget_seconds

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
        if self.spent + charge > self.budget_seconds:
            self.refused = arch
            raise BudgetExhausted(f"training {arch} ({charge:.0f} s) would cross the budget of "
                                  f"{self.budget_seconds:.0f} s ({self.spent:.0f} s spent)")
        self.spent += charge
        self.charges.append(charge)
        self.archs.append(arch)
        return self.answer(arch, epochs)

    def answer(self, arch: str, epochs: int = 12) -> float:
        """What training ``arch`` for ``epochs`` tells (charging nothing)."""
        return float(self._acc[epochs][arch])


class ClockGuide(Guide):
    """The simulated clock as a guide: the value of an arch is its 12-epoch validation accuracy (%), charged on the
    clock at every query; the search ends when a query would cross the budget."""

    remember = False
    label = "the simulated clock"

    def __init__(self, sim: SimulatedTraining) -> None:
        super().__init__()
        self.sim = sim
        self.names = ["valid"]

    def exhausted(self) -> bool:
        return self.sim.exhausted()

    def _score(self, arch: str) -> tuple[dict[str, float], float, float]:
        before = self.sim.spent
        accuracy = self.sim.evaluate(arch)
        return {"valid": accuracy}, self.sim.spent - before, 0.0

    def peek(self, arch: str) -> dict[str, float]:
        return {"valid": self.sim.answer(arch)}

    def direction(self, name: str) -> int:
        return 1
