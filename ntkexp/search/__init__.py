"""Search algorithms, written once for every guide: a metric (``task=search``), the benchmark's accuracy (the
oracle), or NAS-Bench-201's simulated clock (``task=simulated_search``). Importing this package registers every
algorithm (the one list: random, rea, reinforce, hb, bohb)."""

from ntkexp.search import algorithms, hyperband  # noqa: F401  (registers the algorithms)
from ntkexp.search.base import SEARCH_ALGOS, SearchContext, register_search_algo
from ntkexp.search.guides import BudgetExhausted, Guide, MetricGuide, OracleGuide
from ntkexp.search.simulated import ClockGuide, SimulatedTraining

__all__ = ["SEARCH_ALGOS", "BudgetExhausted", "ClockGuide", "Guide", "MetricGuide", "OracleGuide", "SearchContext",
           "SimulatedTraining", "register_search_algo"]
