"""Benchmark ground truth: compact per-arch accuracy tables, and converters from the official benchmark files.

Importing this package registers every converter (``search_space.benchmark.source_format``); this is their list.
"""

from ntkexp.benchmarks.groundtruth import (
    CONVERTERS,
    BenchmarkConfig,
    GroundTruth,
    convert_nats_tss,
    convert_nb201_pth,
    load_ground_truth,
    register_converter,
)
from ntkexp.benchmarks import nb101, nds  # noqa: E402,F401  (registers nb101_*, nds_json, darts_csv)

__all__ = ["CONVERTERS", "BenchmarkConfig", "GroundTruth", "convert_nats_tss", "convert_nb201_pth",
           "load_ground_truth", "register_converter"]
