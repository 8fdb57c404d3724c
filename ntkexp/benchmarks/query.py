"""Look an architecture up in a benchmark that ships with ntkexp, with no run and no parquet:

    >>> import ntkexp
    >>> nb201 = ntkexp.benchmark("nb201")
    >>> nb201.query("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    ...             dataset="cifar10", epochs=200)
    94.3733...

Accuracies are the table's (seed means; ``ntkexp/resources/PROVENANCE.md`` says where each column comes from):
``epochs=200`` the final accuracy (``split="test"``; ``split="valid"`` only for ``cifar10``, the ``cifar10-valid``
run), ``epochs=12`` the validation accuracy after the benchmark's 12-epoch schedule. ``train_seconds`` is the
benchmark's recorded training time (its GPUs) for that many epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ntkexp.benchmarks.groundtruth import read_table
from ntkexp.io import resolve_path

#: the shipped benchmarks: name -> (table, label); aliases below
SHIPPED = {"nb201": ("pkg://nb201.npz", "NAS-Bench-201 / NATS-Bench TSS, 15,625 archs")}
ALIASES = {"nasbench201": "nb201", "nas-bench-201": "nb201", "nats_tss": "nb201", "nb201_tss": "nb201"}
DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120",
            "imagenet16_120": "ImageNet16-120"}
#: (epochs, split) -> the column for a data set, per data set where the table has it
COLUMNS = {(200, "test"): "{ds}", (200, "valid"): "{ds}_valid", (12, "valid"): "{ds}_valid_12ep"}
TIME_COLUMNS = {"cifar10": "cifar10_valid_epoch_seconds", "cifar100": "cifar100_epoch_seconds",
                "ImageNet16-120": "ImageNet16-120_epoch_seconds"}


@dataclass
class Benchmark:
    """One benchmark's table (``frame``, one row per arch, official index order) with lookups by arch string (any
    spelling the space accepts, canonicalised) or official index."""

    name: str
    label: str
    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def archs(self) -> list[str]:
        return self.frame["arch_str"].tolist()

    def _row(self, arch: str | int) -> pd.Series:
        from ntkexp.spaces.nasbench201 import NASBench201, string_of_index

        if isinstance(arch, bool) or not isinstance(arch, (str, int)):
            raise TypeError(f"arch must be an arch string or an official index, got {type(arch).__name__}")
        key = string_of_index(arch) if isinstance(arch, int) else NASBench201().validate(arch)
        rows = self.frame.index[self.frame["arch_str"] == key]
        if len(rows) == 0:
            raise KeyError(f"{key} is not in the {self.name} table")
        return self.frame.loc[rows[0]]

    def _dataset(self, dataset: str) -> str:
        ds = DATASETS.get(str(dataset).lower())
        if ds is None:
            raise ValueError(f"dataset={dataset!r} is not in the {self.name} table; data sets: cifar10, cifar100, "
                             "ImageNet16-120")
        return ds

    def query(self, arch: str | int, dataset: str = "cifar10", epochs: int = 200, split: str = "test") -> float:
        """The accuracy (%) of ``arch`` on ``dataset`` after ``epochs`` (200 or 12) on ``split``."""
        ds = self._dataset(dataset)
        if (epochs, split) not in COLUMNS:
            raise ValueError(f"epochs={epochs}, split={split!r}: the table holds 200 epochs (test; valid for cifar10) "
                             "and 12 epochs (valid)")
        column = COLUMNS[(epochs, split)].format(ds=ds)
        if column not in self.frame.columns:
            columns = ", ".join(c for c in self.frame.columns if c not in ("arch_str", "arch_index"))
            raise ValueError(f"the {self.name} table has no {split} accuracy after {epochs} epochs for {ds} "
                             f"(columns: {columns})")
        return float(self._row(arch)[column])

    def train_seconds(self, arch: str | int, dataset: str = "cifar10", epochs: int = 200) -> float:
        """The benchmark's recorded training time of ``arch`` for ``epochs`` epochs on ``dataset`` (seconds, on the
        benchmark's GPUs; one epoch's time is its 200-epoch run's / 200)."""
        if epochs < 0:
            raise ValueError(f"epochs={epochs} must be >= 0")
        return float(self._row(arch)[TIME_COLUMNS[self._dataset(dataset)]]) * epochs

    def record(self, arch: str | int) -> dict[str, Any]:
        """Every column of ``arch``'s row."""
        row = self._row(arch)
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def benchmark(name: str = "nb201") -> Benchmark:
    """A benchmark that ships with ntkexp, by name (``nb201``)."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in SHIPPED:
        raise ValueError(f"no shipped benchmark {name!r}; shipped: {', '.join(SHIPPED)} (other benchmarks' tables "
                         "are read by runs through search_space=...)")
    table, label = SHIPPED[key]
    return Benchmark(key, label, read_table(resolve_path(table)))
