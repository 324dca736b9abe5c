"""Storage outages as weather: a call that fails because the database cannot be reached
(refused, restarting, its connection dropped) is retried with exponential backoff and
jitter, one log line per retry, until the run's retry limit; a database file whose disk
is full or read-only fails at once with one line that says so; any other error (bad
data, a schema problem, a finished trial) fails at once as it is.

`RetryPolicy.call` wraps one storage operation. Operations nest (Optuna's storage
methods call each other), so only the outermost call of a thread retries.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from optuna.exceptions import UpdateFinishedTrialError
from sqlalchemy import exc as sa_exc

from hpsearch.errors import HpsearchError
from hpsearch.spec.schema import SearchSpec

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETRY_SECONDS = SearchSpec.retry_for  # one default: the spec's
FIRST_PAUSE_SECONDS = 0.5
LONGEST_PAUSE_SECONDS = 8.0

# What the drivers say when the server is unreachable, restarting or gone mid-call.
_UNREACHABLE = {
    "connection refused": "connection refused",
    "could not connect": "cannot connect",
    "the database system is shutting down": "server shutting down",
    "the database system is starting up": "server starting up",
    "the database system is in recovery mode": "server recovering",
    "terminating connection": "connection terminated by the server",
    "server closed the connection": "connection closed by the server",
    "connection is closed": "connection closed",
    "connection is lost": "connection lost",
    "consuming input failed": "connection lost",
    "no connection to the server": "no connection to the server",
    "connection timed out": "connection timed out",
    "connection reset": "connection reset",
    "ssl connection has been closed": "connection closed",
    "name or service not known": "host not found",
    "temporary failure in name resolution": "host not found",
}


class StorageUnavailable(HpsearchError):
    """The database stayed unreachable for longer than the run's retry limit."""


class DiskFull(StorageUnavailable):
    """The database's disk is full or read-only: nothing more can be written."""


# What SQLite says when its file cannot take another write.
_DISK_PROBLEMS = {
    "database or disk is full": "disk full",
    "no space left on device": "disk full",
    "attempt to write a readonly database": "read-only database",
    "read-only file system": "read-only file system",
}


def disk_problem(error: BaseException) -> str | None:
    """'disk full' or 'read-only ...' when `error` (or one it came from) says the
    database file cannot be written, else None."""
    for link in error_chain(error):
        text = str(link).lower()
        for marker, reason in _DISK_PROBLEMS.items():
            if marker in text:
                return reason
    return None


def disk_error(reason: str, database: str | None) -> DiskFull:
    """The one line for a database file that cannot be written: where, and how much room
    its file system has."""
    path = Path(database).resolve() if database else None
    room = ""
    if path is not None:
        with contextlib.suppress(OSError):
            room = f" ({shutil.disk_usage(path.parent).free:,} bytes free)"
    fix = "free space" if reason == "disk full" else "make it writable"
    return DiskFull(
        f"{reason}: {path or 'the database'}{room}; finished trials are kept; {fix} and "
        "run the same command to continue"
    )


