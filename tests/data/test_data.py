import gzip
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hpsearch import data
from hpsearch.data import load
from hpsearch.data.idx import read_idx
from hpsearch.errors import DataError


def rows(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x}


def write_idx(path: Path, array: np.ndarray, *, truncate: int = 0) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    payload = payload[: len(payload) - truncate]
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def make_idx_folder(root: Path, *, n_train=60, n_test=20, gz=True, truncate=None) -> Path:
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    sets = {
        "train": (rng.integers(0, 256, (n_train, 4, 5)), np.arange(n_train) % 3),
        "t10k": (rng.integers(0, 256, (n_test, 4, 5)), np.arange(n_test) % 3),
    }
    for prefix, (images, labels) in sets.items():
        cut = 7 if truncate == f"{prefix}-images" else 0
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images, truncate=cut)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return root


def test_mnist_5k_has_the_acceptance_split(mnist):
    assert (len(mnist.t_train), len(mnist.t_val), len(mnist.t_test)) == (3200, 800, 1000)
    assert mnist.input_size == 784 and mnist.n_classes == 10
    for x in (mnist.x_train, mnist.x_val, mnist.x_test):
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert mnist.x_train.max() == 1.0  # scaled from 0..255, not left in bytes
    for t in (mnist.t_train, mnist.t_val, mnist.t_test):
        assert np.issubdtype(t.dtype, np.integer) and set(np.unique(t)) == set(range(10))


def test_splits_are_disjoint_and_stratified(mnist):
    train, val, test = rows(mnist.x_train), rows(mnist.x_val), rows(mnist.x_test)
    assert not train & val and not train & test and not val & test
    for t, n in [(mnist.t_train, 3200), (mnist.t_val, 800), (mnist.t_test, 1000)]:
        overall = np.bincount(np.concatenate([mnist.t_train, mnist.t_val, mnist.t_test])) / 5000
        assert np.all(np.abs(np.bincount(t, minlength=10) - overall * n) <= 1.0)


def test_seed_moves_train_and_validation_but_never_the_test_split():
    a, b, c = load("mnist-5k", seed=0), load("mnist-5k", seed=0), load("mnist-5k", seed=1)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.t_val, b.t_val)
    assert not np.array_equal(a.x_train, c.x_train)
    assert np.array_equal(a.x_test, c.x_test) and np.array_equal(a.t_test, c.t_test)
    assert rows(a.x_train) | rows(a.x_val) == rows(c.x_train) | rows(c.x_val)


def test_train_size_takes_examples_before_the_validation_split():
    split = load("mnist-5k", train_size=500, validation_fraction=0.2, seed=3)
    assert (len(split.t_train), len(split.t_val), len(split.t_test)) == (400, 100, 1000)
    assert np.all(np.bincount(split.t_val, minlength=10) >= 9)  # stratified: ~10 per class


def test_digits_and_circles():
    digits = load("digits")
    assert digits.input_size == 64 and digits.n_classes == 10
    assert len(digits.t_train) + len(digits.t_val) + len(digits.t_test) == 1797
    assert digits.x_train.max() == 1.0 and digits.x_train.min() == 0.0
    circles = load("circles", validation_fraction=0.2)
    assert (len(circles.t_train), len(circles.t_val), len(circles.t_test)) == (240, 60, 100)
    assert circles.n_classes == 2 and circles.x_train.dtype == np.float32
    # Two concentric circles: radius ~1 for class 0 and ~0.8 for class 1 (factor 0.8).
    radius = np.linalg.norm(circles.x_test, axis=1)
    assert radius[circles.t_test == 0].mean() == pytest.approx(1.0, abs=0.05)
    assert radius[circles.t_test == 1].mean() == pytest.approx(0.8, abs=0.05)


def test_the_stratified_split_picks_what_scikit_learn_picks_in_its_order():
    """The split is drawn without importing scikit-learn, and must stay the one its
    train_test_split gives: recorded studies depend on which examples each split holds."""
    from sklearn.model_selection import train_test_split

    from hpsearch.data.sets import _stratified_partition

    rng = np.random.default_rng(0)
    for case in range(300):
        counts = rng.integers(2, 40, size=rng.integers(1, 12))
        t = rng.permutation(np.repeat(np.arange(len(counts)), counts))
        x = rng.normal(size=(len(t), 2)).astype(np.float32)
        n_first = int(rng.integers(len(counts), len(t) - len(counts) + 1))
        seed = int(rng.integers(0, 2**32 - 1))
        (x_a, t_a), (x_b, t_b) = _stratified_partition(x, t, n_first, seed, what="")
        expected = train_test_split(x, t, train_size=n_first, stratify=t, random_state=seed)
        for mine, theirs in zip((x_a, x_b, t_a, t_b), expected, strict=True):
            np.testing.assert_array_equal(mine, theirs, err_msg=f"case {case}")
    # A split scikit-learn refuses is refused with its message.
    with pytest.raises(DataError, match="too few"):
        _stratified_partition(x, np.arange(len(t)), 2, 0, what="")


