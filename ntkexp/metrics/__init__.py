"""Metric registry. Importing this package registers every metric; this is the one list of metric modules."""

from ntkexp.metrics import ntk_metrics  # noqa: F401  (registers fnorm, mean, cond, ncn, lga)
from ntkexp.metrics.base import (
    METRICS,
    MetricContext,
    compute_metrics,
    oriented_for_ranking,
    register_metric,
)

__all__ = ["METRICS", "MetricContext", "compute_metrics", "oriented_for_ranking", "register_metric"]
