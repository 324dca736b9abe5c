"""Users' own data sets: a table (CSV or Parquet, one row an example, one column the
label) or NumPy arrays (NPZ), read into features and raw labels.

Everything a file can get wrong is refused here with one line naming the file and what
to change: a missing or empty file, no such label column, a feature that is not a
number, NaN or infinity, a test file whose columns differ. What the labels mean (their
classes, how many per class) is `hpsearch.data`'s to judge, since the test file and the
hold-out enter there.

A file's size and sha256 (`fingerprint`) are stored with a study, so a file changed
after the study started is refused instead of mixing two data sets in one study.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.errors import DataError

FILE_KINDS = ("csv", "npz", "parquet")
NPZ_KEYS = (("x", "y"), ("x_train", "y_train"))
NPZ_TEST_KEYS = ("x_test", "y_test")
_HASH_CHUNK = 1 << 22


def file_kind(name: str) -> str | None:
    """'csv', 'npz' or 'parquet' for a data set named `KIND:PATH`, else None."""
    kind, colon, path = name.partition(":")
    return kind if colon and kind in FILE_KINDS and path else None


def file_path(name: str) -> Path:
    return Path(name.partition(":")[2]).expanduser()


@dataclass(frozen=True)
class Arrays:
    """Features as float32 rows and the labels as read (numbers or strings)."""

    x: np.ndarray
    labels: np.ndarray
    where: str  # the file (and label column) the labels came from, for messages


def read(name: str, *, label: str | None, test: str | None) -> tuple[Arrays, Arrays | None]:
    """The examples of data set `name` (`csv:PATH`, `npz:PATH` or `parquet:PATH`), and
    those of its test file when one is given (`test`, a file of the same kind and shape;
    for NPZ, `x_test`/`y_test` inside the file also count)."""
    kind = file_kind(name)
    if kind is None:
        raise DataError(
            f"{name!r} is not a data file; name one as csv:PATH, npz:PATH or parquet:PATH"
        )
    path = file_path(name)
    if kind == "npz":
        if label is not None:
            raise DataError(f"{path}: label = {label!r} is for tables; an NPZ file holds x and y")
        pool, inner_test = _npz(path)
        if test is not None:
            if inner_test is not None:
                raise DataError(f"{path} has x_test and y_test already; drop data.test")
            inner_test, _ = _npz(Path(test).expanduser())
        return pool, inner_test
    table = _table(path, kind)
    column = _label_column(table, label, path)
    pool = _split_table(table, column, path)
    if test is None:
        return pool, None
    test_path = Path(test).expanduser()
    test_table = _table(test_path, kind)
    if list(test_table.columns) != list(table.columns):
        raise DataError(
            f"test file {test_path} has columns {_names(test_table.columns)}; "
            f"{path} has {_names(table.columns)}"
        )
    return pool, _split_table(test_table, column, test_path)


def paths(name: str, test: str | None) -> list[Path]:
    """The files data set `name` reads."""
    return [file_path(name)] + ([Path(test).expanduser()] if test is not None else [])


def fingerprint(files: list[Path]) -> dict[str, dict[str, Any]]:
    """Each file's size and sha256, by path: what a study stores to notice a change."""
    result = {}
    for path in files:
        stat = _stat(path)
        result[str(path)] = {
            "size": stat.st_size,
            "sha256": _sha256(str(path), stat.st_size, stat.st_mtime_ns),
        }
    return result


@functools.lru_cache(maxsize=16)
def _sha256(path: str, _size: int, _mtime_ns: int) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror}") from None
    return digest.hexdigest()


def _stat(path: Path):
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataError(f"data file {path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror}") from None
    if not path.is_file():
        raise DataError(f"data file {path} is not a file")
    if stat.st_size == 0:
        raise DataError(f"data file {path} is empty")
    return stat


def _names(columns: Any) -> str:
    shown = [str(c) for c in columns]
    return "[" + ", ".join(shown[:8]) + (", ..." if len(shown) > 8 else "") + "]"


# -- tables (CSV, Parquet) ----------------------------------------------------------------


