"""The interface every search space implements, so metrics, tasks and search algorithms work on any of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from torch import nn


class InvalidArchError(ValueError):
    """An architecture description that does not belong to the search space."""


class SearchSpace(ABC):
    """A set of architectures, each identified by a canonical string.

    ``size`` is the number of architectures (``None`` when it is too large to enumerate); spaces with an official
    index (NAS-Bench-201) map ``index_of``/``arch_of`` exactly as their benchmark does.
    """

    name: str = "?"
    size: int | None = None

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> str:
        """One architecture drawn uniformly at random."""

    @abstractmethod
    def validate(self, arch: str) -> str:
        """Return the canonical form of ``arch`` or raise :class:`InvalidArchError` saying what is wrong."""

    @abstractmethod
    def build(self, arch: str, num_classes: int, in_channels: int = 3) -> nn.Module:
        """A freshly initialised (PyTorch default) network whose ``forward`` returns logits."""

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        raise NotImplementedError(f"search space {self.name!r} has no mutation operator")

    def choices(self) -> list[list[str]]:
        """The categorical decisions that define an arch (for policy-based search), e.g. one op per edge."""
        raise NotImplementedError(f"search space {self.name!r} has no categorical encoding")

    def encode(self, arch: str) -> list[int]:
        """The index chosen for each decision of :meth:`choices`."""
        raise NotImplementedError(f"search space {self.name!r} has no categorical encoding")

    def decode(self, code: list[int]) -> str:
        raise NotImplementedError(f"search space {self.name!r} has no categorical encoding")

    def index_of(self, arch: str) -> int:
        raise NotImplementedError(f"search space {self.name!r} has no official index")

    def arch_of(self, index: int) -> str:
        raise NotImplementedError(f"search space {self.name!r} has no official index")

    def all_archs(self) -> list[str]:
        if self.size is None:
            raise NotImplementedError(f"search space {self.name!r} cannot be enumerated")
        return [self.arch_of(i) for i in range(self.size)]

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The settings that change which network an arch string builds (part of every score's cache key, so every
        setting must be here)."""

    def label(self) -> str:
        """The network in words, for tables, titles and summaries."""
        settings = ", ".join(f"{k}={v}" for k, v in self.describe().items() if k != "name")
        return f"{self.name} ({settings})" if settings else self.name
