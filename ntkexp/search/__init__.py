"""Search algorithms guided by any metric. Importing this package registers every algorithm (the one list)."""

from ntkexp.search import algorithms  # noqa: F401  (registers random, rea, reinforce)
from ntkexp.search.base import SEARCH_ALGOS, SearchContext, register_search_algo
from ntkexp.search.scorer import Guide, MetricScorer, OracleScorer

__all__ = ["SEARCH_ALGOS", "Guide", "MetricScorer", "OracleScorer", "SearchContext", "register_search_algo"]