def _table(path: Path, kind: str):
    import pandas as pd

    _stat(path)
    try:
        table = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {path} is empty") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {kind.upper()} file {path}: {first}") from None
    except ImportError as exc:
        raise DataError(f"cannot read {kind.upper()} file {path}: {exc}") from None
    if table.shape[1] < 2:
        raise DataError(
            f"{path} has {table.shape[1]} column; a data table needs feature columns and a "
            "label column"
        )
    if len(table) == 0:
        raise DataError(f"{path} has a header but no rows")
    return table


def _label_column(table, label: str | None, path: Path) -> Any:
    if label is None:
        return table.columns[-1]
    if label not in [str(c) for c in table.columns]:
        raise DataError(
            f"{path} has no label column {label!r}; its columns are {_names(table.columns)}"
        )
    return next(c for c in table.columns if str(c) == label)


def _split_table(table, column: Any, path: Path) -> Arrays:
    import pandas as pd

    labels = table[column]
    missing = labels.isna().to_numpy()
    if missing.any():
        row = int(np.argmax(missing)) + 1
        raise DataError(f"{path}: label column {str(column)!r} is empty in data row {row}")
    features = table.drop(columns=[column])
    for name in features.columns:
        series = features[name]
        if not (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_complex_dtype(series)
        ):
            raise DataError(f"{path}: column {str(name)!r} {_first_bad_cell(series)}")
    x = features.to_numpy(dtype=np.float64, na_value=np.nan)
    _check_finite(x, path, [str(c) for c in features.columns])
    where = f"{path} column {str(column)!r}"
    return Arrays(x.astype(np.float32), _plain_labels(labels.to_numpy(), where), where)


def _first_bad_cell(series) -> str:
    """Why a feature column is not numeric: its first cell that is not a number, that
    cell's data row (1 = the first row after the header), and what to do."""
    import pandas as pd

    values = series.to_numpy(dtype=object)
    present = series.notna().to_numpy()
    try:
        bad = present & pd.to_numeric(series, errors="coerce").isna().to_numpy()
    except (TypeError, ValueError):  # cells that are lists, dicts, ... (Parquet)
        bad = present
    if not bad.any():  # numbers of several types, dates, ...: the column as a whole
        bad = present
    if not bad.any():
        return "is not numeric; features must be numbers: encode it, or drop it"
    row = int(np.argmax(bad))
    value = values[row]
    also = int(bad.sum()) - 1
    others = f" and {also} other row{'s' if also > 1 else ''}" if also > 0 else ""
    text = str(value).strip()
    point = text.replace(",", ".")
    if text.count(",") == 1 and not pd.isna(pd.to_numeric(point, errors="coerce")):
        whole, decimals = text.split(",")
        hint = f"a decimal comma? write {point}"
        if len(decimals.strip()) == 3:  # 1,400 may be a thousand and four hundred
            hint += f", or {whole.strip()}{decimals.strip()} if the comma separates thousands"
    else:
        hint = "features must be numbers: fix the cell, encode the column, or drop it"
    return f"is not numeric (e.g. {value!r}) in data row {row + 1}{others}; {hint}"


def _check_finite(x: np.ndarray, path: Path, columns: list[str] | None = None) -> None:
    bad = ~np.isfinite(x)
    if not bad.any():
        return
    row, col = (int(i) for i in np.argwhere(bad)[0])
    what = f"column {columns[col]!r}" if columns else f"feature {col}"
    value = "missing or NaN" if np.isnan(x[row, col]) else f"{x[row, col]}"
    raise DataError(
        f"{path}: {what} is {value} in data row {row + 1}; features must be finite numbers"
    )


def _plain_labels(labels: np.ndarray, where: str = "") -> np.ndarray:
    """Integer-valued float labels (as CSV readers make of 0/1 with a gap) as integers;
    numbers, text and true/false otherwise unchanged; anything else refused."""
    if labels.dtype.kind == "O":
        odd = next((v for v in labels if not isinstance(v, str | int | float | bool)), None)
        if odd is not None:
            raise DataError(f"{where}: labels must be numbers or text, found {odd!r}")
        if len({type(v) for v in labels} - {bool}) > 1:
            labels = labels.astype(str)  # a mix of numbers and text: all as text
    if (
        labels.dtype.kind == "f"
        and np.all(np.isfinite(labels))
        and np.all(labels == np.round(labels))
    ):
        return labels.astype(np.int64)
    return labels


