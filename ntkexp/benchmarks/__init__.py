"""Benchmark ground truth: compact per-arch accuracy tables, and converters from the official benchmark files."""

from ntkexp.benchmarks.groundtruth import (
    BenchmarkConfig,
    GroundTruth,
    convert_nats_tss,
    convert_nb201_pth,
    load_ground_truth,
    resolve_path,
)

__all__ = ["BenchmarkConfig", "GroundTruth", "convert_nats_tss", "convert_nb201_pth", "load_ground_truth",
           "resolve_path"]
