"""One command at a time creates a study of a given name in a database.

Creating a study is several writes (the study, its attributes, its first trials), and
a command can be stopped between any two of them. The lock lets the next command tell
a creator at work (it holds the lock: wait for it) from one that was stopped (nobody
holds it: what it left may be rolled back). The lock dies with its holder, so a
SIGKILLed command never leaves it taken:

- SQLite and journal files: an advisory lock (flock) on the database's folder, which
  the kernel drops when the process ends. The database file itself is never opened
  here: closing a second descriptor of it would drop SQLite's own locks.
- PostgreSQL: a session advisory lock on a connection of its own, which the server
  drops when the connection ends.
- in-memory storages: a lock of this process, which alone holds them.

Other servers have no such lock here: `creation_lock` then says it is not exclusive,
and nothing is rolled back.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
from sqlalchemy import text

from hpsearch.errors import StudyError
from hpsearch.storage.fast_rdb import rdb_backend, study_storage
from hpsearch.storage.urls import database_file

logger = logging.getLogger(__name__)

WAIT_SECONDS = 120.0  # how long a command waits for another that is creating the study
SAY_AFTER_SECONDS = 3.0  # when a waiting command says what it waits for
POLL_SECONDS = 0.05

# Studies in memory live in this process alone: one lock for all their creations.
IN_MEMORY = threading.Lock()


@contextlib.contextmanager
def creation_lock(
    url: str,
    storage: optuna.storages.BaseStorage,
    study_name: str,
    wait_seconds: float = WAIT_SECONDS,
) -> Iterator[bool]:
    """Hold the lock on creating `study_name` in the database at `url`; yields whether
    the lock is exclusive (False: this kind of storage has none here).

    Waits while another command holds it, for at most `wait_seconds`, then raises a
    StudyError: a creator stalled that long (a stopped process, a stalled server) is
    the user's to look at."""
    folder = _lock_folder(url)
    engine = getattr(storage, "engine", None)
    if folder is not None:
        lock = _folder_lock(folder, wait_seconds)
    elif engine is not None and engine.dialect.name == "postgresql":
        lock = _advisory_lock(engine, wait_seconds, study_name)
    elif isinstance(storage, optuna.storages.InMemoryStorage):
        lock = _process_lock(wait_seconds, study_name)
    else:
        lock = contextlib.nullcontext(False)
    with lock as exclusive:
        yield exclusive


def study_lock(url: str, study: optuna.Study) -> contextlib.AbstractContextManager[bool]:
    """The creation lock of an existing study: held by whoever changes what several
    commands may change at once (the confirm stage's queue, `final`'s list of looks)."""
    return creation_lock(url, rdb_backend(study) or study_storage(study), study.study_name)


def _lock_folder(url: str) -> Path | None:
    path = database_file(url)
    return None if path is None else Path(os.path.abspath(path)).parent


class _Waiting:
    """The deadline of one wait, and the one line that says what it waits for."""

    def __init__(self, wait_seconds: float, what: str) -> None:
        self.start = time.monotonic()
        self.wait_seconds = wait_seconds
        self.what = what  # "study 'x'", or "a study in folder F" for a folder's lock
        self.said = False

    def again(self) -> None:
        """Sleep before the next try, or raise once the deadline has passed."""
        waited = time.monotonic() - self.start
        if waited >= self.wait_seconds:
            raise StudyError(
                f"another command has been creating {self.what} for over "
                f"{self.wait_seconds:.0f} s (stopped, or its database stalled); try again "
                "once it has finished or been stopped"
            )
        if not self.said and waited >= SAY_AFTER_SECONDS:
            logger.warning("waiting for another command that is creating %s", self.what)
            self.said = True
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def _folder_lock(folder: Path, wait_seconds: float) -> Iterator[bool]:
    """The folder's lock, shared by the creation of every study of every database in
    it. A file system without flock (some network file systems) gives no lock: then
    not exclusive, and said once."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        waiting = _Waiting(wait_seconds, f"a study in {folder}")
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    logger.warning(
                        "cannot lock %s (%s): a study stopped half-way while being created "
                        "there is refused, not rolled back",
                        folder,
                        exc.strerror or exc,
                    )
                    locked = False
                    break
            waiting.again()
        yield locked
    finally:
        os.close(descriptor)  # drops the lock


def _advisory_key(study_name: str) -> int:
    """A signed 64-bit key, PostgreSQL's advisory lock space, for the study's name."""
    digest = hashlib.sha256(f"hpsearch study creation {study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def _advisory_lock(engine, wait_seconds: float, study_name: str) -> Iterator[bool]:
    key = _advisory_key(study_name)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        waiting = _Waiting(wait_seconds, f"study {study_name!r}")
        try_lock = text("SELECT pg_try_advisory_lock(:key)")
        while not connection.execute(try_lock, {"key": key}).scalar():
            waiting.again()
        try:
            yield True
        finally:
            with contextlib.suppress(Exception):  # a lost connection has dropped it already
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextlib.contextmanager
def _process_lock(wait_seconds: float, study_name: str) -> Iterator[bool]:
    waiting = _Waiting(wait_seconds, f"study {study_name!r}")
    while not IN_MEMORY.acquire(blocking=False):
        waiting.again()
    try:
        yield True
    finally:
        IN_MEMORY.release()
