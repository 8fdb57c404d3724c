"""Search algorithms guided by any metric. Importing this package registers every algorithm (the one list)."""

from ntkexp.search import algorithms  # noqa: F401  (registers random, rea, reinforce)
from ntkexp.search.base import SEARCH_ALGOS, SearchAlgoConfig, SearchContext, register_search_algo
from ntkexp.search.scorer import SearchScorer

__all__ = ["SEARCH_ALGOS", "SearchAlgoConfig", "SearchContext", "SearchScorer", "register_search_algo"]