def error_chain(error: BaseException) -> list[BaseException]:
    """`error` and the errors it was raised from or during, outermost first."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def unreachable_reason(error: BaseException) -> str | None:
    """A short reason when `error` (or one it came from) says the database could not be
    reached, else None: only these are worth retrying."""
    for link in error_chain(error):
        if isinstance(link, sa_exc.DBAPIError) and link.connection_invalidated:
            return "connection lost"
        if isinstance(link, sa_exc.DisconnectionError):
            return "connection lost"
        if isinstance(link, sa_exc.OperationalError | sa_exc.InterfaceError) or (
            type(link).__module__.startswith("psycopg")
            and type(link).__name__ in ("OperationalError", "InterfaceError")
        ):
            text = str(link).lower()
            for marker, reason in _UNREACHABLE.items():
                if marker in text:
                    return reason
    return None


# What SQLite says of a file damaged, emptied or replaced while a run used it.
_DAMAGED = ("file is not a database", "database disk image is malformed", "no such table")


class DatabaseDamaged(HpsearchError):
    """The database file stopped being a study database while in use: not an outage,
    nothing to wait for."""


def damaged(reason: str) -> DatabaseDamaged:
    """The one-line error for a database file that is no longer a study database."""
    return DatabaseDamaged(
        f"the database file was damaged, emptied or replaced while in use ({reason}); "
        "restore it from a copy, or use another --storage"
    )


def damaged_reason(error: BaseException) -> str | None:
    """SQLite's words when `error` (or one it came from) says the file is no longer a
    study database, else None."""
    for link in error_chain(error):
        if isinstance(link, sa_exc.DatabaseError | sqlite3.DatabaseError):
            text = str(getattr(link, "orig", link)).splitlines()[0].lower()
            for marker in _DAMAGED:
                if marker in text:
                    return marker
    return None


@dataclass
class RetryPolicy:
    """How long one process keeps retrying a database that cannot be reached. Not
    picklable on purpose: every process opens its storage and gets a policy of its own."""

    retry_for: float = DEFAULT_RETRY_SECONDS
    first_pause: float = FIRST_PAUSE_SECONDS
    longest_pause: float = LONGEST_PAUSE_SECONDS
    # How to wait between tries, and whether to stop waiting: a run's stop request
    # (Ctrl-C, SIGTERM) ends the retries instead of sitting them out.
    sleep: Callable[[float], Any] = time.sleep
    stop_requested: Callable[[], bool] = lambda: False
    recovered_at: float | None = None  # time.monotonic() when an outage last ended
    gave_up: bool = False  # a call ran out of retries: the run is over, later calls fail
    _rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(os.getpid()))
    _local: threading.local = field(default_factory=threading.local)

    def __reduce__(self):
        raise TypeError("a RetryPolicy belongs to one process: open the storage there")

    def recovered_within(self, seconds: float) -> bool:
        """Whether this process came back from an outage less than `seconds` ago."""
        return self.recovered_at is not None and time.monotonic() - self.recovered_at < seconds

    @property
    def last_call_retried(self) -> bool:
        """Whether this thread's last outermost call failed at least once before it
        returned or raised (a write that failed mid-call may have committed)."""
        return getattr(self._local, "retried", False)

    def call(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`operation(*args, **kwargs)`, retried while the database is unreachable."""
        if getattr(self._local, "inside", False):
            return operation(*args, **kwargs)
        self._local.inside, self._local.retried = True, False
        try:
            return self._retried(operation, args, kwargs)
        finally:
            self._local.inside = False

    def _retried(self, operation: Callable[..., T], args: tuple, kwargs: dict) -> T:
        give_up, pause = None, self.first_pause
        while True:
            try:
                result = operation(*args, **kwargs)
            except Exception as error:
                reason = unreachable_reason(error)
                if reason is None:
                    words = damaged_reason(error)
                    if words is not None:
                        raise damaged(words) from error
                    raise
                self._local.retried = True
                if give_up is None:  # the deadline starts at the first failure
                    give_up = time.monotonic() + self.retry_for
                left = give_up - time.monotonic()
                # Once a call has given up, the run is over: the calls Optuna makes
                # while failing the trial try once, and a stop request ends the wait.
                if self.stop_requested():
                    self.gave_up = True
                    raise StorageUnavailable(
                        f"stopped while the database was unreachable ({reason}); finished "
                        "trials are kept, run the same command again to continue"
                    ) from error
                if left <= 0 or self.gave_up:
                    self.gave_up = True
                    raise StorageUnavailable(
                        f"database unreachable ({reason}) for longer than the retry limit "
                        f"of {self.retry_for:g} s; finished trials are kept, run the same "
                        "command again to continue"
                    ) from error
                wait = min(pause * (1.0 + 0.25 * self._rng.random()), left)
                until = datetime.now() + timedelta(seconds=left)
                logger.warning(
                    "database unreachable (%s); retrying in %.1f s, giving up at %s",
                    reason,
                    wait,
                    until.strftime("%H:%M:%S"),
                )
                self.sleep(wait)
                pause = min(2.0 * pause, self.longest_pause)
            else:
                if give_up is not None:
                    self.recovered_at = time.monotonic()
                    logger.warning("database reachable again")
                return result


def retry_methods(cls: type, names: tuple[str, ...]) -> None:
    """Wrap the methods `names` of `cls` (those it has) so that each call rides out an
    outage under the instance's `retry_policy` (None: no retries)."""
    for name in names:
        if hasattr(cls, name):
            setattr(cls, name, _retried(getattr(cls, name)))


def _retried(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self, *args: Any, **kwargs: Any) -> T:
        policy = getattr(self, "retry_policy", None)
        if policy is None:
            return method(self, *args, **kwargs)
        try:
            return policy.call(method, self, *args, **kwargs)
        except StorageUnavailable:
            raise
        except UpdateFinishedTrialError:
            # A trial's end written again after the connection dropped mid-call: the
            # first try committed if the trial already has the state asked for.
            if method.__name__ == "set_trial_state_values" and policy.last_call_retried:
                asked = dict(zip(("trial_id", "state"), args, strict=False)) | kwargs
                if self.get_trial(asked["trial_id"]).state == asked["state"]:
                    return True
            raise
        except Exception as error:
            reason = disk_problem(error) if self.engine.name == "sqlite" else None
            if reason is None:
                raise
            raise disk_error(reason, self.engine.url.database) from error

    return wrapper


def ride_out_outages(cls: type, methods: tuple[str, ...], stale_check: str) -> None:
    """Make a storage class's database calls retry through outages, and its stale-trial
    check wait a heartbeat grace plus the longest retry pause after an outage of its
    own: every worker's heartbeats stopped while the database was away, and their
    trials are not dead."""
    retry_methods(cls, methods)
    check = getattr(cls, stale_check)

    @functools.wraps(check)
    def after_outages(self, *args: Any, **kwargs: Any) -> list[int]:
        policy = getattr(self, "retry_policy", None)
        grace = float(getattr(self, "grace_period", None) or 0.0)
        # Long enough for every worker's heartbeat thread to be out of its last pause.
        if policy is not None and policy.recovered_within(grace + 1.25 * policy.longest_pause):
            return []
        return check(self, *args, **kwargs)

    setattr(cls, stale_check, after_outages)
