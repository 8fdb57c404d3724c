"""NAS-Bench-101 ground truth from its published exports, converted once to a compact table.

* ``nb101_pkl``: the ``nasbench_only108`` pickle layout (``{module_hash: (fixed, computed)}``; fixed holds
  ``module_adjacency``, ``module_operations``, ``trainable_parameters``; ``computed[108]`` the runs): the column
  ``cifar10`` is the mean final test accuracy over the runs (%), ``cifar10_valid`` the mean final validation accuracy.
* ``nb101_json``: parallel lists with ``operations`` as codes (-1 input, -2 output, -3 padding, 0 conv3x3,
  1 conv1x1, 2 maxpool), ``adjacency``, ``key``, ``trainable_parameters`` and ``108_final_validation_accuracy``
  (a fraction): only validation accuracy, written to ``cifar10_valid``.
* ``nb101_csv``: ``adjacency_7x7_rowmajor``, ``ops`` (``|``-joined names) and ``val_accuracy`` (%) -> ``cifar10_valid``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from ntkexp.benchmarks.groundtruth import merge_duplicates, register_converter, write_table
from ntkexp.spaces.nasbench101 import from_official, module_hash

JSON_CODES = {-1: "input", -2: "output", 0: "conv3x3-bn-relu", 1: "conv1x1-bn-relu", 2: "maxpool3x3"}


def _finish(rows: list[dict], out: Path) -> pd.DataFrame:
    # NAS-Bench-101 stores each pruned cell once: duplicates mean the export encodes cells differently
    frame = merge_duplicates(pd.DataFrame(rows), out.name)
    write_table(frame, out)
    return frame


@register_converter("nb101_pkl")
def convert_nb101_pkl(source: Path, out: Path) -> pd.DataFrame:
    with open(source, "rb") as fh:
        data = pickle.load(fh)
    rows = []
    for key, (fixed, computed) in data.items():
        arch = from_official(fixed["module_adjacency"], list(fixed["module_operations"]))
        runs = computed[108]
        rows.append({"arch_str": arch, "hash": key, "params": int(fixed["trainable_parameters"]),
                     "cifar10": 100.0 * float(np.mean([r["final_test_accuracy"] for r in runs])),
                     "cifar10_valid": 100.0 * float(np.mean([r["final_validation_accuracy"] for r in runs]))})
    return _finish(rows, out)


@register_converter("nb101_json")
def convert_nb101_json(source: Path, out: Path) -> pd.DataFrame:
    data = json.loads(Path(source).read_text())
    rows = []
    for i, key in enumerate(data["key"]):
        arch = from_official(data["adjacency"][i], data["operations"][i], JSON_CODES)
        rows.append({"arch_str": arch, "hash": key, "params": int(data["trainable_parameters"][i]),
                     "cifar10_valid": 100.0 * float(data["108_final_validation_accuracy"][i])})
    return _finish(rows, out)


@register_converter("nb101_csv")
def convert_nb101_csv(source: Path, out: Path) -> pd.DataFrame:
    table = pd.read_csv(source)
    rows = []
    for bits, ops, acc in zip(table["adjacency_7x7_rowmajor"], table["ops"], table["val_accuracy"]):
        matrix = np.array([int(b) for b in str(bits).zfill(49)], dtype=np.int64).reshape(7, 7)
        arch = from_official(matrix, ops.split("|"))
        rows.append({"arch_str": arch, "hash": module_hash(arch), "cifar10_valid": float(acc)})
    return _finish(rows, out)
