"""The fast path to Optuna's relational storage, and the one module of hpsearch that
reads Optuna's private names (ORM models, the storage methods `_CachedStorage` calls, a
study's storage, a trial's id, the median pruner's start-up count, two loggers).
tests/test_fast_rdb.py holds the contract: it fails loudly when a release changes them.

`SharedRDBStorage` is Optuna's RDBStorage with its hot writes (a trial's creation,
parameters, a report per epoch, attrs, heartbeats) as SQLAlchemy Core statements
compiled once and its reads in DEFERRED transactions, so that workers sharing one SQLite
file queue less for its write lock. `version_gate` decides whether this Optuna gets it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
from collections.abc import Iterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import optuna
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import SQLAlchemyError

from hpsearch.storage.retry import RetryPolicy, ride_out_outages
from hpsearch.storage.sqlite_files import reading

try:
    from optuna.storages._rdb import models as rdb_models
except ImportError:  # an Optuna that moved its models: the fast path stays off
    rdb_models = None
MODELS_FOUND = rdb_models is not None

_RDBStorage = optuna.storages.RDBStorage


def _reads_only(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with reading():
            return method(*args, **kwargs)

    return wrapper


# Optuna's methods that only read: they begin DEFERRED transactions on SQLite.
READ_METHODS = (
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_trial_param",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_trial_id_from_study_id_trial_number",
    "get_best_trial",
    "get_all_studies",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "_get_stale_trial_ids",
)
# Optuna's methods that SharedRDBStorage writes itself (its own `set_trial_user_attrs`,
# several attrs in one transaction, is new and is called by `set_user_attrs` below).
OVERRIDDEN_WRITES = (
    "_create_new_trial",
    "_set_trial_param",
    "set_trial_intermediate_value",
    "set_trial_system_attr",
    "record_heartbeat",
)
# Every method that reaches the database, by the name Optuna's cache calls it by: each
# rides out outages (hpsearch.storage.retry). The stale-trial check waits after one.
DATABASE_METHODS = (
    *READ_METHODS,
    *OVERRIDDEN_WRITES,
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "create_new_trial",
    "set_trial_param",
    "set_trial_state_values",
    "set_trial_user_attr",
    "set_trial_user_attrs",
    "_get_best_trial_id",
)
STALE_CHECK = "_get_stale_trial_ids"


class SharedRDBStorage(_RDBStorage):
    """Optuna's RDBStorage, cheaper for several workers on one database.

    A trial writes many transactions (params, a report per epoch, user attrs, heartbeats,
    its end); on SQLite each holds the file's one write lock, so workers queue for it.
    Methods that only read begin DEFERRED transactions, which in WAL mode never wait for
    or hold the write lock. Optuna writes the frequent rows through ORM sessions that
    load the trial and compile a fresh statement each time, all inside the write lock;
    here each is a Core transaction of one state check and one upsert compiled once,
    and `set_trial_user_attrs` writes several user attrs in one transaction. Everything
    else is Optuna's."""

    retry_policy: RetryPolicy | None = None  # set by open_storage

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
        row = connection.execute(_statements().state_of_trial, {"trial_id": trial_id}).one_or_none()
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
                    _statements().earlier_distribution,
                    {"study_id": study_id, "param_name": param_name},
                ).scalar()
                if previous is not None:
                    previous_distribution = optuna.distributions.json_to_distribution(previous)
            if previous_distribution is not None:
                optuna.distributions.check_distribution_compatibility(
                    previous_distribution, distribution
                )
            connection.execute(
                _statements().insert_param,
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
        re-reads the trial for every key)."""
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
        ORM path does more inside the write lock. Other templates (`add_trial` of a
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
            study = connection.execute(_statements().study_for_update, {"study_id": study_id})
            if study.first() is None:
                raise KeyError(rdb_models.NOT_FOUND_MSG)
            count = connection.execute(_statements().count_trials, {"study_id": study_id})
            number = count.scalar_one()
            row = {"number": number, "study_id": study_id, "state": state}
            row |= {"datetime_start": start, "datetime_complete": None}
            trial_id = connection.execute(_statements().insert_trial, row).inserted_primary_key[0]
            if template_trial is None and self.heartbeat_interval is not None:
                # Beating from birth: a worker lost before its first heartbeat leaves a
                # trial that the stale check still fails and re-queues.
                connection.execute(self._upsert("heartbeat"), {"trial_id": trial_id})
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


for _name in READ_METHODS:
    if hasattr(_RDBStorage, _name):  # an untested Optuna may lack one; then it is unused
        setattr(SharedRDBStorage, _name, _reads_only(getattr(_RDBStorage, _name)))
ride_out_outages(SharedRDBStorage, DATABASE_METHODS, STALE_CHECK)


def _attr_rows(trial_id: int, attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
        for key, value in attrs.items()
    ]


_UPSERT_DIALECTS = {"sqlite": sqlite_dialect, "postgresql": postgresql_dialect}


@functools.cache
def _statements() -> SimpleNamespace:
    """The fast path's statements on Optuna's models, built once so that SQLAlchemy
    compiles each once."""
    trial, param, study = rdb_models.TrialModel, rdb_models.TrialParamModel, rdb_models.StudyModel
    return SimpleNamespace(
        state_of_trial=select(trial.state, trial.study_id)
        .where(trial.trial_id == bindparam("trial_id"))
        .with_for_update(),  # PostgreSQL: no state change until the write commits
        earlier_distribution=select(param.distribution_json)
        .join(trial)
        .where(
            trial.study_id == bindparam("study_id"),
            param.param_name == bindparam("param_name"),
        )
        .limit(1),
        insert_param=insert(param),
        insert_trial=insert(trial),
        study_for_update=select(study.study_id)
        .where(study.study_id == bindparam("study_id"))
        .with_for_update(),
        count_trials=select(func.count(trial.trial_id)).where(
            trial.study_id == bindparam("study_id")
        ),
    )


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


# -- the rest of Optuna's private names hpsearch reads, here so no other module does ---

# Loggers of Optuna's private modules: a trial's failure inside `study.optimize`, and the
# relational storage's SQL errors (hpsearch retries or raises them; not to be printed).
OPTIMIZE_LOGGER = "optuna.study._optimize"
RDB_LOGGER = "optuna.storages._rdb.storage"


def study_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes through (Optuna keeps it private)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The study's row id in its database (Optuna keeps it private)."""
    return study._study_id


def heartbeat_interval(study: optuna.Study) -> int | None:
    """The study's heartbeat interval in seconds, or None when its storage sends none."""
    interval = getattr(study._storage, "get_heartbeat_interval", None)
    return interval() if interval is not None else None


def startup_trials(pruner: optuna.pruners.MedianPruner) -> int:
    """How many completed trials the median pruner waits for before it prunes."""
    return pruner._n_startup_trials


def rdb_backend(study: optuna.Study) -> optuna.storages.RDBStorage | None:
    """The relational storage under a study (Optuna wraps it in a cache), or None."""
    storage = study._storage
    storage = getattr(storage, "_backend", storage)
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None
