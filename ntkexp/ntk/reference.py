"""The slow, obviously-correct NTK: one forward pass, then one ``autograd.grad`` per output row.

Kept as the independent reference the fast engine is tested against. It deep-copies the network, so nothing of the
caller's model changes; it shares no code with the engine beyond the config and the parameter selection.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ntkexp.ntk.engine import DTYPES, NTKConfig, select_params


def ntk_reference(model: nn.Module, x: torch.Tensor, cfg: NTKConfig | None = None) -> torch.Tensor:
    """Theta (B, B) in float64 by an explicit loop of per-output backward passes."""
    cfg = cfg if cfg is not None else NTKConfig()
    net = copy.deepcopy(model).to(DTYPES[cfg.dtype])
    x = x.to(DTYPES[cfg.dtype])
    chosen, _ = select_params(net, cfg.params)  # same selection rule; the differentiation below is independent
    params = list(chosen.values())
    for p in net.parameters():
        p.requires_grad_(any(p is q for q in params))
    net.train(cfg.bn_mode != "eval")
    if cfg.bn_mode == "per_sample":  # each sample normalised by its own statistics: forward them one at a time
        out = torch.cat([net(x[i : i + 1]) for i in range(x.shape[0])])
    else:
        out = net(x)
    rows: list[torch.Tensor] = []
    for i in range(x.shape[0]):
        if cfg.reduction == "sum":
            scalars = [out[i].sum()]
        elif cfg.reduction == "logit":
            scalars = [out[i, cfg.logit_index]]
        else:
            scalars = [out[i, k] for k in range(out.shape[1])]
        per_output = []
        for s in scalars:
            grads = torch.autograd.grad(s, params, retain_graph=True, allow_unused=True)
            per_output.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                         for g, p in zip(grads, params)]))
        rows.append(torch.cat(per_output))
    jac = torch.stack(rows).to(torch.float64)
    return jac @ jac.T
