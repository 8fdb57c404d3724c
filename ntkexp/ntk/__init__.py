"""Empirical NTK of a batch: the fast torch.func engine and the slow per-sample backward-loop reference."""

from ntkexp.ntk.engine import (
    BN_MODES,
    PARAM_SUBSETS,
    REDUCTIONS,
    NTKConfig,
    NTKResult,
    bn_convention,
    empirical_ntk,
    jacobian,
    select_params,
)
from ntkexp.ntk.reference import ntk_reference

__all__ = [
    "BN_MODES",
    "PARAM_SUBSETS",
    "REDUCTIONS",
    "NTKConfig",
    "NTKResult",
    "bn_convention",
    "empirical_ntk",
    "jacobian",
    "ntk_reference",
    "select_params",
]
