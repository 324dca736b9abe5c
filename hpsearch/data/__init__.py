"""The data a trial trains on: built-in sets, users' files (CSV, NPZ, Parquet) and IDX
folders, split into train / validation / test by label and seed (see `sets`)."""

from hpsearch.data.sets import (
    BUILT_IN,
    DATASETS,
    FASHION_MNIST_DIR,
    Split,
    file_record,
    file_stamp,
    is_file,
    load,
    read_only,
    reshuffled,
    without_test,
    without_validation,
)

__all__ = [
    "BUILT_IN",
    "DATASETS",
    "FASHION_MNIST_DIR",
    "Split",
    "file_record",
    "file_stamp",
    "is_file",
    "load",
    "read_only",
    "reshuffled",
    "without_test",
    "without_validation",
]
