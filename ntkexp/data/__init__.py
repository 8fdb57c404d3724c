"""Data sets as arrays in memory and Lightning DataModules over them."""

from ntkexp.data.datamodule import ArrayDataModule, DataConfig, build_datamodule
from ntkexp.data.sources import DATASET_KINDS, DataSplit, MissingFileError, load_arrays

__all__ = ["ArrayDataModule", "DataConfig", "DataSplit", "DATASET_KINDS", "MissingFileError", "build_datamodule",
           "load_arrays"]
