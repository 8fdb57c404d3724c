"""The NDS design spaces (Radosavovic et al.): DARTS, ENAS, NASNet, Amoeba, PNAS, PDARTS cells in the DARTS
NetworkCIFAR skeleton (no auxiliary head, drop-path 0), as NDS trains them. The model code is written here.

A genotype is the DARTS one: for each intermediate node two (op, input) pairs, input 0 = the cell before the previous
one, 1 = the previous cell, k >= 2 = intermediate node k - 2; ``*_concat`` lists the nodes the cell outputs
(concatenated). An arch is written as canonical JSON: ``{"normal": [[op, input], ...], "normal_concat": [...],
"reduce": [...], "reduce_concat": [...]}`` plus ``"width"``/``"depth"`` when the arch carries its own (NDS samples
them per arch); without them the space's ``C``/``layers`` apply. ``Genotype(normal=[('op', 0), ...], ...)`` strings
(the DARTS repr) are accepted and canonicalised.
"""

from __future__ import annotations

from functools import partial

import ast
import json
import re
from typing import Any

import numpy as np
import torch
from torch import nn

from ntkexp.spaces.base import InvalidArchError, SearchSpace, register_space

# ----------------------------------------------------------------------------------------------------------- ops


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out))


class DilConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable convs (the first carries the stride), as in DARTS."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(DilConv(c_in, c_in, kernel, stride, padding, 1), DilConv(c_in, c_out, kernel, 1, padding, 1))


class FactorizedReduce(nn.Module):
    """Stride-2 identity substitute: two offset 1x1 stride-2 convs, concatenated, then BN."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        if c_out % 2:
            raise InvalidArchError(f"FactorizedReduce needs an even channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class Conv1xN_Nx1(nn.Sequential):
    def __init__(self, c: int, n: int, stride: int) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c, c, (1, n), stride=(1, stride), padding=(0, n // 2), bias=False),
                         nn.Conv2d(c, c, (n, 1), stride=(stride, 1), padding=(n // 2, 0), bias=False),
                         nn.BatchNorm2d(c))


class Zero(nn.Module):
    """The ``none`` op: zeros of the output's shape (graph kept connected, no gradient to the input's producers)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _pool(kind: str, k: int, stride: int) -> nn.Module:
    if kind == "avg":
        return nn.AvgPool2d(k, stride=stride, padding=(k - 1) // 2, count_include_pad=False)
    return nn.MaxPool2d(k, stride=stride, padding=(k - 1) // 2)


OPS: dict[str, Any] = {
    "none": lambda c, s: Zero(s),
    "skip_connect": lambda c, s: Identity() if s == 1 else FactorizedReduce(c, c),
    "avg_pool_2x2": lambda c, s: _pool("avg", 2, s) if s == 2 else nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), _pool("avg", 2, 1)),
    "avg_pool_3x3": lambda c, s: _pool("avg", 3, s),
    "avg_pool_5x5": lambda c, s: _pool("avg", 5, s),
    "max_pool_2x2": lambda c, s: _pool("max", 2, s) if s == 2 else nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), _pool("max", 2, 1)),
    "max_pool_3x3": lambda c, s: _pool("max", 3, s),
    "max_pool_5x5": lambda c, s: _pool("max", 5, s),
    "max_pool_7x7": lambda c, s: _pool("max", 7, s),
    "conv_1x1": lambda c, s: ReLUConvBN(c, c, 1, s, 0),
    "conv_3x3": lambda c, s: ReLUConvBN(c, c, 3, s, 1),
    "sep_conv_3x3": lambda c, s: SepConv(c, c, 3, s, 1),
    "sep_conv_5x5": lambda c, s: SepConv(c, c, 5, s, 2),
    "sep_conv_7x7": lambda c, s: SepConv(c, c, 7, s, 3),
    "dil_conv_3x3": lambda c, s: DilConv(c, c, 3, s, 2, 2),
    "dil_conv_5x5": lambda c, s: DilConv(c, c, 5, s, 4, 2),
    "dil_sep_conv_3x3": lambda c, s: DilConv(c, c, 3, s, 2, 2),
    "conv_3x1_1x3": lambda c, s: Conv1xN_Nx1(c, 3, s),
    "conv_7x1_1x7": lambda c, s: Conv1xN_Nx1(c, 7, s),
}

