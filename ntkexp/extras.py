"""Optional dependencies: each feature that needs one names the ``ntkexp[<extra>]`` that installs it, in one line."""

from __future__ import annotations

import importlib
from typing import Any

#: module -> the extra of ntkexp that installs it (pyproject.toml's optional-dependencies)
EXTRAS = {"wandb": "wandb", "tensorboardX": "tensorboard", "mlflow": "mlflow", "optuna": "hpo",
          "hpbandster": "hpo", "ConfigSpace": "hpo", "nats_bench": "benchmarks", "nas_201_api": "benchmarks",
          "nasbench_pytorch": "benchmarks", "pyarrow": "benchmarks", "hydra_plugins.hydra_joblib_launcher": "cluster",
          "hydra_plugins.hydra_submitit_launcher": "cluster"}


class MissingExtraError(ValueError):
    """A feature was asked for whose optional dependency is not installed."""


def require(module: str, feature: str) -> Any:
    """Import ``module`` for ``feature`` (words, e.g. ``search_algo=bohb``), or raise :class:`MissingExtraError`
    naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module if module in EXTRAS else module.split(".")[0]
        extra = EXTRAS.get(top, "all")
        raise MissingExtraError(f"{feature} needs {top}, which is not installed here ({err}); install it with: pip "
                                f"install 'ntkexp[{extra}]'") from None