def test_digits_are_scikit_learns_and_no_built_in_set_but_circles_imports_it():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    split = load("digits", validation_fraction=0.25, seed=2)
    examples = sorted(
        row.tobytes() + bytes([label])
        for part in ("train", "val", "test")
        for row, label in zip(getattr(split, f"x_{part}"), getattr(split, f"t_{part}"), strict=True)
    )
    x = bunch.data.astype(np.float32) / np.float32(16)
    assert examples == sorted(
        row.tobytes() + bytes([label]) for row, label in zip(x, bunch.target, strict=True)
    )
    # scikit-learn's import is over a second of every `hpsearch` process that loads data.
    probe = (
        "import sys; from hpsearch.data import load; "
        "load('digits', train_size=600, seed=1); load('mnist-5k'); "
        "print('sklearn' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_cached_sources_cannot_be_corrupted_by_callers(mnist):
    with pytest.raises(ValueError):
        mnist.x_test[0, 0] = 5.0


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_loads_gz_or_raw(tmp_path, gz):
    split = load(f"idx:{make_idx_folder(tmp_path, gz=gz)}", validation_fraction=0.25)
    assert (len(split.t_train), len(split.t_val), len(split.t_test)) == (45, 15, 20)
    assert split.input_size == 20 and split.n_classes == 3
    assert split.x_train.dtype == np.float32 and split.x_train.max() <= 1.0


def test_read_idx_round_trips(tmp_path):
    array = np.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.gz", array)), array)


def test_fashion_mnist_alias_reads_debians_folder():
    if not data.FASHION_MNIST_DIR.is_dir():
        pytest.skip(f"{data.FASHION_MNIST_DIR} missing: apt-get install dataset-fashion-mnist")
    split = load("fashion-mnist", train_size=1000, validation_fraction=0.2)
    assert (len(split.t_train), len(split.t_val), len(split.t_test)) == (800, 200, 10000)
    assert split.input_size == 784 and split.n_classes == 10


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: load("cifar-10"), "unknown data set 'cifar-10'"),
        (lambda: load(""), "non-empty"),
        (lambda: load("mnist-5k", validation_fraction=0.0), "validation_fraction.*0.0"),
        (lambda: load("mnist-5k", validation_fraction=1.0), "validation_fraction.*1.0"),
        (lambda: load("mnist-5k", validation_fraction=1.5), "validation_fraction.*1.5"),
        (lambda: load("mnist-5k", validation_fraction=math.nan), "validation_fraction.*nan"),
        (lambda: load("mnist-5k", train_size=4001), "train_size=4001 is larger than the 4000"),
        (lambda: load("mnist-5k", train_size=1), "train_size"),
        (lambda: load("mnist-5k", train_size=500.0), "train_size must be an integer, got 500.0"),
        (lambda: load("mnist-5k", seed=-1), "seed must be a non-negative integer, got -1"),
        (lambda: load("mnist-5k", train_size=50, validation_fraction=0.01), "stratified"),
    ],
)
def test_bad_arguments_name_the_problem_and_the_value(call, message):
    with pytest.raises(DataError, match=message):
        call()


def test_missing_idx_folder_or_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load(f"idx:{tmp_path / 'nowhere'}")
    folder = make_idx_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="has no t10k-labels-idx1-ubyte"):
        load(f"idx:{folder}")


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_idx_file_says_how_many_bytes_are_missing(tmp_path, gz):
    folder = make_idx_folder(tmp_path, gz=gz, truncate="train-images")
    with pytest.raises(
        DataError, match=r"truncated IDX file: header promises 1200 bytes .* found 1193"
    ):
        load(f"idx:{folder}")


def test_broken_gzip_and_bad_magic(tmp_path):
    bad_gz = tmp_path / "x.gz"
    bad_gz.write_bytes(gzip.compress(b"\0\0\x08\x01" + b"\0\0\0\x05abcde")[:-6])
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(bad_gz)
    not_idx = tmp_path / "x"
    not_idx.write_text("P6 a picture")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(not_idx)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(empty)


def test_mismatched_image_and_label_counts(tmp_path):
    folder = make_idx_folder(tmp_path)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(59))
    with pytest.raises(DataError, match=r"60 images but .* 59 labels"):
        load(f"idx:{folder}")
