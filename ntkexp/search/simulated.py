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

import numpy as np

from ntkexp.benchmarks import GroundTruth
from ntkexp.search.guides import BudgetExhausted, Guide


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
    answer_mode: str = "auto"  # random_seed (NB201's is_random=True) | mean (of the seeds) | auto: random_seed if the table can
    charge_validation: str = "auto"  # yes (train-all-time + valid-per-time, as R_EA.py) | no | auto: yes if the table can
    rng: np.random.Generator | None = None  # draws the seed of each query (seeded by the run)

    SEEDS = (777, 888, 999)  # NAS-Bench-201's seeds: per-seed columns are named <fidelity column>_seed<seed>

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
        seed_cols = [f"{self.fidelities[12]}_seed{s}" for s in self.SEEDS]
        has_seeds = all(c in frame.columns for c in seed_cols)
        valid_col = f"{self.dataset}_valid_seconds"
        has_valid = valid_col in frame.columns
        self.answer_mode = _resolve("answer", self.answer_mode, ("random_seed", "mean"), has_seeds,
                                    f"per-seed 12-epoch accuracies ({', '.join(seed_cols)})")
        self.charge_validation = _resolve("charge_validation", self.charge_validation, ("yes", "no"), has_valid,
                                          f"the validation time of one query ({valid_col})")
        self._per_seed = frame[seed_cols].to_numpy(dtype=np.float64) if has_seeds else None
        self._row = {arch: i for i, arch in enumerate(frame.index)}
        self._valid_seconds = frame[valid_col].to_dict() if has_valid else None
        if self.answer_mode == "random_seed" and self.rng is None:
            raise ValueError("a simulated search that draws a seed per query needs the run's rng")

    @property
    def evaluations(self) -> int:
        return len(self.archs)

    def exhausted(self) -> bool:
        return self.spent >= self.budget_seconds

    def cost(self, arch: str, epochs: int = 12) -> float:
        """The training time of ``epochs`` epochs, plus one validation pass where the table records it (R_EA.py:
        train-all-time + valid-per-time)."""
        train = float(self._seconds[arch]) * epochs
        return train + (float(self._valid_seconds[arch]) if self.charge_validation == "yes" else 0.0)

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
        """What training ``arch`` for ``epochs`` tells (charging nothing): the 12-epoch accuracy of one of its seeds,
        drawn uniformly among those the benchmark ran (NB201's ``get_more_info(..., is_random=True)``), or the seeds'
        mean."""
        if epochs == 12 and self.answer_mode == "random_seed":
            assert self._per_seed is not None and self.rng is not None
            runs = self._per_seed[self._row[arch]]
            runs = runs[np.isfinite(runs)]
            if len(runs):
                return float(runs[int(self.rng.integers(len(runs)))])
        return float(self._acc[epochs][arch])

    def conventions(self) -> dict[str, str]:
        """How queries were answered and charged, in words (for the summary)."""
        return {"answer": ("the 12-epoch validation accuracy of one seed drawn per query (NB201's is_random=True)"
                           if self.answer_mode == "random_seed" else
                           "the mean of the seeds' 12-epoch validation accuracies (the table has no per-seed values)"
                           if self._per_seed is None else "the mean of the seeds' 12-epoch validation accuracies"),
                "charge": ("12 epochs of training plus one validation pass (R_EA.py's train-all-time + "
                           "valid-per-time)" if self.charge_validation == "yes" else
                           "12 epochs of training (the table records no validation time, about 3 % of a query in "
                           "NB201)" if self._valid_seconds is None else "12 epochs of training")}


def _resolve(name: str, mode: str, choices: tuple[str, str], available: bool, what: str) -> str:
    """``auto`` -> the first choice when the table can give it, else the second; an explicit first choice the table
    cannot give is refused, naming what it lacks."""
    if mode not in (*choices, "auto"):
        raise ValueError(f"task.simulated.{name} must be one of {', '.join(choices)}, auto; got {mode!r}")
    if mode == "auto":
        return choices[0] if available else choices[1]
    if mode == choices[0] and not available:
        raise ValueError(f"task.simulated.{name}={mode} needs {what}, which the ground truth lacks; use "
                         f"{name}={choices[1]} or a table that has them")
    return mode


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