#: the op set each NDS space samples from (used for sampling and mutation; any op in OPS can be built)
SPACE_OPS: dict[str, tuple[str, ...]] = {
    "darts": ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
              "dil_conv_5x5"),
    "pdarts": ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
               "dil_conv_5x5"),
    "enas": ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "skip_connect"),
    "nasnet": ("skip_connect", "conv_3x1_1x3", "conv_7x1_1x7", "dil_conv_3x3", "avg_pool_3x3", "max_pool_3x3",
               "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3", "sep_conv_5x5",
               "sep_conv_7x7"),
    "amoeba": ("skip_connect", "avg_pool_3x3", "max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
               "dil_sep_conv_3x3", "conv_7x1_1x7"),
    "pnas": ("sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "dil_conv_3x3", "max_pool_3x3", "avg_pool_3x3",
             "skip_connect", "conv_7x1_1x7"),
}
NODES = {"darts": 4, "pdarts": 4, "enas": 5, "nasnet": 5, "amoeba": 5, "pnas": 5}

# ----------------------------------------------------------------------------------------------- genotypes

Genotype = dict[str, Any]


def _literal_call(text: str) -> dict[str, Any]:
    """Evaluate ``dict(key=<literal>, ...)`` (and ``range(a, b)`` inside) without executing anything else."""
    tree = ast.parse(text, mode="eval").body
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "dict" and not tree.args):
        raise ValueError("not a Genotype(...) expression")

    def literal(node: ast.AST) -> Any:
        try:
            return ast.literal_eval(node)
        except ValueError:  # its message names an AST object, not the text: say which part is not a literal
            bad = next((n for n in ast.walk(node) if isinstance(n, (ast.Name, ast.Call, ast.Attribute))), node)
            part = ast.get_source_segment(text, bad) or type(bad).__name__
            hint = f" (an op name is quoted: '{part}')" if isinstance(bad, ast.Name) else ""
            raise ValueError(f"{part} is not a literal{hint}") from None

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            return list(range(*[literal(a) for a in node.args]))
        return literal(node)

    return {kw.arg: value(kw.value) for kw in tree.keywords if kw.arg}


def parse_genotype(arch: str) -> Genotype:
    """A genotype dict from canonical JSON or from the DARTS ``Genotype(...)`` repr."""
    if not isinstance(arch, str):
        raise InvalidArchError(f"an NDS arch must be a string, got {type(arch).__name__}")
    text = arch.strip()
    try:
        if text.startswith("Genotype("):
            body = re.sub(r"^Genotype\(|\)$", "", text)
            geno = _literal_call("dict(" + body + ")")
        else:
            geno = json.loads(text)
    except Exception as err:  # eval/json errors of every kind mean the same thing here
        raise InvalidArchError(f"cannot read the genotype {arch[:80]!r}: {type(err).__name__}: {err}") from None
    if not isinstance(geno, dict):
        raise InvalidArchError(f"a genotype must be a mapping, got {type(geno).__name__}")
    out: Genotype = {}
    for cell in ("normal", "reduce"):
        pairs = geno.get(cell)
        concat = geno.get(f"{cell}_concat")
        if not isinstance(pairs, (list, tuple)) or not pairs or len(pairs) % 2:
            raise InvalidArchError(f"genotype {cell!r} must list an even number of (op, input) pairs")
        norm = []
        for k, pair in enumerate(pairs):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise InvalidArchError(f"genotype {cell}[{k}] must be (op, input), got {pair!r}")
            op, inp = pair
            if op not in OPS:
                raise InvalidArchError(f"unknown op {op!r} in {cell}; valid ops: {', '.join(sorted(OPS))}")
            node = k // 2 + 2
            if not isinstance(inp, int) or not 0 <= inp < node:
                raise InvalidArchError(f"{cell}[{k}] = {pair!r}: input must be an int in 0..{node - 1}")
            norm.append([op, int(inp)])
        n_nodes = len(pairs) // 2
        if not isinstance(concat, (list, tuple, range)) or not concat or \
                any(not isinstance(c, int) or not 0 <= c < n_nodes + 2 for c in concat):
            raise InvalidArchError(f"{cell}_concat must list nodes in 0..{n_nodes + 1}, got {concat!r}")
        out[cell], out[f"{cell}_concat"] = norm, [int(c) for c in concat]
    for key in ("width", "depth"):
        if key in geno and geno[key] is not None:
            if not isinstance(geno[key], int) or geno[key] < 1:
                raise InvalidArchError(f"genotype {key} must be a positive int, got {geno[key]!r}")
            out[key] = int(geno[key])
    return out


