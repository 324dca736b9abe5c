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
import contextvars
import copy
import functools
import json
import logging
import sqlite3
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.storages._rdb import models as rdb_models
from sqlalchemy import bindparam, event, func, insert, select, text
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from hpsearch.errors import HpsearchError

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 60
HEARTBEAT_SECONDS = 10  # how often a running trial says it is alive
GRACE_FACTOR = 3  # a trial silent for this many heartbeats is taken for dead
MAX_RETRY = 1  # a dead worker's trial is re-queued once
JOURNAL_PREFIX = "journal:"


class StorageError(HpsearchError):
    """A storage URL that cannot be opened as a study database."""


# Set while a storage method that only reads runs: its SQLite transaction then begins
# DEFERRED (a WAL reader, which never waits for the write lock) instead of IMMEDIATE.
_reading: contextvars.ContextVar[bool] = contextvars.ContextVar("hpsearch_reading", default=False)


@contextlib.contextmanager
def reading() -> Iterator[None]:
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def _reads_only(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with reading():
            return method(*args, **kwargs)

    return wrapper


class SharedRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage, cheaper for several workers on one database.

    A trial writes about fifteen transactions (params, one report per epoch, user
    attrs, heartbeats, its end), and on SQLite each write holds the file's one write
    lock, so workers queue for it. Methods that only read begin DEFERRED transactions,
    which in WAL mode never wait for or hold the write lock; the frequent writes are
    Core statements compiled once (below); `set_trial_user_attrs` writes several user
    attrs in one transaction instead of one each. Everything else is Optuna's."""

    get_trial = _reads_only(optuna.storages.RDBStorage.get_trial)
    get_all_trials = _reads_only(optuna.storages.RDBStorage.get_all_trials)
    _get_trials = _reads_only(optuna.storages.RDBStorage._get_trials)
    get_trial_param = _reads_only(optuna.storages.RDBStorage.get_trial_param)
    get_trial_user_attrs = _reads_only(optuna.storages.RDBStorage.get_trial_user_attrs)
    get_trial_system_attrs = _reads_only(optuna.storages.RDBStorage.get_trial_system_attrs)
    get_trial_id_from_study_id_trial_number = _reads_only(
        optuna.storages.RDBStorage.get_trial_id_from_study_id_trial_number
    )
    get_best_trial = _reads_only(optuna.storages.RDBStorage.get_best_trial)
    get_all_studies = _reads_only(optuna.storages.RDBStorage.get_all_studies)
    get_study_id_from_name = _reads_only(optuna.storages.RDBStorage.get_study_id_from_name)
    get_study_name_from_id = _reads_only(optuna.storages.RDBStorage.get_study_name_from_id)
    get_study_directions = _reads_only(optuna.storages.RDBStorage.get_study_directions)
    get_study_user_attrs = _reads_only(optuna.storages.RDBStorage.get_study_user_attrs)
    get_study_system_attrs = _reads_only(optuna.storages.RDBStorage.get_study_system_attrs)

    _get_stale_trial_ids = _reads_only(optuna.storages.RDBStorage._get_stale_trial_ids)

    # The writes below happen for every epoch of every trial (reports), once a trial
    # (user attrs, the first heartbeat) and then periodically. Optuna writes them through
    # ORM sessions that load the trial and compile a fresh statement each time, ~1 ms
    # per write on SQLite, all of it inside the write lock that the other workers queue
    # for (a heartbeat, written by a thread beside training, held it ~4 ms). Here each
    # is a Core transaction of one state check and one upsert compiled once: ~0.15 ms.

    @property
    def _core(self) -> bool:
        """Whether this database takes the Core paths below (others take Optuna's)."""
        return self.engine.name in _UPSERT_DIALECTS

    def _upsert(self, kind: str) -> Any:
        return _upsert_statement(self.engine.name, kind)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Any]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise optuna.exceptions.StorageInternalError(
                "an error occurred while writing to the storage"
            ) from exc

    def _check_running(self, connection, trial_id: int) -> int:
        """Optuna's check that a trial may still change, from its state column alone;
        returns the trial's study id."""
        row = connection.execute(_STATE_OF_TRIAL, {"trial_id": trial_id}).one_or_none()
        if row is None:
            raise KeyError(rdb_models.NOT_FOUND_MSG)
        self.check_trial_is_updatable(trial_id, row.state)
        return row.study_id

    def _set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: optuna.distributions.BaseDistribution,
        previous_distribution: optuna.distributions.BaseDistribution | None,
    ) -> None:
        """Optuna's checks (the trial is running; the parameter's distribution agrees
        with the study's earlier ones) and the insert, in one Core transaction."""
        if not self._core:
            super()._set_trial_param(
                trial_id, param_name, param_value_internal, distribution, previous_distribution
            )
            return
        with self._writing() as connection:
            study_id = self._check_running(connection, trial_id)
            if previous_distribution is None:
                previous = connection.execute(
                    _EARLIER_DISTRIBUTION, {"study_id": study_id, "param_name": param_name}
                ).scalar()
                if previous is not None:
                    previous_distribution = optuna.distributions.json_to_distribution(previous)
            if previous_distribution is not None:
                optuna.distributions.check_distribution_compatibility(
                    previous_distribution, distribution
                )
            connection.execute(
                _INSERT_PARAM,
                {
                    "trial_id": trial_id,
                    "param_name": param_name,
                    "param_value": param_value_internal,
                    "distribution_json": optuna.distributions.distribution_to_json(distribution),
                },
            )

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        if not self._core:
            super().set_trial_intermediate_value(trial_id, step, intermediate_value)
            return
        model = rdb_models.TrialIntermediateValueModel
        stored, kind = model.intermediate_value_to_stored_repr(intermediate_value)
        row = {
            "trial_id": trial_id,
            "step": step,
            "intermediate_value": stored,
            "intermediate_value_type": kind,
        }
        with self._writing() as connection:
            self._check_running(connection, trial_id)
            connection.execute(self._upsert("intermediate"), row)

    def set_trial_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        """Set every key of `attrs` on a running trial in one transaction: the trial's
        state is checked once and the rows are upserted together (Optuna's per-key path
        re-reads the trial for every key, ~2 ms each)."""
        if not self._core:
            for key, value in attrs.items():
                self.set_trial_user_attr(trial_id, key, value)
            return
        self._set_trial_attrs("user_attr", trial_id, attrs)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if not self._core:
            super().set_trial_system_attr(trial_id, key, value)
            return
        self._set_trial_attrs("system_attr", trial_id, {key: value})

    def _set_trial_attrs(self, kind: str, trial_id: int, attrs: dict[str, Any]) -> None:
        if attrs:
            with self._writing() as connection:
                self._check_running(connection, trial_id)
                connection.execute(self._upsert(kind), _attr_rows(trial_id, attrs))

    def _create_new_trial(
        self, study_id: int, template_trial: optuna.trial.FrozenTrial | None = None
    ) -> optuna.trial.FrozenTrial:
        """A new RUNNING trial (every `ask`) or an enqueued WAITING one, in one Core
        transaction: the study row locked (PostgreSQL; SQLite's write lock does it),
        the trial numbered by counting the study's trials, its attrs inserted. Optuna's
        ORM path took ~1.5 ms inside the write lock. Other templates (`add_trial` of a
        finished trial) take Optuna's path."""
        waiting = (
            template_trial is not None
            and template_trial.state == optuna.trial.TrialState.WAITING
            and not (template_trial.params or template_trial.intermediate_values)
            and template_trial.values is None
        )
        if not self._core or not (template_trial is None or waiting):
            return super()._create_new_trial(study_id, template_trial)
        state = optuna.trial.TrialState.RUNNING if template_trial is None else template_trial.state
        start = datetime.now() if template_trial is None else template_trial.datetime_start
        with self._writing() as connection:
            if connection.execute(_STUDY_FOR_UPDATE, {"study_id": study_id}).first() is None:
                raise KeyError(rdb_models.NOT_FOUND_MSG)
            number = connection.execute(_COUNT_TRIALS, {"study_id": study_id}).scalar_one()
            row = {"number": number, "study_id": study_id, "state": state}
            row |= {"datetime_start": start, "datetime_complete": None}
            trial_id = connection.execute(_INSERT_TRIAL, row).inserted_primary_key[0]
            if template_trial is not None:
                for kind, attrs in [
                    ("system_attr", template_trial.system_attrs),
                    ("user_attr", template_trial.user_attrs),
                ]:
                    if attrs:
                        connection.execute(self._upsert(kind), _attr_rows(trial_id, attrs))
        if template_trial is not None:
            frozen = copy.deepcopy(template_trial)
            frozen.number, frozen.datetime_start, frozen._trial_id = number, start, trial_id
            return frozen
        return optuna.trial.FrozenTrial(
            number=number,
            state=state,
            value=None,
            values=None,
            datetime_start=start,
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={},
            intermediate_values={},
            trial_id=trial_id,
        )

    def record_heartbeat(self, trial_id: int) -> None:
        if not self._core:
            super().record_heartbeat(trial_id)
            return
        with self._writing() as connection:
            connection.execute(self._upsert("heartbeat"), {"trial_id": trial_id})