# -- NPZ --------------------------------------------------------------------------------------


def _npz(path: Path) -> tuple[Arrays, Arrays | None]:
    """x/y (or x_train/y_train) and x_test/y_test when present. Uncompressed members are
    memory-mapped, so a large file is read once, into the float32 features."""
    _stat(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {Path(info.filename).stem: info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot read NPZ file {path}: {exc}") from None
    keys = next((pair for pair in NPZ_KEYS if set(pair) <= set(members)), None)
    if keys is None:
        raise DataError(
            f"NPZ file {path} has arrays {sorted(members)}; it needs x and y "
            "(or x_train and y_train, with x_test and y_test optional)"
        )
    pool = _npz_pair(path, members, keys)
    if not set(NPZ_TEST_KEYS) <= set(members):
        if any(key in members for key in NPZ_TEST_KEYS):
            raise DataError(f"NPZ file {path} needs both x_test and y_test, or neither")
        return pool, None
    test = _npz_pair(path, members, NPZ_TEST_KEYS)
    if test.x.shape[1] != pool.x.shape[1]:
        raise DataError(
            f"NPZ file {path}: x_test has {test.x.shape[1]} features per example, "
            f"{keys[0]} has {pool.x.shape[1]}"
        )
    return pool, test


def _npz_pair(path: Path, members: dict[str, zipfile.ZipInfo], keys: tuple[str, str]) -> Arrays:
    x, y = (_npz_array(path, members[key]) for key in keys)
    if x.ndim == 0 or x.dtype.kind not in "biuf":
        raise DataError(f"NPZ file {path}: {keys[0]} must be an array of numbers, found {x.dtype}")
    if y.ndim != 1:
        raise DataError(
            f"NPZ file {path}: {keys[1]} must be 1-D (one label per example), found shape {y.shape}"
        )
    if len(x) != len(y):
        raise DataError(
            f"NPZ file {path}: {keys[0]} has {len(x)} examples, {keys[1]} has {len(y)} labels"
        )
    if len(y) == 0:
        raise DataError(f"NPZ file {path}: {keys[0]} holds no examples")
    features = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    _check_finite(features, path)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError(f"NPZ file {path}: {keys[1]} has NaN or infinite labels")
    where = f"{path} array {keys[1]!r}"
    return Arrays(features, _plain_labels(np.asarray(y), where), where)


def _npz_array(path: Path, info: zipfile.ZipInfo) -> np.ndarray:
    try:
        if info.compress_type == zipfile.ZIP_STORED:
            mapped = _mapped_member(path, info)
            if mapped is not None:
                return mapped
        with zipfile.ZipFile(path) as archive, archive.open(info) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)
    except ValueError as exc:  # object arrays (pickles) among them: never loaded
        raise DataError(f"NPZ file {path}: cannot read {info.filename}: {exc}") from None
    except MemoryError:
        raise DataError(
            f"NPZ file {path}: {info.filename} declares more data than this machine's memory"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
        raise DataError(f"cannot read NPZ file {path}: {exc}") from None


def _mapped_member(path: Path, info: zipfile.ZipInfo) -> np.ndarray | None:
    """An uncompressed .npy inside the zip, memory-mapped where it lies in the file
    (None for a format version this does not map)."""
    with open(path, "rb") as stream:
        stream.seek(info.header_offset)
        local = stream.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise DataError(f"NPZ file {path}: {info.filename} is damaged")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        stream.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            return None
        offset = stream.tell()
    if dtype.hasobject:
        raise DataError(
            f"NPZ file {path}: {info.filename} holds Python objects, which are never loaded"
        )
    count = int(np.prod(shape, dtype=np.int64))
    if (
        offset + count * dtype.itemsize
        > info.header_offset + 30 + name_length + extra_length + info.file_size
    ):
        raise DataError(f"NPZ file {path}: {info.filename} is shorter than its header says")
    if count == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(
        path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C"
    )
