"""NAS-Bench-101: cells of up to 7 vertices and 9 edges (conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3), stacked
3 x 3 with 128 stem channels, as built by the ``nasbench-pytorch`` package (its Network, with its own init).

An arch is written ``<adjacency, row-major 0/1>|<op>,<op>,...`` for its pruned (canonical) cell, e.g.
``0110010000111100000010000010000001100000000000000|input,conv3x3-bn-relu,...,output``; its benchmark identity is
the module hash of NAS-Bench-101 (``graph_util.hash_module`` of the pruned matrix and op labels).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ntkexp.spaces.base import InvalidArchError, SearchSpace, register_space

OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
MAX_VERTICES = 7
MAX_EDGES = 9


def parse(arch: str) -> tuple[np.ndarray, list[str]]:
    if not isinstance(arch, str) or arch.count("|") != 1:
        raise InvalidArchError(f"NAS-Bench-101 arch must read '<adjacency bits>|<op>,<op>,...', got {arch!r}")
    bits, ops_text = arch.split("|")
    ops = ops_text.split(",")
    n = len(ops)
    if not 2 <= n <= MAX_VERTICES or len(bits) != n * n or set(bits) - {"0", "1"}:
        raise InvalidArchError(f"NAS-Bench-101 arch {arch!r}: need {n}x{n}={n * n} adjacency bits for {n} ops "
                               f"(2..{MAX_VERTICES} vertices), got {len(bits)}")
    matrix = np.array([int(b) for b in bits], dtype=np.int64).reshape(n, n)
    return matrix, ops


def prune(matrix: np.ndarray, ops: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """Drop the vertices not on an input -> output path, as NAS-Bench-101 does; None if input cannot reach output."""
    n = len(ops)
    forward, stack = {0}, [0]
    while stack:
        v = stack.pop()
        for w in np.flatnonzero(matrix[v]):
            if int(w) not in forward:
                forward.add(int(w))
                stack.append(int(w))
    backward, stack = {n - 1}, [n - 1]
    while stack:
        v = stack.pop()
        for u in np.flatnonzero(matrix[:, v]):
            if int(u) not in backward:
                backward.add(int(u))
                stack.append(int(u))
    keep = sorted(forward & backward)
    if 0 not in keep or n - 1 not in keep:
        return None
    return matrix[np.ix_(keep, keep)], [ops[i] for i in keep]


def canonical(matrix: np.ndarray, ops: list[str]) -> str:
    """Validate, prune (drop vertices not on an input-output path, as the benchmark does) and format."""
    matrix = np.asarray(matrix, dtype=np.int64)
    n = len(ops)
    if matrix.shape != (n, n):
        raise InvalidArchError(f"adjacency of shape {matrix.shape} does not fit {n} ops")
    if np.any(np.tril(matrix) != 0):
        raise InvalidArchError("NAS-Bench-101 adjacency must be upper triangular (a DAG in vertex order)")
    if ops[0] != "input" or ops[-1] != "output" or any(op not in OPS for op in ops[1:-1]):
        raise InvalidArchError(f"ops must be input, {{{', '.join(OPS)}}}..., output; got {ops}")
    if np.any((matrix != 0) & (matrix != 1)):
        raise InvalidArchError("NAS-Bench-101 adjacency entries must be 0 or 1")
    pruned_cell = prune(matrix, list(ops))
    if pruned_cell is None:
        raise InvalidArchError("the cell has no path from input to output")
    pruned, pruned_ops = pruned_cell
    if int(pruned.sum()) > MAX_EDGES:
        raise InvalidArchError(f"the cell has {int(pruned.sum())} edges; NAS-Bench-101 allows at most {MAX_EDGES}")
    return "".join(str(int(b)) for b in pruned.reshape(-1)) + "|" + ",".join(pruned_ops)


#: the (row, column) of each possible edge of a 7-vertex cell, row-major
EDGE_SLOTS: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES))


def padded(arch: str) -> tuple[np.ndarray, list[str]]:
    """The cell of ``arch`` on 7 vertices: its vertices but the output in place, the output last, absent inner
    vertices without edges and with op conv3x3 (they are pruned away again by :func:`canonical`)."""
    matrix, ops = parse(arch)
    n = len(ops)
    full = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int64)
    full[: n - 1, : n - 1] = matrix[: n - 1, : n - 1]
    full[: n - 1, MAX_VERTICES - 1] = matrix[: n - 1, n - 1]
    return full, ops[:-1] + ["conv3x3-bn-relu"] * (MAX_VERTICES - n) + ["output"]


def module_hash(arch: str) -> str:
    from ntkexp.extras import require

    graph_util = require("nasbench_pytorch.model.graph_util", "search_space=nasbench101")

    matrix, ops = parse(arch)
    labels = [-1] + [OPS.index(op) for op in ops[1:-1]] + [-2]
    return str(graph_util.hash_module(matrix, labels))


@register_space("nasbench101")
class NASBench101(SearchSpace):
    name = "nasbench101"
    size = None  # 423,624 unique cells; sampled, not enumerated

    def __init__(self, stem_channels: int = 128, num_stacks: int = 3, cells_per_stack: int = 3) -> None:
        if min(stem_channels, num_stacks, cells_per_stack) < 1:
            raise ValueError("NAS-Bench-101 needs stem_channels, num_stacks and cells_per_stack >= 1")
        self.stem_channels, self.num_stacks, self.cells_per_stack = stem_channels, num_stacks, cells_per_stack

    def validate(self, arch: str) -> str:
        matrix, ops = parse(arch)
        return canonical(matrix, ops)

    def sample(self, rng: np.random.Generator) -> str:
        while True:  # uniform over valid (matrix, ops) draws, by rejection
            matrix = np.triu(rng.integers(0, 2, size=(MAX_VERTICES, MAX_VERTICES)), 1)
            ops = ["input", *(OPS[i] for i in rng.integers(0, 3, size=MAX_VERTICES - 2)), "output"]
            try:
                return canonical(matrix, ops)
            except InvalidArchError:
                continue

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """Flip one edge or change one op of the (7-vertex padded) cell, redrawn until the result is valid and new
        (two changes when no single one gives a new valid cell, as for the bare input -> output cell)."""
        full, full_ops = padded(arch)
        for attempt in range(2000):
            m, o = full.copy(), list(full_ops)
            for _ in range(1 if attempt < 300 else 2):
                if rng.random() < 0.5:
                    i, j = sorted(rng.choice(MAX_VERTICES, size=2, replace=False))
                    m[i, j] = 1 - m[i, j]
                else:
                    k = int(rng.integers(1, MAX_VERTICES - 1))
                    o[k] = str(rng.choice([op for op in OPS if op != o[k]]))
            try:
                child = canonical(m, o)
            except InvalidArchError:
                continue
            if child != arch:
                return child
        raise InvalidArchError(f"no valid mutation found for {arch}")

    def choices(self) -> list[list[str]]:
        """One 0/1 decision per upper-triangular edge of the 7-vertex cell (row-major), then the op of each of the
        five inner vertices."""
        return [["0", "1"] for _ in EDGE_SLOTS] + [list(OPS) for _ in range(MAX_VERTICES - 2)]

    def encode(self, arch: str) -> list[int]:
        """The cell padded to 7 vertices (absent inner vertices: no edges, conv3x3), as :meth:`choices` indices."""
        full, full_ops = padded(self.validate(arch))
        return [int(full[i, j]) for i, j in EDGE_SLOTS] + [OPS.index(op) for op in full_ops[1:-1]]

    def decode(self, code: list[int]) -> str:
        if len(code) != len(EDGE_SLOTS) + MAX_VERTICES - 2:
            raise InvalidArchError(f"a NAS-Bench-101 code has {len(EDGE_SLOTS) + MAX_VERTICES - 2} entries, "
                                   f"got {len(code)}")
        matrix = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int64)
        for (i, j), bit in zip(EDGE_SLOTS, code):
            matrix[i, j] = int(bit)
        ops = ["input", *(OPS[int(c)] for c in code[len(EDGE_SLOTS):]), "output"]
        return canonical(matrix, ops)

    def build(self, arch: str, num_classes: int, in_channels: int = 3) -> nn.Module:
        from ntkexp.extras import require

        require("nasbench_pytorch", "search_space=nasbench101")
        from nasbench_pytorch.model import Network
        from nasbench_pytorch.model.model import Placeholder

        matrix, ops = parse(self.validate(arch))
        net = Network((matrix, ops), num_labels=num_classes, in_channels=in_channels,
                      stem_out_channels=self.stem_channels, num_stacks=self.num_stacks,
                      num_modules_per_stack=self.cells_per_stack)
        # the package's placeholders (a dummy scalar `a` each) and per-cell device markers are not weights of the
        # benchmark's network: make them buffers, out of the NTK and of the parameter count
        for module in net.modules():
            names = list(module._parameters) if isinstance(module, Placeholder) else \
                [n for n in ("dev_param",) if isinstance(module._parameters.get(n), nn.Parameter)]
            for name in names:
                value = module._parameters.pop(name)
                module.register_buffer(name, None if value is None else value.detach())
        return net

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "stem_channels": self.stem_channels, "num_stacks": self.num_stacks,
                "cells_per_stack": self.cells_per_stack}

    def label(self) -> str:
        size = "as benchmarked" if (self.stem_channels, self.num_stacks, self.cells_per_stack) == (128, 3, 3) \
            else "a reduced skeleton, not the benchmarked network"
        return (f"NAS-Bench-101 network (stem {self.stem_channels}, {self.num_stacks} stacks x "
                f"{self.cells_per_stack} cells: {size})")


def from_official(matrix: Any, ops: list[str] | list[int], op_codes: dict[int, str] | None = None) -> str:
    """Canonical arch string from a benchmark record: op names, or integer codes with ``op_codes`` (padding
    vertices, code -3 in some exports, are dropped with their rows and columns)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    if op_codes is not None:
        keep = [i for i, c in enumerate(ops) if int(c) in op_codes]
        matrix = matrix[np.ix_(keep, keep)]
        ops = [op_codes[int(ops[i])] for i in keep]
    return canonical(matrix, [str(o) for o in ops])

