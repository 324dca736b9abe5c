"""Connections to a study's database: the one reads take, and a server's pooled ones,
tested before use only when they sat idle.

A worker on another machine may keep a connection for hours between reports, and a
server restart or a firewall drops it silently: a connection idle for IDLE_SECONDS is
pinged when taken from the pool and replaced when the ping fails (SQLAlchemy's
pessimistic disconnect handling). Testing every checkout (`pool_pre_ping`) would cost a
round trip per transaction, and a trial writes a dozen of them. A connection dropped
while busy fails its statement, which the retry layer (`retry`) runs again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

from hpsearch.storage.sqlite_files import reading

IDLE_SECONDS = 10.0


@contextlib.contextmanager
def read_connection(engine: Any) -> Iterator[Any]:
    """A connection for reads only: a DEFERRED transaction on SQLite (one WAL snapshot,
    never waiting for the write lock); autocommit on PostgreSQL, where each statement of
    a READ COMMITTED transaction sees its own snapshot anyway, without the BEGIN and
    ROLLBACK round trips."""
    with reading(), engine.connect() as connection:
        if engine.name == "postgresql":
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


def ping_when_idle(engine: Any) -> None:
    """Ping a connection of `engine`'s pool before use when it was idle for longer than
    IDLE_SECONDS; one that does not answer is replaced."""

    @event.listens_for(engine, "checkin")
    def _idle_from_now(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()  # leave it as the pool gave it: no open transaction
        except Exception as exc:  # the driver's own error type: any failure is a dead line
            raise DisconnectionError(f"an idle connection did not answer: {exc}") from exc