def _attr_rows(trial_id: int, attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
        for key, value in attrs.items()
    ]


_STATE_OF_TRIAL = (
    select(rdb_models.TrialModel.state, rdb_models.TrialModel.study_id)
    .where(rdb_models.TrialModel.trial_id == bindparam("trial_id"))
    .with_for_update()  # PostgreSQL: no state change until the write commits
)
_EARLIER_DISTRIBUTION = (
    select(rdb_models.TrialParamModel.distribution_json)
    .join(rdb_models.TrialModel)
    .where(
        rdb_models.TrialModel.study_id == bindparam("study_id"),
        rdb_models.TrialParamModel.param_name == bindparam("param_name"),
    )
    .limit(1)
)
_INSERT_PARAM = insert(rdb_models.TrialParamModel)
_INSERT_TRIAL = insert(rdb_models.TrialModel)
_STUDY_FOR_UPDATE = (
    select(rdb_models.StudyModel.study_id)
    .where(rdb_models.StudyModel.study_id == bindparam("study_id"))
    .with_for_update()
)
_COUNT_TRIALS = select(func.count(rdb_models.TrialModel.trial_id)).where(
    rdb_models.TrialModel.study_id == bindparam("study_id")
)
_UPSERT_DIALECTS = {"sqlite": sqlite_dialect, "postgresql": postgresql_dialect}


