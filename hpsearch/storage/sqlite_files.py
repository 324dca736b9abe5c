"""SQLite database files: the guards that refuse a file that is not (or cannot become) a
study database of this Optuna's schema before anything writes to it, and the
per-connection settings that let several local worker processes share one file.

Owns the `reading()` context: storage methods that only read begin DEFERRED
transactions (WAL readers, which never wait for the write lock); everything else
begins IMMEDIATE.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import optuna

from hpsearch.errors import HpsearchError
from hpsearch.storage.retry import disk_error

BUSY_TIMEOUT_SECONDS = 60

# Tables Optuna's RDB storage creates; a database with tables but none of these belongs
# to another program, and Optuna would add its tables to it.
OPTUNA_TABLES = frozenset({"studies", "trials", "version_info", "alembic_version"})


class StorageError(HpsearchError):
    """A storage URL that cannot be opened as a study database."""


class MissingDatabase(StorageError):
    """A read-only open of a database that does not exist (or holds no studies): the
    storage is left as it was, nothing created."""


# Set while a storage method that only reads runs: its SQLite transaction then begins
# DEFERRED (a WAL reader, which never waits for the write lock) instead of IMMEDIATE.
_reading: contextvars.ContextVar[bool] = contextvars.ContextVar("hpsearch_reading", default=False)


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """Mark the database work inside as reads only (see `begin_immediate`)."""
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def on_connect(connection, _record) -> None:
    """Per-connection settings. In WAL mode, synchronous=NORMAL keeps the database
    consistent across crashes (a power cut may lose the last commits, never corrupt)
    and drops the fsync from every per-epoch report. The driver's own transaction
    handling is switched off so that `begin_immediate` decides how transactions begin.
    """
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def begin_immediate(connection) -> None:
    """Take SQLite's write lock when a transaction begins, not at its first write.

    SQLite ignores SELECT ... FOR UPDATE, which Optuna relies on to claim a waiting
    trial (an enqueued or re-queued one) and to check a trial is still running before
    writing to it. With deferred transactions two workers can both read "WAITING" and
    both run the trial, and a read that turns into a write fails at once with
    "database is locked" instead of waiting. BEGIN IMMEDIATE serialises each
    read-then-write under the busy timeout; WAL still lets readers (the dashboard,
    progress) run beside it. Work marked with `reading()` begins DEFERRED: it never
    writes, so it needs no lock.
    """
    connection.exec_driver_sql("BEGIN" if _reading.get() else "BEGIN IMMEDIATE")


def prepare_sqlite(path: Path, *, create: bool = True) -> None:
    """Refuse a path that is not (or cannot become) an SQLite database, and put the
    database in WAL mode. `create`: a missing file (and its folder) may be created;
    without it, a missing file or one without Optuna's tables is a MissingDatabase
    and nothing is written.

    The file is only ever opened through SQLite itself: a plain open() and close() of
    a database file releases every POSIX lock this process's SQLite connections hold
    on it, which corrupts the database once other processes write to it.
    """
    if path.exists() and not path.is_file():
        raise StorageError(f"storage path {path} exists but is not a file")
    if not create and not path.exists():
        raise MissingDatabase(f"there is no database at {os.path.abspath(path)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the database {path}: {exc.strerror}") from None
    existed = path.exists()
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)) as db:
            db.execute("PRAGMA schema_version")  # reads the header: fails on other files
            if not _check_optuna_schema(db, path) and not create:
                raise MissingDatabase(f"{os.path.abspath(path)} holds no studies (no tables)")
            _switch_to_wal(db)
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StorageError(
                f"{path} is not an SQLite database; name a new or SQLite file"
            ) from None
        unwritable = _unwritable(path.parent)
        if existed and unwritable:
            raise disk_error(unwritable, str(path)) from None
        if existed:
            raise StorageError(f"cannot open the database {path}: {exc}") from None
        because = f" ({unwritable})" if unwritable else ""
        raise StorageError(f"cannot create the database {path}: {exc}{because}") from None


def _switch_to_wal(db: sqlite3.Connection) -> None:
    """Put the database in WAL mode, which lets readers (dashboard, progress) run
    beside one writer and persists in the file.

    The switch needs an exclusive lock taken from a shared one; when several processes
    switch a new file at once, SQLite refuses one of them at once ("database is
    locked") rather than call its busy handler, which could deadlock. That refusal is
    retried, with short growing pauses, for as long as the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    pause = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.5)


def _unwritable(folder: Path) -> str | None:
    """Why SQLite cannot write beside a database in `folder` (its journal files live
    there), or None: SQLite itself only says 'unable to open database file'."""
    with contextlib.suppress(OSError):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read-only file system"
    if not os.access(folder, os.W_OK):
        return "read-only folder"
    return None


def _check_optuna_schema(db: sqlite3.Connection, path: Path) -> bool:
    """Refuse, by reading only, a database that Optuna would change on opening: another
    program's database, or one of another Optuna schema version (Optuna would add
    missing tables before noticing, and its fix is to upgrade the file in place).
    Whether the database has tables (False: a new, empty one)."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return False  # a new database
    if not tables & OPTUNA_TABLES:
        listing = ", ".join(sorted(tables)[:5])
        raise StorageError(
            f"{path} is an SQLite database of another program (tables: {listing}), "
            "not an Optuna one; name a new file"
        )
    revision = schema = library = None
    if "alembic_version" in tables:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    if "version_info" in tables:
        row = db.execute("SELECT schema_version, library_version FROM version_info").fetchone()
        schema, library = row if row else (None, None)
    expected_revision, expected_schema = optuna_schema()
    if (revision is None or revision == expected_revision) and (
        schema is None or schema == expected_schema
    ):
        return True
    made_by = f"Optuna {library}" if library else "another Optuna"
    raise StorageError(
        f"{path} was made by {made_by} (schema {revision or schema}); Optuna "
        f"{optuna.__version__} here uses schema {expected_revision}. hpsearch leaves it "
        "untouched: use a new database, or upgrade a copy with "
        "'optuna storage upgrade --storage sqlite:///COPY'"
    )


@functools.cache
def optuna_schema() -> tuple[str, int]:
    """(alembic revision, version_info.schema_version) that this Optuna writes, read
    from a fresh in-memory database once per process: Alembic finds the newest revision
    by importing every one of Optuna's migration scripts, an answer that only an Optuna
    upgrade, which restarts the process, can change."""
    storage = optuna.storages.RDBStorage("sqlite://", skip_compatibility_check=True)
    try:
        with storage.engine.connect() as connection:
            schema = connection.exec_driver_sql("SELECT schema_version FROM version_info")
            return storage.get_current_version(), schema.scalar_one()
    finally:
        storage.engine.dispose()
