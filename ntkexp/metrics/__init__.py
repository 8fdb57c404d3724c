"""Metric registry. Importing this package registers every metric; this is the one list of metric modules."""

from ntkexp.metrics import gradsign, ntk_metrics, ntk_score, tegnas, zero_cost  # noqa: F401  (registration)
from ntkexp.metrics.base import (
    METRICS,
    MetricContext,
    compute_metrics,
    oriented_for_ranking,
    register_metric,
)
from ntkexp.metrics.combine import COMBINATIONS, borda_count, combine, direction_of, expand, sum_of_ranks

__all__ = ["COMBINATIONS", "METRICS", "MetricContext", "borda_count", "combine", "compute_metrics", "direction_of", "expand",
           "oriented_for_ranking", "register_metric", "sum_of_ranks"]