@functools.cache
def _upsert_statement(dialect_name: str, kind: str) -> Any:
    """The insert-or-overwrite statement of `kind` in the dialect (SQLite or
    PostgreSQL), built once so that SQLAlchemy compiles it once."""
    dialect = _UPSERT_DIALECTS[dialect_name]
    if kind == "heartbeat":
        model = rdb_models.TrialHeartbeatModel
        adding = dialect.insert(model).values(heartbeat=func.now())  # the database's clock
        return adding.on_conflict_do_update(
            index_elements=["trial_id"], set_={"heartbeat": adding.excluded.heartbeat}
        )
    model, keys, values = {
        "intermediate": (
            rdb_models.TrialIntermediateValueModel,
            ["trial_id", "step"],
            ["intermediate_value", "intermediate_value_type"],
        ),
        "user_attr": (rdb_models.TrialUserAttributeModel, ["trial_id", "key"], ["value_json"]),
        "system_attr": (
            rdb_models.TrialSystemAttributeModel,
            ["trial_id", "key"],
            ["value_json"],
        ),
    }[kind]
    adding = dialect.insert(model)
    return adding.on_conflict_do_update(
        index_elements=keys, set_={column: adding.excluded[column] for column in values}
    )


def set_user_attrs(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """`trial.set_user_attr` for each key, in one database transaction where the
    storage allows (a trial's curves and diagnostics are stored together anyway)."""
    backend = rdb_backend(trial.study)
    if not isinstance(backend, SharedRDBStorage):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    backend.set_trial_user_attrs(trial._trial_id, attrs)
    trial._cached_frozen_trial.user_attrs.update(attrs)


def display_url(url: str) -> str:
    """The URL with any password masked, for printing, logging and storing."""
    if url.startswith(JOURNAL_PREFIX):
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>" if "@" in url else url


def sqlite_path(url: str) -> Path | None:
    """The database file of an sqlite:/// URL (None for other URLs or in-memory)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


_VersionManager = optuna.storages._rdb.storage._VersionManager
_alembic_head_version = _VersionManager.get_head_version
_head_version: list[str] = []


def _head_version_once(manager: Any) -> str:
    """Optuna's newest schema version, found once per process. Alembic finds it by
    importing every one of Optuna's migration scripts: ~0.1 s each time a storage was
    opened (a run's parent, a round, a worker moving to the next study), for an answer
    that only an Optuna upgrade, which restarts the process, can change."""
    if not _head_version:
        _head_version.append(_alembic_head_version(manager))
    return _head_version[0]


_VersionManager.get_head_version = _head_version_once


def open_storage(
    url: str, *, heartbeat: int | None = HEARTBEAT_SECONDS, checked: bool = False
) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url`, or a StorageError saying what is wrong with it.

    `heartbeat` is the heartbeat interval in seconds of relational storages (None: no
    heartbeats, so nothing can tell a dead worker's trial from a slow one). `checked`:
    this run opened the database already: the file was checked and prepared, its tables
    exist and their schema version was checked (~0.3 s for every worker otherwise).
    """
    if url.startswith(JOURNAL_PREFIX):
        return _open_journal(Path(url[len(JOURNAL_PREFIX) :]))
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
            _prepare_sqlite(path)
        engine_kwargs = {"connect_args": {"timeout": BUSY_TIMEOUT_SECONDS}}
    elif parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":  # SQLAlchemy would reach for psycopg2
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        # Workers on other machines keep connections for hours: test them before use.
        engine_kwargs = {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():  # heartbeats have been "experimental" since 2.x
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beats = {}
            if heartbeat is not None:
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
                beats = {
                    "heartbeat_interval": heartbeat,
                    "grace_period": GRACE_FACTOR * heartbeat,
                    "heartbeat_stale_trial_callback": retry,
                }
            storage = SharedRDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                skip_compatibility_check=checked,
                skip_table_creation=checked,
                **beats,
            )
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
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"cannot open storage {display_url(url)}: {first_line}") from None
    if path is not None:
        event.listen(storage.engine, "connect", _sqlite_connection)
        event.listen(storage.engine, "begin", _begin_immediate)
        storage.engine.dispose()
    return storage


def running_without_heartbeat(study: optuna.Study, older_than: float) -> list[int]:
    """Numbers of the study's RUNNING trials that started more than `older_than` seconds
    ago and never sent a heartbeat: run by a process without heartbeats (an older
    hpsearch, plain Optuna) or left by one that died. Heartbeats can never fail them, so
    a worker waiting for them would wait for ever."""
    storage = rdb_backend(study)
    if storage is None:
        return []
    query = text(
        "SELECT t.number, t.datetime_start FROM trials t "
        "LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
        "WHERE t.study_id = :study AND t.state = 'RUNNING' AND h.trial_id IS NULL"
    )
    with reading(), storage.engine.connect() as connection:
        rows = connection.execute(query, {"study": study._study_id}).all()
    # Optuna stores naive local times.
    cutoff = datetime.now() - timedelta(seconds=older_than)
    return sorted(number for number, start in rows if start is None or _as_datetime(start) < cutoff)


# -- the rest of Optuna's private names hpsearch reads, here so no other module does ---

# The logger that reports a trial's failure inside `study.optimize` (a private module).
OPTIMIZE_LOGGER = "optuna.study._optimize"


def study_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes through (Optuna keeps it private)."""
    return study._storage


def heartbeat_interval(study: optuna.Study) -> int | None:
    """The study's heartbeat interval in seconds, or None when its storage sends none."""
    storage = study._storage
    return storage.get_heartbeat_interval() if is_heartbeat_enabled(storage) else None


def startup_trials(pruner: optuna.pruners.MedianPruner) -> int:
    """How many completed trials the median pruner waits for before it prunes."""
    return pruner._n_startup_trials


def rdb_backend(study: optuna.Study) -> optuna.storages.RDBStorage | None:
    """The relational storage under a study (Optuna wraps it in a cache), or None."""
    storage = study._storage
    storage = getattr(storage, "_backend", storage)
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


def count_live_trials(study: optuna.Study, *, before: int | None = None) -> dict[str, int]:
    """Trials per state name that the study ran itself (not copied in by a warm start),
    numbered below `before` if given. Relational storages count in one query instead of
    loading every trial; others (the journal) count the trials they hold."""
    storage = rdb_backend(study)
    if storage is None:
        counts: dict[str, int] = {}
        for trial in study.get_trials(deepcopy=False):
            if "copied_from" in trial.user_attrs or (before is not None and trial.number >= before):
                continue
            counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
        return counts
    query = (
        "SELECT t.state, COUNT(*) FROM trials t WHERE t.study_id = :study "
        "AND NOT EXISTS (SELECT 1 FROM trial_user_attributes a "
        "WHERE a.trial_id = t.trial_id AND a.key = 'copied_from')"
    )
    values: dict[str, int] = {"study": study._study_id}
    if before is not None:
        query += " AND t.number < :before"
        values["before"] = before
    with reading(), storage.engine.connect() as connection:
        rows = connection.execute(text(query + " GROUP BY t.state"), values).all()
    return {str(state): int(count) for state, count in rows}


def running_curves(study: optuna.Study, *, other_than: int) -> list[dict[int, float]]:
    """The intermediate values reported so far by the study's RUNNING trials, other than
    trial number `other_than`: one step -> value dict per trial, read in one query on
    relational storages."""
    storage = rdb_backend(study)
    if storage is None:
        return [
            dict(t.intermediate_values)
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            if t.number != other_than
        ]
    trial, value = rdb_models.TrialModel, rdb_models.TrialIntermediateValueModel
    query = (
        select(value.trial_id, value.step, value.intermediate_value, value.intermediate_value_type)
        .join(trial, trial.trial_id == value.trial_id)
        .where(
            trial.study_id == study._study_id,
            trial.state == optuna.trial.TrialState.RUNNING,
            trial.number != other_than,
        )
    )
    with reading(), storage.engine.connect() as connection:
        rows = connection.execute(query).all()
    curves: dict[int, dict[int, float]] = {}
    for trial_id, step, stored, kind in rows:
        curves.setdefault(trial_id, {})[step] = value.stored_repr_to_intermediate_value(
            stored, kind
        )
    return list(curves.values())


def _as_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _open_journal(path: Path) -> optuna.storages.JournalStorage:
    """Optuna's append-only journal on a file; an existing file must already be one."""
    from optuna.storages.journal import JournalFileBackend

    if path.is_dir():
        raise StorageError(f"{path} is a folder; journal:PATH names a journal file")
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


def _sqlite_connection(connection, _record) -> None:
    """Per-connection settings. In WAL mode, synchronous=NORMAL keeps the database
    consistent across crashes (a power cut may lose the last commits, never corrupt)
    and drops the fsync from every per-epoch report. The driver's own transaction
    handling is switched off so that `_begin_immediate` decides how transactions begin.
    """
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_immediate(connection) -> None:
    """Take SQLite's write lock when a transaction begins, not at its first write.

    SQLite ignores SELECT ... FOR UPDATE, which Optuna relies on to claim a waiting
    trial (an enqueued or re-queued one) and to check a trial is still running before
    writing to it. With deferred transactions two workers can both read "WAITING" and
    both run the trial, and a read that turns into a write fails at once with
    "database is locked" instead of waiting. BEGIN IMMEDIATE serialises each
    read-then-write under the busy timeout; WAL still lets readers (the dashboard,
    progress) run beside it. Storage methods that only read (see `SharedRDBStorage`)
    begin DEFERRED: they never write, so they need no lock.
    """
    connection.exec_driver_sql("BEGIN" if _reading.get() else "BEGIN IMMEDIATE")


def close_connections(study: optuna.Study) -> None:
    """Close the pooled database connections of the study's storage (they reopen when
    next needed): a forked process must not inherit connections it could use or close."""
    storage = rdb_backend(study)
    if storage is not None:
        storage.engine.dispose()


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
    existed = path.exists()
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)) as db:
            db.execute("PRAGMA schema_version")  # reads the header: fails on other files
            _check_optuna_schema(db, path)  # before anything writes to the file
            # WAL lets readers (dashboard, progress) run beside one writer; it persists.
            db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StorageError(
                f"{path} is not an SQLite database; name a new or SQLite file"
            ) from None
        if existed:
            raise StorageError(f"cannot open the database {path}: {exc}") from None
        raise StorageError(f"cannot create the database {path}: {exc}") from None


