"""Metric registry. Importing this package registers every metric and combination; this is the one list of metric
modules (a new metric is one module here; ``metric=<name>`` is generated from the registry, a
``conf/metric/<name>.yaml`` is needed only for a preset of several metrics or with settings)."""

from ntkexp.metrics.base import (
    METRICS,
    NEEDS,
    InputRequest,
    Metric,
    MetricContext,
    compute_metrics,
    default_settings,
    metric_settings,
    oriented,
    prepare_inputs,
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
from ntkexp.metrics.gradsign import GradSignConfig  # noqa: E402
from ntkexp.metrics.tegnas import LinearRegionsConfig  # noqa: E402

__all__ = ["ALL", "COMBINATIONS", "Combination", "GradSignConfig", "InputRequest", "LinearRegionsConfig", "METRICS",
           "Metric", "MetricContext", "MetricSelection", "NEEDS", "borda_count", "combine", "compute_metrics",
           "default_settings", "direction_of", "expand", "metric_settings", "oriented", "prepare_inputs",
           "register_combination", "register_metric", "sum_of_ranks", "traits"]
