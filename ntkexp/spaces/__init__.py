"""Search-space registry. Importing this package registers every space (each module registers its own with
:func:`~ntkexp.spaces.base.register_space`); this is the one list of space modules."""

from __future__ import annotations

from ntkexp.spaces.base import SPACES, InvalidArchError, SearchSpace, register_space
from ntkexp.spaces.nasbench101 import NASBench101
from ntkexp.spaces.nasbench201 import NASBench201
from ntkexp.spaces.nds import SPACE_OPS, NDSSpace

__all__ = ["SPACES", "SPACE_OPS", "InvalidArchError", "NASBench101", "NASBench201", "NDSSpace", "SearchSpace",
           "register_space"]