# Tables Optuna's RDB storage creates; a database with tables but none of these belongs
# to another program, and Optuna would add its tables to it.
OPTUNA_TABLES = frozenset({"studies", "trials", "version_info", "alembic_version"})


def _check_optuna_schema(db: sqlite3.Connection, path: Path) -> None:
    """Refuse, by reading only, a database that Optuna would change on opening: another
    program's database, or one of another Optuna schema version (Optuna would add
    missing tables before noticing, and its fix is to upgrade the file in place)."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return  # a new database
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
    expected_revision, expected_schema = _optuna_schema()
    if (revision is None or revision == expected_revision) and (
        schema is None or schema == expected_schema
    ):
        return
    made_by = f"Optuna {library}" if library else "another Optuna"
    raise StorageError(
        f"{path} was made by {made_by} (schema {revision or schema}); Optuna "
        f"{optuna.__version__} here uses schema {expected_revision}. hpsearch leaves it "
        "untouched: use a new database, or upgrade a copy with "
        "'optuna storage upgrade --storage sqlite:///COPY'"
    )


@functools.cache
def _optuna_schema() -> tuple[str, int]:
    """(alembic revision, version_info.schema_version) that this Optuna writes, read
    from a fresh in-memory database."""
    storage = optuna.storages.RDBStorage("sqlite://", skip_compatibility_check=True)
    try:
        with storage.engine.connect() as connection:
            schema = connection.exec_driver_sql("SELECT schema_version FROM version_info")
            return storage.get_head_version(), schema.scalar_one()
    finally:
        storage.engine.dispose()