def format_genotype(geno: Genotype) -> str:
    return json.dumps(geno, sort_keys=True, separators=(",", ":"))


# ----------------------------------------------------------------------------------------------------- model


class Cell(nn.Module):
    def __init__(self, geno: Genotype, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        kind = "reduce" if reduction else "normal"
        pairs, self.concat = geno[kind], geno[f"{kind}_concat"]
        self.inputs = [inp for _, inp in pairs]
        self.ops = nn.ModuleList(OPS[op](c, 2 if reduction and inp < 2 else 1) for op, inp in pairs)
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(len(self.ops) // 2):
            a, b = 2 * i, 2 * i + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat([states[i] for i in self.concat], dim=1)


class NetworkCIFAR(nn.Module):
    """DARTS' evaluation network: a 3x3 stem to 3C channels, ``layers`` cells with reductions (channels doubled) at
    1/3 and 2/3 of the depth, global average pooling and a linear classifier. No auxiliary head, no drop-path."""

    def __init__(self, geno: Genotype, C: int, layers: int, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        c_curr = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = Cell(geno, c_pp, c_p, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


# ----------------------------------------------------------------------------------------------------- space


class NDSSpace(SearchSpace):
    """One NDS design space; ``C``/``layers`` apply to archs that do not carry their own width/depth. ``name``: what
    the space is called (default ``nds_<variant>``; the same cells with another benchmark's archs, e.g. SWAP-NAS's
    DARTS genotypes, are named for that benchmark)."""

    size = None

    def __init__(self, variant: str = "darts", C: int = 16, layers: int = 8, *, name: str | None = None) -> None:
        if variant not in SPACE_OPS:
            raise ValueError(f"unknown NDS space {variant!r}; valid: {', '.join(sorted(SPACE_OPS))}")
        if C < 1 or layers < 1:
            raise ValueError(f"an NDS network needs C >= 1 and layers >= 1, got C={C}, layers={layers}")
        self.variant, self.C, self.layers = variant, C, layers
        self.name = name or f"nds_{variant}"

    def validate(self, arch: str) -> str:
        return format_genotype(parse_genotype(arch))

    def sample(self, rng: np.random.Generator) -> str:
        ops, nodes = SPACE_OPS[self.variant], NODES[self.variant]
        geno: Genotype = {}
        for cell in ("normal", "reduce"):
            pairs = []
            for node in range(2, nodes + 2):
                for inp in rng.choice(node, size=2, replace=False):
                    pairs.append([str(rng.choice(ops)), int(inp)])
            geno[cell], geno[f"{cell}_concat"] = pairs, list(range(2, nodes + 2))
        return format_genotype(geno)

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """Change the op or the input of one (op, input) pair of one cell."""
        geno = parse_genotype(arch)
        cell = "normal" if rng.random() < 0.5 else "reduce"
        k = int(rng.integers(len(geno[cell])))
        op, inp = geno[cell][k]
        node = k // 2 + 2
        if rng.random() < 0.5:
            geno[cell][k] = [str(rng.choice([o for o in SPACE_OPS[self.variant] if o != op])), inp]
        else:
            choices = [i for i in range(node) if i != inp]
            geno[cell][k] = [op, int(rng.choice(choices))]
        return format_genotype(geno)

    def _slots(self) -> list[tuple[str, int, int]]:
        """(cell, pair index, node) of every (op, input) pair of a genotype of this space, in code order."""
        nodes = NODES[self.variant]
        return [(cell, 2 * (node - 2) + j, node) for cell in ("normal", "reduce") for node in range(2, nodes + 2)
                for j in (0, 1)]

    def choices(self) -> list[list[str]]:
        """For every (op, input) pair of both cells, in order: its op (from the space's op set), then its input."""
        ops = list(SPACE_OPS[self.variant])
        out: list[list[str]] = []
        for _, _, node in self._slots():
            out += [ops, [str(i) for i in range(node)]]
        return out

    def encode(self, arch: str) -> list[int]:
        """Each pair's op and input as :meth:`choices` indices (width, depth and concat are not decisions)."""
        geno = parse_genotype(arch)
        ops = SPACE_OPS[self.variant]
        code: list[int] = []
        for cell, k, _ in self._slots():
            pairs = geno[cell]
            if len(pairs) != 2 * NODES[self.variant]:
                raise InvalidArchError(f"a genotype of {self.name} has {2 * NODES[self.variant]} pairs per cell, "
                                       f"this one {len(pairs)} in {cell}")
            op, inp = pairs[k]
            if op not in ops:
                raise InvalidArchError(f"op {op!r} is not in the {self.name} op set ({', '.join(ops)})")
            code += [ops.index(op), int(inp)]
        return code

    def decode(self, code: list[int]) -> str:
        """The genotype of a code; a cell outputs every intermediate node (DARTS, PDARTS) or those no other node
        reads (the loose ends, as ENAS, NASNet, Amoeba and PNAS cells do); no width/depth of its own."""
        slots = self._slots()
        if len(code) != 2 * len(slots):
            raise InvalidArchError(f"a {self.name} code has {2 * len(slots)} entries, got {len(code)}")
        ops = SPACE_OPS[self.variant]
        nodes = NODES[self.variant]
        geno: Genotype = {"normal": [], "reduce": []}
        for (cell, _, node), op_i, inp in zip(slots, code[::2], code[1::2]):
            if not 0 <= int(inp) < node:
                raise InvalidArchError(f"input {inp} of a node-{node} pair is outside 0..{node - 1}")
            geno[cell].append([ops[int(op_i)], int(inp)])
        for cell in ("normal", "reduce"):
            inner = list(range(2, nodes + 2))
            if self.variant in ("darts", "pdarts"):
                geno[f"{cell}_concat"] = inner
            else:
                used = {inp for _, inp in geno[cell]}
                geno[f"{cell}_concat"] = [n for n in inner if n not in used] or inner
        return format_genotype(parse_genotype(format_genotype(geno)))

    def build(self, arch: str, num_classes: int, in_channels: int = 3) -> nn.Module:
        geno = parse_genotype(arch)
        return NetworkCIFAR(geno, geno.get("width", self.C), geno.get("depth", self.layers), num_classes, in_channels)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "C": self.C, "layers": self.layers}

    def label(self) -> str:
        what = f"NDS {self.variant.upper()}" if self.name == f"nds_{self.variant}" else \
            f"{self.name} ({self.variant.upper()} cells)"
        return (f"{what} network (DARTS NetworkCIFAR; each arch's own width/depth, else C={self.C}, "
                f"{self.layers} layers)")


for _variant in SPACE_OPS:  # one class, one registered constructor per design space (its settings: C, layers)
    register_space(f"nds_{_variant}")(partial(NDSSpace, _variant))
register_space("darts_swap")(partial(NDSSpace, "darts", name="darts_swap"))  # the DARTS cells, SWAP-NAS's archs
