"""Metric registry. Importing this package registers every metric and combination; this is the one list of metric
modules (a new metric is one module here plus one ``conf/metric/<name>.yaml``)."""

from ntkexp.metrics.base import (
    METRICS,
    NEEDS,
    GradSignConfig,
    LinearRegionsConfig,
    Metric,
    MetricContext,
    MetricSettings,
    compute_metrics,
    oriented,
    register_metric,
)
from ntkexp.metrics.combine import (
    ALL,
    COMBINATIONS,
    Combination,
    MetricSelection,
    borda_count,
    combine,
    direction_of,
    expand,
    register_combination,
    sum_of_ranks,
    traits,
)
from ntkexp.metrics import gradsign, ntk_metrics, ntk_score, tegnas, zero_cost  # noqa: E402,F401  (registration)

__all__ = ["ALL", "COMBINATIONS", "Combination", "GradSignConfig", "LinearRegionsConfig", "METRICS", "Metric",
           "MetricContext", "MetricSelection", "MetricSettings", "NEEDS",
           "borda_count", "combine", "compute_metrics", "direction_of", "expand", "oriented", "register_combination",
           "register_metric", "sum_of_ranks", "traits"]
