"""Where studies live. hpsearch's modules import storage names from here.

- `urls`: storage URLs to Optuna storages (SQLite, PostgreSQL, journal) and their checks.
- `sqlite_files`: SQLite file guards, WAL and transaction settings, `reading()`.
- `file_watch`: the database file a run opened, still at its path when it reports.
- `fast_rdb`: the fast relational storage and every Optuna private name hpsearch reads.
- `version_gate`: the fast path on tested Optuna releases, plain RDBStorage on others.
- `pool`: the connection reads take; server connections pinged only after sitting idle.
- `retry`: outages ridden out: unreachable databases retried with backoff, one line each.
- `queries`: counts, running curves and silent trials in one query each.
"""

from hpsearch.storage.fast_rdb import (
    OPTIMIZE_LOGGER,
    RDB_LOGGER,
    SharedRDBStorage,
    discard_session,
    heartbeat_interval,
    rdb_backend,
    set_user_attrs,
    startup_trials,
    study_storage,
)
from hpsearch.storage.file_watch import DatabaseFile, DatabaseVanished
from hpsearch.storage.queries import (
    close_connections,
    count_live_trials,
    retry_until_stopped,
    running_curves,
    running_without_heartbeat,
)
from hpsearch.storage.retry import DEFAULT_RETRY_SECONDS, StorageUnavailable
from hpsearch.storage.sqlite_files import MissingDatabase, StorageError, reading
from hpsearch.storage.urls import (
    GRACE_FACTOR,
    HEARTBEAT_SECONDS,
    MAX_RETRY,
    absolute_url,
    display_url,
    open_storage,
    sqlite_path,
    storage_place,
    url_without_password,
)

__all__ = [
    "DEFAULT_RETRY_SECONDS",
    "GRACE_FACTOR",
    "HEARTBEAT_SECONDS",
    "MAX_RETRY",
    "OPTIMIZE_LOGGER",
    "RDB_LOGGER",
    "DatabaseFile",
    "DatabaseVanished",
    "MissingDatabase",
    "SharedRDBStorage",
    "StorageError",
    "StorageUnavailable",
    "absolute_url",
    "close_connections",
    "count_live_trials",
    "discard_session",
    "display_url",
    "heartbeat_interval",
    "open_storage",
    "rdb_backend",
    "reading",
    "retry_until_stopped",
    "running_curves",
    "running_without_heartbeat",
    "set_user_attrs",
    "sqlite_path",
    "startup_trials",
    "storage_place",
    "study_storage",
    "url_without_password",
]
