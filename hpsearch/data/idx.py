"""The IDX file format (MNIST's): reading one file, checking its header against its
length, and the train/test image and label files of an MNIST-format folder."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from hpsearch.errors import DataError

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def find_idx(root: Path, stem: str) -> Path:
    candidates = [
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ]
    for candidate in candidates:
        if (root / candidate).is_file():
            return root / candidate
    raise DataError(f"IDX folder {str(root)!r} has no {stem} (nor {stem}.gz)")


def idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim < 2 or labels.ndim != 1:
        raise DataError(
            f"{images_path} must hold images (3-D) and {labels_path} labels (1-D); "
            f"found {images.ndim}-D and {labels.ndim}-D"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    if len(images) == 0:
        raise DataError(f"{images_path} holds no images")
    x = images.reshape(len(images), -1).astype(np.float32)
    if images.dtype == np.uint8:
        x /= np.float32(255)
    elif x.size and not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise DataError(f"{images_path}: non-byte pixel values must lie in [0, 1]")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path}: labels must be integers, found {labels.dtype.name}")
    if labels.min() < 0:
        raise DataError(f"{labels_path}: labels must be non-negative class indices")
    return x, labels.astype(np.int64)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (raw or gzip), checking its header against its length."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from None
    if not raw:
        raise DataError(f"{path} is empty: not an IDX file")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise DataError(
            f"{path}: truncated IDX file: header promises {expected} bytes of data "
            f"for shape {shape}, found {found}"
        )
    if found > expected:
        raise DataError(
            f"{path}: IDX file has {found - expected} bytes beyond the shape {shape} its "
            "header declares"
        )
    return np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header).reshape(shape)
