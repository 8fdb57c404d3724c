"""ntkexp: Hydra-configured experiments that judge neural architectures with Neural-Tangent-Kernel metrics.

As a library (see :mod:`ntkexp.api`): ``ntkexp.empirical_ntk(model, images)`` and
``ntkexp.score(model, images, labels, metrics=["lga", "ncn"])`` for any ``torch.nn.Module``;
``ntkexp.benchmark("nb201").query(arch, dataset="cifar10", epochs=200)`` to look an arch up in a shipped benchmark.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["benchmark", "empirical_ntk", "score", "Scores"]


def __getattr__(name: str) -> Any:  # the library API loads torch on first use, not on ``import ntkexp``
    if name == "benchmark":
        from ntkexp.benchmarks.query import benchmark

        return benchmark
    if name in __all__:
        from ntkexp import api

        return getattr(api, name)
    raise AttributeError(f"module 'ntkexp' has no attribute {name!r}")
