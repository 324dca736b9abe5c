"""Storage URLs to Optuna storages, with the checks that keep a bad URL from ever
touching a database.

SQLite is the embedded default: the file's folder is created, a file that is not an
SQLite database is refused before SQLAlchemy opens it, and the database is put in WAL
mode with a busy timeout so several local worker processes can share it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import optuna
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from hpsearch.errors import HpsearchError

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 60


class StorageError(HpsearchError):
    """A storage URL that cannot be opened as a study database."""


def display_url(url: str) -> str:
    """The URL with any password masked, for printing and logging."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def sqlite_path(url: str) -> Path | None:
    """The database file of an sqlite:/// URL (None for other URLs or in-memory)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url`, or a StorageError saying what is wrong with it."""
    try:
        make_url(url)
    except ArgumentError:
        raise StorageError(
            f"storage {url!r} is not a database URL; use e.g. sqlite:///studies/hpsearch.db"
        ) from None
    path = sqlite_path(url)
    engine_kwargs = {}
    if path is not None:
        _prepare_sqlite(path)
        engine_kwargs = {"connect_args": {"timeout": BUSY_TIMEOUT_SECONDS}}
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except (SQLAlchemyError, RuntimeError, ImportError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"cannot open storage {display_url(url)}: {first_line}") from None
    if path is not None:
        # In WAL mode, synchronous=NORMAL keeps the database consistent across crashes
        # (a power cut may lose the last commits, never corrupt) and drops the fsync
        # from every per-epoch report. It is per connection: set it on each new one.
        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()
    return storage


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _prepare_sqlite(path: Path) -> None:
    """Refuse a path that is not (or cannot become) an SQLite database, and put the
    database in WAL mode.

    The file is only ever opened through SQLite itself: a plain open() and close() of
    a database file releases every POSIX lock this process's SQLite connections hold
    on it, which corrupts the database once other processes write to it.
    """
    if path.exists() and not path.is_file():
        raise StorageError(f"storage path {path} exists but is not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the database {path}: {exc.strerror}") from None
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)) as db:
            db.execute("PRAGMA schema_version")  # reads the header: fails on other files
            # WAL lets readers (dashboard, progress) run beside one writer; it persists.
            db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StorageError(
                f"{path} is not an SQLite database; name a new or SQLite file"
            ) from None
        raise StorageError(f"cannot create the database {path}: {exc}") from None
