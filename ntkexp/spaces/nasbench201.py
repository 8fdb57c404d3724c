"""NAS-Bench-201 / NATS-Bench topology search space.

The network is the benchmark's cell-based TinyNetwork (as in NATS-Bench / xautodl): a 3x3 conv + BN stem with ``C``
channels, three stages of ``N`` cells each, separated by ResNet basic-block reductions (C -> 2C -> 4C), then
BN + ReLU, global average pooling and a linear classifier. A cell is a 4-node DAG whose 6 edges each carry one of
``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``; the convs are ReLU-Conv-BN.

Architectures are written as the benchmark writes them, ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, and indexed as the
benchmark indexes them (a fixed permutation shipped in ``resources/nb201_official_order.npy``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Sequence, Union

import numpy as np
import torch
from torch import nn

from ntkexp.spaces.base import InvalidArchError, SearchSpace, register_space

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (to_node, from_node) of the 6 edges, in arch-string order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_ARCHS = len(OPS) ** len(EDGES)


def parse_string(arch: str) -> tuple[str, ...]:
    """The six op names of an arch string, in edge order; :class:`InvalidArchError` explains a malformed string."""
    if not isinstance(arch, str):
        raise InvalidArchError(f"NAS-Bench-201 arch must be a string, got {type(arch).__name__}")
    nodes = arch.split("+")
    if len(nodes) != 3:
        raise InvalidArchError(
            f"NAS-Bench-201 arch {arch!r} must have 3 nodes separated by '+', "
            "like '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|'"
        )
    ops: list[str] = []
    for node_idx, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise InvalidArchError(f"node {node_idx} of {arch!r} must be enclosed in '|': got {node!r}")
        entries = node[1:-1].split("|")
        if len(entries) != node_idx:
            raise InvalidArchError(f"node {node_idx} of {arch!r} must have {node_idx} input edge(s), got {len(entries)}")
        for src, entry in enumerate(entries):
            op, sep, inp = entry.partition("~")
            if not sep or inp != str(src):
                raise InvalidArchError(f"edge {entry!r} of {arch!r} must read 'op~{src}'")
            if op not in OPS:
                raise InvalidArchError(f"unknown op {op!r} in {arch!r}; valid ops: {', '.join(OPS)}")
            ops.append(op)
    return tuple(ops)


def format_ops(ops: tuple[str, ...] | list[str]) -> str:
    if len(ops) != len(EDGES) or any(op not in OPS for op in ops):
        raise InvalidArchError(f"need 6 ops from {OPS}, got {ops!r}")
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


def parse_supernet(arch: str) -> tuple[tuple[str, ...], ...]:
    """The op sets of a supernet string, ``|none,skip_connect~0|+|...|`` (each edge's ops joined by commas, each set
    non-empty and in the benchmark's op order); a plain arch string is the supernet of one op per edge."""
    cells = [part.strip("|") for part in arch.strip().split("+")]
    edges: list[tuple[str, ...]] = []
    for node, part in enumerate(cells, start=1):
        items = part.split("|")
        if len(items) != node:
            raise InvalidArchError(f"supernet node {node} needs {node} edges in {arch!r}")
        for src, item in enumerate(items):
            ops_text, _, index = item.rpartition("~")
            if index != str(src):
                raise InvalidArchError(f"edge {item!r} of node {node} in {arch!r} must come from node {src}")
            ops = tuple(o for o in ops_text.split(",") if o)
            unknown = [o for o in ops if o not in OPS]
            if not ops or unknown or len(set(ops)) < len(ops):
                raise InvalidArchError(f"edge {item!r} in {arch!r} needs distinct ops from {', '.join(OPS)}")
            edges.append(tuple(o for o in OPS if o in ops))
    if len(edges) != len(EDGES):
        raise InvalidArchError(f"a supernet string has {len(EDGES)} edges on 3 nodes; got {arch!r}")
    return tuple(edges)


def reaches_output(live: Sequence[bool]) -> bool:
    """Whether node 3 of a cell is reachable from node 0 through the edges (in :data:`EDGES` order) marked live."""
    reached = {0}
    for (to, src), ok in zip(EDGES, live):
        if ok and src in reached:
            reached.add(to)
    return 3 in reached


def format_supernet(edges: Sequence[Sequence[str]]) -> str:
    """The supernet string of per-edge op sets (see :func:`parse_supernet`)."""
    sets = [",".join(o for o in OPS if o in ops) for ops in edges]
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*sets)


def code_of_string(arch: str) -> int:
    """Base-5 code of an arch (first edge most significant); a bijection onto range(15625), not the official index."""
    code = 0
    for op in parse_string(arch):
        code = code * len(OPS) + OPS.index(op)
    return code


def string_of_code(code: int) -> str:
    if not 0 <= code < NUM_ARCHS:
        raise InvalidArchError(f"code {code} is outside range(15625)")
    ops = []
    for _ in EDGES:
        code, digit = divmod(code, len(OPS))
        ops.append(OPS[digit])
    return format_ops(ops[::-1])


