"""Weight-initialisation schemes (config group ``init``), applied to a freshly built network.

``default`` keeps PyTorch's own init. The others re-initialise every Conv/Linear weight; biases become 0 and BatchNorm
affine parameters become (1, 0). ``gaussian`` draws N(0, std^2) (std = 1 as in the LGA paper's Figure 4 study).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import nn

SCHEMES = ("default", "xavier", "kaiming", "gaussian")


@dataclass
class InitConfig:
    name: str = "default"
    distribution: str = "normal"  # xavier / kaiming: normal | uniform
    std: float = 1.0  # gaussian only
    gain: float = 1.0  # xavier only
    mode: str = "fan_in"  # kaiming: fan_in | fan_out (TE-NAS's NTK network: fan_out; its linear-region one: fan_in)


def arch_seed(seed: int, arch: str, repeat: int = 0) -> int:
    """A per-(seed, arch) seed, so an arch's weights do not depend on which archs were scored before it; ``repeat``
    > 0 gives the independent initialisations of repeated measurements."""
    digest = hashlib.sha256((f"{seed}:{arch}" + (f":{repeat}" if repeat else "")).encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


@torch.no_grad()
def initialize(model: nn.Module, cfg: InitConfig) -> nn.Module:
    """Apply ``cfg`` in place (using the global torch RNG, which the caller seeds) and return the model."""
    if cfg.name not in SCHEMES:
        raise ValueError(f"unknown init {cfg.name!r}; valid inits: {', '.join(SCHEMES)}")
    if cfg.distribution not in ("normal", "uniform"):
        raise ValueError(f"init.distribution must be 'normal' or 'uniform', got {cfg.distribution!r}")
    if cfg.mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init.mode must be 'fan_in' or 'fan_out', got {cfg.mode!r}")
    if cfg.name == "default":
        return model
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            w = module.weight
            if cfg.name == "xavier":
                (nn.init.xavier_normal_ if cfg.distribution == "normal" else nn.init.xavier_uniform_)(w, gain=cfg.gain)
            elif cfg.name == "kaiming":
                fn = nn.init.kaiming_normal_ if cfg.distribution == "normal" else nn.init.kaiming_uniform_
                fn(w, mode=cfg.mode, nonlinearity="relu")
            else:
                nn.init.normal_(w, 0.0, cfg.std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model
