"""Data sets as arrays in memory and Lightning DataModules over them."""

from ntkexp.data.datamodule import (
    ArrayDataModule,
    DataConfig,
    ProbeOnlyDataError,
    require_training_set,
)
from ntkexp.data.sources import DATASET_KINDS, DataSplit, MissingFileError, load_arrays

__all__ = ["ArrayDataModule", "DATASET_KINDS", "DataConfig", "DataSplit", "MissingFileError", "ProbeOnlyDataError",
           "load_arrays", "require_training_set"]