@lru_cache(maxsize=1)
def _official_order() -> tuple[np.ndarray, np.ndarray]:
    """(code of each official index, official index of each code)."""
    with resources.files("ntkexp.resources").joinpath("nb201_official_order.npy").open("rb") as fh:
        codes = np.load(fh).astype(np.int64)
    inverse = np.empty_like(codes)
    inverse[codes] = np.arange(len(codes))
    return codes, inverse


def index_of_string(arch: str) -> int:
    return int(_official_order()[1][code_of_string(arch)])


def string_of_index(index: int) -> str:
    if not 0 <= int(index) < NUM_ARCHS:
        raise InvalidArchError(f"NAS-Bench-201 index {index} is outside 0..{NUM_ARCHS - 1}")
    return string_of_code(int(_official_order()[0][int(index)]))


# ----------------------------------------------------------------------------------------------------------- model
class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` op: a zero tensor of the input's shape that keeps the graph connected (as the benchmark does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, channels: int) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise InvalidArchError(f"unknown op {op!r}")


class MixedEdge(nn.Module):
    """An edge of TE-NAS's supernet: the mean (``mix="mean"``: TE-NAS's DARTS-V1 cell with equal weights on the ops
    left) or the sum of the outputs of the ops it still holds. With ``universe`` it holds a module for every op of
    the universe and uses only ``ops``, so every op set of one supernet has the same parameters (a pruned network
    can share the weights of the network it was pruned from, as TE-NAS compares them)."""

    def __init__(self, ops: tuple[str, ...], channels: int, universe: Sequence[str] | None = None,
                 mix: str = "sum") -> None:
        super().__init__()
        if mix not in ("sum", "mean"):
            raise ValueError(f"a supernet edge mixes its ops by 'sum' or 'mean', not {mix!r}")
        held = list(universe) if universe is not None else list(ops)
        missing = [op for op in ops if op not in held]
        if missing:
            raise InvalidArchError(f"ops {missing} are not in the supernet's universe {held}")
        self.ops = nn.ModuleList(make_op(op, channels) for op in held)
        self.active = [held.index(op) for op in ops]
        self.mix = mix

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ops[self.active[0]](x)
        for i in self.active[1:]:
            out = out + self.ops[i](x)
        return out / len(self.active) if self.mix == "mean" else out


EdgeOps = Union[str, tuple[str, ...]]


class Cell(nn.Module):
    """One NB201 cell: node_j = sum_{i<j} op_{j<-i}(node_i); the output is node 3. An edge given as a tuple of ops is
    a supernet edge (:class:`MixedEdge`)."""

    def __init__(self, ops: Sequence[EdgeOps], channels: int, universe: Sequence[str] | None = None,
                 mix: str = "sum") -> None:
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels) if isinstance(op, str) else
                                   MixedEdge(op, channels, universe, mix) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for to in range(1, 4):
            total = None
            for src in range(to):
                out = self.edges[k](nodes[src])
                total = out if total is None else total + out
                k += 1
            nodes.append(total)
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    """The stride-2 reduction block between stages."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    """The NAS-Bench-201 macro skeleton around one cell genotype; ``forward`` returns logits.

    ``stem=False`` feeds the input to the first cell directly (it must then have ``C`` channels) and ``depth`` keeps
    only the first ``depth`` blocks (cells and reductions): with ``C=1, N=1, stem=False, depth=1`` it is TE-NAS's
    thin network for counting linear regions."""

    def __init__(self, ops: Sequence[EdgeOps], C: int = 16, N: int = 5, num_classes: int = 10, in_channels: int = 3,
                 stem: bool = True, depth: int | None = None, universe: Sequence[str] | None = None,
                 mix: str = "sum"):
        super().__init__()
        if not stem and in_channels != C:
            raise ValueError(f"without a stem the input must have C={C} channels, not {in_channels}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C)) if stem \
            else nn.Identity()
        layers: list[nn.Module] = []
        c_prev = C
        for stage, c in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, c))
                c_prev = c
            layers.extend(Cell(ops, c, universe, mix) for _ in range(N))
        if depth is not None:
            layers = layers[:depth]
            c_prev = C * (2 ** sum(isinstance(m, ResNetBasicBlock) for m in layers))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(out).flatten(1))


@register_space("nasbench201")
class NASBench201(SearchSpace):
    """The 15,625 NB201 cells in the TinyNetwork skeleton of width ``C`` and ``N`` cells per stage."""

    name = "nasbench201"
    size = NUM_ARCHS

    def __init__(self, C: int = 16, N: int = 5) -> None:
        if C < 1 or N < 0:
            raise ValueError(f"NAS-Bench-201 needs C >= 1 and N >= 0, got C={C}, N={N}")
        self.C, self.N = C, N

    def sample(self, rng: np.random.Generator) -> str:
        return format_ops([OPS[i] for i in rng.integers(0, len(OPS), size=len(EDGES))])

    def validate(self, arch: str) -> str:
        return format_ops(parse_string(arch))

    def build(self, arch: str, num_classes: int, in_channels: int = 3) -> nn.Module:
        return TinyNetwork(parse_string(arch), self.C, self.N, num_classes, in_channels)

    def has_input_path(self, arch: str) -> bool:
        return reaches_output([op != "none" for op in parse_string(arch)])

    def thin_network(self, arch: str, num_classes: int) -> nn.Module:
        """TE-NAS's network for counting linear regions: one cell of width 1, no stem, on one-channel inputs."""
        return TinyNetwork(parse_string(arch), C=1, N=1, num_classes=num_classes, in_channels=1, stem=False, depth=1)

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """Replace the op of one edge by a different, uniformly chosen op, the edge chosen as NAS-Bench-201's
        ``R_EA.py`` does: a uniformly chosen node (1, 2 or 3), then one of its incoming edges (so edge 1<-0 is
        changed with probability 1/3, each edge into node 3 with 1/9)."""
        ops = list(parse_string(arch))
        node = int(rng.integers(1, 4))
        into = [i for i, (to, _) in enumerate(EDGES) if to == node]
        edge = into[int(rng.integers(len(into)))]
        ops[edge] = rng.choice([op for op in OPS if op != ops[edge]])
        return format_ops(ops)

    def choices(self) -> list[list[str]]:
        return [list(OPS) for _ in EDGES]

    def encode(self, arch: str) -> list[int]:
        return [OPS.index(op) for op in parse_string(arch)]

    def decode(self, code: list[int]) -> str:
        return format_ops([OPS[int(i)] for i in code])

    def index_of(self, arch: str) -> int:
        return index_of_string(arch)

    def arch_of(self, index: int) -> str:
        return string_of_index(index)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "C": self.C, "N": self.N}

    def label(self) -> str:
        size = "as benchmarked" if (self.C, self.N) == (16, 5) else "a reduced skeleton, not the benchmarked network"
        return f"NAS-Bench-201 network (C={self.C}, N={self.N}: {size})"


class NASBench201Supernet(NASBench201):
    """TE-NAS's NB201 supernet: every edge holds a set of ops whose outputs are averaged (``mix="mean"``, TE-NAS's
    DARTS-V1 cell with equal weights; ``"sum"`` adds them). Its "archs" are supernet strings
    (:func:`parse_supernet`); used by the pruning search, which scores supernets with the run's metrics. Every
    supernet holds a module for each op of ``universe`` and uses the ops of its string, and with ``paired`` all are
    initialised from one seed (:meth:`init_key`): a pruned supernet has the weights of the one it was pruned from,
    as TE-NAS compares them. They are not benchmark archs: :meth:`index_of` is -1."""

    name = "nasbench201_supernet"

    def __init__(self, C: int = 3, N: int = 1, mix: str = "mean", universe: Sequence[str] | None = OPS,
                 paired: bool = True) -> None:
        super().__init__(C, N)
        if mix not in ("sum", "mean"):
            raise ValueError(f"task.prune.mix must be 'sum' or 'mean', got {mix!r}")
        if universe is None and paired:
            raise ValueError("a supernet whose members share weights needs the universe of ops they all hold")
        self.mix, self.paired = mix, paired
        # None: a supernet holds modules for its own ops only
        self.universe = None if universe is None else tuple(o for o in OPS if o in universe)

    def validate(self, arch: str) -> str:
        edges = parse_supernet(arch)
        outside = sorted({op for ops in edges for op in ops} - set(self.universe or OPS))
        if outside:
            raise InvalidArchError(f"ops {outside} of {arch!r} are not in the supernet's ops {self.universe}")
        return format_supernet(edges)

    def build(self, arch: str, num_classes: int, in_channels: int = 3) -> nn.Module:
        return TinyNetwork(parse_supernet(arch), self.C, self.N, num_classes, in_channels, universe=self.universe,
                           mix=self.mix)

    def thin_network(self, arch: str, num_classes: int) -> nn.Module:
        return TinyNetwork(parse_supernet(arch), C=1, N=1, num_classes=num_classes, in_channels=1, stem=False,
                           depth=1, universe=self.universe, mix=self.mix)

    def init_key(self, arch: str) -> str:
        return "supernet" if self.paired else arch

    def has_input_path(self, arch: str) -> bool:
        return reaches_output([any(op != "none" for op in ops) for ops in parse_supernet(arch)])

    def label(self) -> str:
        size = "TE-NAS's size" if (self.C, self.N) == (3, 1) else f"C={self.C}, N={self.N}"
        return f"NAS-Bench-201 supernet ({size}, ops {'averaged' if self.mix == 'mean' else 'summed'} on each edge)"

    def index_of(self, arch: str) -> int:
        return -1

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "supernet": True, "mix": self.mix,
                "universe": None if self.universe is None else list(self.universe), "paired": self.paired}
