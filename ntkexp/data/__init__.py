"""Data sets as arrays in memory (``ArrayData``) and Lightning's view of them for training (``ArrayDataModule``:
Lightning is imported only when that is used)."""

from typing import Any

from ntkexp.data.arrays import ArrayData
from ntkexp.data.config import DataConfig, ProbeOnlyDataError, require_training_set
from ntkexp.data.sources import DATASET_KINDS, DataSplit, MissingFileError, load_arrays

__all__ = ["ArrayData", "ArrayDataModule", "DATASET_KINDS", "DataConfig", "DataSplit", "MissingFileError", "ProbeOnlyDataError",
           "load_arrays", "require_training_set"]


def __getattr__(name: str) -> Any:
    if name == "ArrayDataModule":
        from ntkexp.data.datamodule import ArrayDataModule

        return ArrayDataModule
    raise AttributeError(f"module 'ntkexp.data' has no attribute {name!r}")
