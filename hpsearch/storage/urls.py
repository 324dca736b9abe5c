"""Storage URLs to Optuna storages, with the checks that keep a bad URL from ever
touching a database.

- ``sqlite:///PATH`` is the embedded default: the file's folder is created, a file that
  is not an SQLite database of this Optuna schema is refused before SQLAlchemy opens it,
  and the database is put in WAL mode with a busy timeout and BEGIN IMMEDIATE
  transactions so several local worker processes share it without "database is locked".
- ``postgresql+psycopg://USER:PASS@HOST/DB`` (psycopg 3, the ``postgres`` extra) is for
  workers on many machines; plain ``postgresql://`` means the same.
- ``journal:PATH`` is Optuna's JournalStorage on a file, for shared file systems. It has
  no heartbeats: a worker that dies there leaves its trial RUNNING.

Relational storages get Optuna's heartbeats: a trial whose worker stopped beating for
the grace period is failed and re-queued once (RetryHeartbeatStaleTrialCallback), so a
worker killed mid-trial costs a rerun of that trial, never the study's budget.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from pathlib import Path

import optuna
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from hpsearch.stop import interrupt_held
from hpsearch.storage.pool import ping_when_idle
from hpsearch.storage.retry import RetryPolicy
from hpsearch.storage.sqlite_files import (
    BUSY_TIMEOUT_SECONDS,
    MissingDatabase,
    StorageError,
    begin_immediate,
    on_connect,
    optuna_schema,
    prepare_sqlite,
)
from hpsearch.storage.version_gate import rdb_storage_class

HEARTBEAT_SECONDS = 10  # how often a running trial says it is alive
GRACE_FACTOR = 3  # a trial silent for this many heartbeats is taken for dead
MAX_RETRY = 1  # a dead worker's trial is re-queued once
JOURNAL_PREFIX = "journal:"


def display_url(url: str) -> str:
    """The URL with any password masked, for printing, logging and storing."""
    return _with_password(url, "***")


def url_without_password(url: str) -> str:
    """The URL with its password left out, for files others may read (a narrowed
    round's spec): PostgreSQL's driver then takes it from PGPASSWORD or ~/.pgpass."""
    return _with_password(url, None)


def _with_password(url: str, password: str | None) -> str:
    """The URL with its password replaced (None: left out). The user part ends at the
    last '@' before the host, so a password holding a raw '@', ':', '/', '#', '%', '?'
    or a space is replaced whole, where a URL parser would split it."""
    if url.startswith((JOURNAL_PREFIX, "sqlite:")):  # a file: no password, any '@' is a path's
        return url
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        if "@" in url:
            return "<not a database URL>"
        try:
            return make_url(url).render_as_string(hide_password=False)
        except ArgumentError:
            return url
    user_part, _, host_part = rest.rpartition("@")
    user, colon, _ = user_part.partition(":")
    secret = f":{password}" if colon and password is not None else ""
    return f"{scheme}://{user}{secret}@{host_part}"


def sqlite_path(url: str) -> Path | None:
    """The database file of an sqlite:/// URL (None for other URLs or in-memory)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def storage_place(url: str) -> str:
    """Where `url` keeps its studies, for messages: the absolute path of an SQLite
    database or a journal file (a relative sqlite:/// URL depends on the working
    folder, which the reader of a message may not know), else the URL with any
    password masked."""
    path = database_file(url)
    return os.path.abspath(path) if path is not None else display_url(url)


def absolute_url(url: str) -> str:
    """The URL with an SQLite or journal path made absolute, any password masked: a
    printed command that names it runs from any folder."""
    path = database_file(url)
    if path is None:
        return display_url(url)
    if url.startswith(JOURNAL_PREFIX):
        return f"{JOURNAL_PREFIX}{os.path.abspath(path)}"
    return make_url(url).set(database=os.path.abspath(path)).render_as_string(hide_password=True)


def database_file(url: str) -> Path | None:
    """The file an SQLite or journal URL keeps its studies in, as written (None for a
    server, or an in-memory database: no file that others share)."""
    path = Path(url[len(JOURNAL_PREFIX) :]) if url.startswith(JOURNAL_PREFIX) else sqlite_path(url)
    return None if path is None or path.name == ":memory:" else path


def open_storage(
    url: str,
    *,
    heartbeat: int | None = HEARTBEAT_SECONDS,
    checked: bool = False,
    retry_for: float | None = None,
    max_retry: int | None = MAX_RETRY,
    create: bool = True,
) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url`, or a StorageError saying what is wrong with it.

    `heartbeat` is the heartbeat interval in seconds of relational storages (None: no
    heartbeats, so nothing can tell a dead worker's trial from a slow one). `checked`:
    this run opened the database already: the file was checked and prepared, its tables
    exist and their schema version was checked, so a worker skips all three.
    `retry_for`: seconds for which a database that cannot be reached is retried, once
    opened (None: the spec's default; a URL that cannot be opened at all fails at once:
    it is more often a typo than an outage). `max_retry`: how many times a dead
    worker's trial is queued again (None: until it finishes; a reproducible search
    cannot go on without it). `create`: a new SQLite database or journal file (and its
    folder) may be created; without it (a command that only reads), a missing one is
    a MissingDatabase and nothing is created.
    """
    if url.startswith(JOURNAL_PREFIX):
        return _open_journal(Path(url[len(JOURNAL_PREFIX) :]), create=create)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(
            f"storage {display_url(url)!r} is not a database URL; use e.g. "
            "sqlite:///studies/hpsearch.db, postgresql+psycopg://USER:PASS@HOST/DB "
            "or journal:PATH"
        ) from None
    if heartbeat is not None and heartbeat < 1:
        raise StorageError(f"the heartbeat interval must be at least 1 second, got {heartbeat}")
    path = sqlite_path(url)
    engine_kwargs: dict = {}
    if path is not None:
        if not checked:
            prepare_sqlite(path, create=create)
        engine_kwargs = {"connect_args": {"timeout": BUSY_TIMEOUT_SECONDS}}
    elif parsed.drivername == "postgresql":  # SQLAlchemy would reach for psycopg2
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    try:
        with warnings.catch_warnings():  # heartbeats have been "experimental" since 2.x
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beats = {}
            if heartbeat is not None:
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
                beats = {
                    "heartbeat_interval": heartbeat,
                    "grace_period": GRACE_FACTOR * heartbeat,
                    "heartbeat_stale_trial_callback": retry,
                }
            # Making a new SQLite database's tables loads Alembic's scripts, where a
            # Ctrl-C would be swallowed: held to the end of this local work. (A server
            # may take long to answer; Ctrl-C is not held for it.)
            held = interrupt_held() if path is not None else contextlib.nullcontext()
            with held:
                storage = _new_rdb_storage(url, engine_kwargs, checked, beats)
    except ImportError as exc:
        hint = (
            "; install the postgres extra: pip install 'hpsearch[postgres]'"
            if parsed.get_backend_name() == "postgresql"
            else ""
        )
        raise StorageError(
            f"cannot open storage {display_url(url)}: missing driver {exc.name or exc}{hint}"
        ) from None
    except (SQLAlchemyError, RuntimeError, ValueError) as exc:
        raise StorageError(f"cannot open storage {display_url(url)}: {_first_line(exc)}") from None
    if not checked:
        with interrupt_held():  # loads Alembic's scripts too
            _check_schema_version(storage, url)
    storage.retry_policy = RetryPolicy() if retry_for is None else RetryPolicy(retry_for)
    if path is not None:
        event.listen(storage.engine, "connect", on_connect)
        event.listen(storage.engine, "begin", begin_immediate)
        storage.engine.dispose()
    else:  # a server: workers elsewhere keep connections for hours
        ping_when_idle(storage.engine)
        storage.engine.dispose()  # the opening's connections, pooled before the listeners
    return storage


# Tries at opening a database that other commands may be creating the tables of.
CREATION_TRIES = 5


def _new_rdb_storage(
    url: str, engine_kwargs: dict, checked: bool, beats: dict
) -> optuna.storages.RDBStorage:
    """Optuna's relational storage of `url`. Two commands opening a brand-new database
    at once both create its tables and stamp its schema version: the slower one fails
    on a row or type the faster one has just made (a UNIQUE or duplicate-key error).
    Opening it again finds them made."""
    tries = 0
    while True:
        try:
            # Optuna's own schema check asks Alembic for the newest revision on every
            # open (it imports all of Optuna's migration scripts); ours asks once per
            # process.
            return rdb_storage_class()(
                url,
                engine_kwargs=engine_kwargs,
                skip_compatibility_check=True,
                skip_table_creation=checked,
                **beats,
            )
        except (IntegrityError, ProgrammingError, OperationalError) as exc:
            tries += 1
            if tries == CREATION_TRIES or not _made_meanwhile(exc):
                raise
            time.sleep(0.05 * tries)


def _made_meanwhile(error: SQLAlchemyError) -> bool:
    """Whether `error` says another command made a table, type or row first."""
    text = str(error).lower()
    return isinstance(error, IntegrityError) or any(
        words in text for words in ("already exists", "duplicate key", "unique constraint")
    )


def _check_schema_version(storage: optuna.storages.RDBStorage, url: str) -> None:
    """Refuse a database of another Optuna schema revision, as Optuna's own check does."""
    head, _ = optuna_schema()
    try:
        current = storage.get_current_version()
    except SQLAlchemyError as exc:
        storage.engine.dispose()
        raise StorageError(f"cannot open storage {display_url(url)}: {_first_line(exc)}") from None
    if current != head:
        storage.engine.dispose()
        raise StorageError(
            f"storage {display_url(url)} has Optuna schema {current}; Optuna "
            f"{optuna.__version__} here uses {head}. Use a new database, or upgrade a "
            "copy with 'optuna storage upgrade --storage URL'"
        )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open_journal(path: Path, *, create: bool = True) -> optuna.storages.JournalStorage:
    """Optuna's append-only journal on a file; an existing file must already be one."""
    from optuna.storages.journal import JournalFileBackend

    if path.is_dir():
        raise StorageError(f"{path} is a folder; journal:PATH names a journal file")
    if not create and not path.is_file():
        raise MissingDatabase(f"there is no journal at {os.path.abspath(path)}")
    if path.exists() and path.stat().st_size > 0:
        try:
            with path.open("rb") as stream:
                first = json.loads(stream.readline())
            if not isinstance(first, dict) or "op_code" not in first:
                raise ValueError
        except (OSError, ValueError, UnicodeDecodeError):
            raise StorageError(
                f"{path} is not an Optuna journal; name a new file or a journal"
            ) from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise StorageError(f"cannot open the journal {path}: {exc.strerror or exc}") from None
