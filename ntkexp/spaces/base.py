"""The interface every search space implements, so metrics, tasks and search algorithms work on any of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, TypeVar

import numpy as np
from torch import nn

from ntkexp.registry import Registry


class InvalidArchError(ValueError):
    """An architecture description that does not belong to the search space."""


class SearchSpace(ABC):
    """A set of architectures, each identified by a canonical string.

    Everything a task or a search algorithm needs is part of this interface: sampling, validation, building,
    mutation (REA) and a categorical encoding (REINFORCE, and the nearest-arch projection of a search restricted to
    the benchmark's archs). ``size`` is the number of architectures (``None`` when it is too large to enumerate);
    ``index_of`` gives the benchmark's official index where it has one.
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

    @abstractmethod
    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """A valid arch one small change away from ``arch`` (and different from it)."""

    @abstractmethod
    def choices(self) -> list[list[str]]:
        """The categorical decisions that define an arch (for policy-based search), e.g. one op per edge."""

    @abstractmethod
    def encode(self, arch: str) -> list[int]:
        """The index chosen for each decision of :meth:`choices`."""

    @abstractmethod
    def decode(self, code: list[int]) -> str:
        """The arch a choice per decision describes; :class:`InvalidArchError` when it is not a valid arch."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The settings that change which network an arch string builds (part of every score's cache key, so every
        setting must be here)."""

    def thin_network(self, arch: str, num_classes: int) -> nn.Module | None:
        """The narrowest network with ``arch``'s cell (one cell of width 1, no stem, taking one-channel inputs), for
        a metric that measures the cell alone; None where the space has none (the network itself is used)."""
        return None

    def has_input_path(self, arch: str) -> bool:
        """Whether the network's output depends on its input through the searched cell (False: e.g. an NB201 cell
        whose every path from input to output holds a ``none``; such an arch gets no score)."""
        return True

    def init_key(self, arch: str) -> str:
        """What seeds the initial weights of ``arch`` (with the run's seed and the repeat): the arch itself, so its
        weights do not depend on what was scored before; a supernet whose members share weights returns one key."""
        return arch

    def index_of(self, arch: str) -> int | None:
        """The benchmark's official index of ``arch``; None for a space without one."""
        return None

    def label(self) -> str:
        """The network in words, for tables, titles and summaries."""
        settings = ", ".join(f"{k}={v}" for k, v in self.describe().items() if k != "name")
        return f"{self.name} ({settings})" if settings else self.name


#: every search space by name: a constructor taking the space's settings (``search_space.kwargs``)
SPACES: Registry[Callable[..., SearchSpace]] = Registry("search space")

T = TypeVar("T")


def register_space(name: str) -> Callable[[T], T]:
    """Register a :class:`SearchSpace` class (or a constructor, e.g. a ``functools.partial`` binding a variant) as
    search space ``name``; returns it unchanged, so it works as a decorator."""

    def wrap(space: T) -> T:
        SPACES.register(name, space)
        return space

    return wrap
