"""Search-space registry. Importing this package registers every space; this is the one list of space modules."""

from __future__ import annotations

from functools import partial
from typing import Callable

from ntkexp.registry import Registry
from ntkexp.spaces.base import InvalidArchError, SearchSpace
from ntkexp.spaces.nasbench101 import NASBench101
from ntkexp.spaces.nasbench201 import NASBench201
from ntkexp.spaces.nds import SPACE_OPS, NDSSpace

SPACES: Registry[Callable[..., SearchSpace]] = Registry("search space")
SPACES.register("nasbench201", NASBench201)
SPACES.register("nasbench101", NASBench101)
for _variant in SPACE_OPS:
    SPACES.register(f"nds_{_variant}", partial(NDSSpace, _variant))
SPACES.register("darts_swap", partial(NDSSpace, "darts", name="darts_swap"))  # the DARTS cells, SWAP-NAS's archs


__all__ = ["SPACES", "InvalidArchError", "NASBench101", "NASBench201", "NDSSpace", "SearchSpace"]
