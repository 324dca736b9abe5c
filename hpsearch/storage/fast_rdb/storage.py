"""`SharedRDBStorage`: Optuna's RDBStorage with its hot reads (a trial, the study's new
and unfinished trials) and hot writes (a trial's creation, parameters, a report per
epoch, attrs, its end, heartbeats) as SQLAlchemy Core statements compiled once, reads in
DEFERRED transactions on SQLite (workers sharing one file queue less for its write lock)
and in autocommit on PostgreSQL, where most writes are one statement (a round trip).
`version_gate` decides whether this Optuna gets it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import time
from collections.abc import Container, Iterator, Sequence
from datetime import datetime
from typing import Any

import optuna
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from hpsearch.storage.fast_rdb.methods import (
    DATABASE_METHODS,
    READ_METHODS,
    STALE_CHECK,
)
from hpsearch.storage.fast_rdb.names import rdb_models, with_trial_id
from hpsearch.storage.fast_rdb.reads import read_trial, read_trials
from hpsearch.storage.fast_rdb.statements import (
    SET_STATE_TIMES,
    UPSERT_DIALECTS,
    attr_rows,
    guarded_upsert,
    statements,
    to_stored,
    upsert_statement,
)
from hpsearch.storage.pool import read_connection
from hpsearch.storage.retry import RetryPolicy, ride_out_outages
from hpsearch.storage.sqlite_files import reading

_RDBStorage = optuna.storages.RDBStorage


def _reads_only(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with reading():
            return method(*args, **kwargs)

    return wrapper


STALE_CHECK_SECONDS = 1.0


class SharedRDBStorage(_RDBStorage):
    """Optuna's RDBStorage, cheaper for several workers on one database.

    A trial writes many transactions (params, a report per epoch, user attrs, heartbeats,
    its end); on SQLite each holds the file's one write lock, so workers queue for it.
    Methods that only read begin DEFERRED transactions, which in WAL mode never wait for
    or hold the write lock. Optuna writes the frequent rows through ORM sessions that
    load the trial and compile a fresh statement each time, all inside the write lock;
    here each is a Core transaction of one state check and one upsert compiled once (on
    PostgreSQL one statement with the check inside), and `set_trial_user_attrs` writes
    several user attrs together. Its reads build FrozenTrials from rows (`reads`), not
    from ORM objects. Everything else is Optuna's."""

    retry_policy: RetryPolicy | None = None  # set by open_storage

    @property
    def _core(self) -> bool:
        """Whether this database takes the Core paths below (others take Optuna's)."""
        return self.engine.name in UPSERT_DIALECTS

    def _upsert(self, kind: str) -> Any:
        return upsert_statement(self.engine.name, kind)

    @contextlib.contextmanager
    def _writing(self, one_statement: bool = False) -> Iterator[Any]:
        """A transaction; for `one_statement` on PostgreSQL, autocommit (the statement is
        its own transaction, without the BEGIN and COMMIT round trips)."""
        try:
            if one_statement and self._server:
                with self.engine.connect() as connection:
                    yield connection.execution_options(isolation_level="AUTOCOMMIT")
                return
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise optuna.exceptions.StorageInternalError(
                "an error occurred while writing to the storage"
            ) from exc

    @property
    def _server(self) -> bool:
        """PostgreSQL: every statement a round trip, and one statement its own
        transaction in autocommit; SQLite reads and writes a local file."""
        return self.engine.name == "postgresql"

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Any]:
        try:
            with read_connection(self.engine) as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise optuna.exceptions.StorageInternalError(
                "an error occurred while reading from the storage"
            ) from exc

    def get_trial(self, trial_id: int) -> optuna.trial.FrozenTrial:
        if not self._core:
            return super().get_trial(trial_id)
        with self._reading() as connection:
            return read_trial(connection, trial_id)

    def _get_trials(
        self,
        study_id: int,
        states: Container[optuna.trial.TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[optuna.trial.FrozenTrial]:
        """The read under every sampler's and pruner's look at the study (through
        Optuna's cache, which asks only for trials not finished when it last looked)."""
        if not self._core:
            return super()._get_trials(study_id, states, included_trial_ids, trial_id_greater_than)
        with self._reading() as connection:
            return read_trials(
                connection, study_id, states, included_trial_ids, trial_id_greater_than
            )

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna looks for dead workers' trials before every trial it runs. A trial is
        stale only after a grace of several heartbeats, so one look a second per process
        (STALE_CHECK_SECONDS) fails it at most a second later, for a query per trial."""
        checked = self.__dict__.setdefault("_stale_checked", {})
        now = time.monotonic()
        if now < checked.get(study_id, -math.inf) + STALE_CHECK_SECONDS:
            return []
        checked[study_id] = now
        return super()._get_stale_trial_ids(study_id)

    def _check_running(self, connection, trial_id: int) -> int:
        """Optuna's check that a trial may still change, from its state column alone;
        returns the trial's study id."""
        row = connection.execute(statements().state_of_trial, {"trial_id": trial_id}).one_or_none()
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
        with the study's earlier ones) and the insert, in one Core transaction; on
        PostgreSQL, when Optuna's cache knows the earlier distribution, in one
        statement."""
        if not self._core:
            super()._set_trial_param(
                trial_id, param_name, param_value_internal, distribution, previous_distribution
            )
            return
        distribution_json = optuna.distributions.distribution_to_json(distribution)
        if previous_distribution is not None and self._server:  # Optuna's cache knew it
            optuna.distributions.check_distribution_compatibility(
                previous_distribution, distribution
            )
            row = {"param_name": param_name, "param_value": param_value_internal}
            row |= {"distribution_json": distribution_json}
            self._upsert_if_live("param", trial_id, [row])
            return
        with self._writing() as connection:
            study_id = self._check_running(connection, trial_id)
            if previous_distribution is None:
                previous = connection.execute(
                    statements().earlier_distribution,
                    {"study_id": study_id, "param_name": param_name},
                ).scalar()
                if previous is not None:
                    previous_distribution = optuna.distributions.json_to_distribution(previous)
            if previous_distribution is not None:
                optuna.distributions.check_distribution_compatibility(
                    previous_distribution, distribution
                )
            row = {"trial_id": trial_id, "param_name": param_name}
            row |= {"param_value": param_value_internal, "distribution_json": distribution_json}
            connection.execute(self._upsert("param"), row)  # a second one ignored, as Optuna

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
        self._upsert_if_live("intermediate", trial_id, [row])

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
            self._upsert_if_live(kind, trial_id, attr_rows(trial_id, attrs))

    def _upsert_if_live(self, kind: str, trial_id: int, rows: list[dict[str, Any]]) -> None:
        """Upsert `rows` of `kind` for a trial that may still change, else raise as
        Optuna does. SQLite: the check and the upsert in one transaction. PostgreSQL: one
        statement in autocommit (`guarded_upsert`), a round trip instead of four; the
        check runs again only when it wrote nothing, to raise the right error."""
        if not self._server:
            with self._writing() as connection:
                self._check_running(connection, trial_id)
                connection.execute(self._upsert(kind), rows)
            return
        parameters = {"trial_id": trial_id}
        for i, row in enumerate(rows):
            parameters |= {f"{key}_{i}": value for key, value in row.items() if key != "trial_id"}
        with self._writing(one_statement=True) as connection:
            if not connection.execute(guarded_upsert(kind, len(rows)), parameters).all():
                self._check_running(connection, trial_id)  # raises: missing or finished
                if kind != "param":  # a parameter it had already is ignored, as Optuna does
                    raise RuntimeError(f"trial {trial_id} may change but took no {kind} rows")

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
            study = connection.execute(statements().study_for_update, {"study_id": study_id})
            if study.first() is None:
                raise KeyError(rdb_models.NOT_FOUND_MSG)
            count = connection.execute(statements().count_trials, {"study_id": study_id})
            number = count.scalar_one()
            row = {"number": number, "study_id": study_id, "state": state}
            row |= {"datetime_start": to_stored(start), "datetime_complete": None}
            trial_id = connection.execute(statements().insert_trial, row).inserted_primary_key[0]
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
                        connection.execute(self._upsert(kind), attr_rows(trial_id, attrs))
        if template_trial is not None:
            frozen = copy.deepcopy(template_trial)
            frozen.number, frozen.datetime_start = number, start
            return with_trial_id(frozen, trial_id)
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

    def set_trial_state_values(
        self,
        trial_id: int,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None = None,
    ) -> bool:
        """Optuna's end of a trial (or claim of a waiting one) in one Core transaction:
        the state check, the values' upsert and the state change."""
        if not self._core:
            return super().set_trial_state_values(trial_id, state, values)
        try:
            with self._writing() as connection:
                row = connection.execute(statements().state_of_trial, {"trial_id": trial_id})
                row = row.one_or_none()
                if row is None:
                    raise KeyError(rdb_models.NOT_FOUND_MSG)
                self.check_trial_is_updatable(trial_id, row.state)
                if values is not None:
                    to_stored_value = rdb_models.TrialValueModel.value_to_stored_repr
                    rows = [
                        {"trial_id": trial_id, "objective": i}
                        | dict(zip(("value", "value_type"), to_stored_value(v), strict=True))
                        for i, v in enumerate(values)
                    ]
                    connection.execute(self._upsert("value"), rows)
                running = state == optuna.trial.TrialState.RUNNING
                if running and row.state != optuna.trial.TrialState.WAITING:
                    return False  # another worker claimed it (values kept, as Optuna's)
                times = "running" if running else "finished" if state.is_finished() else "other"
                change = {"of_trial": trial_id, "new_state": state}
                now = to_stored(datetime.now())
                change |= {f"new_{time}": now for time in SET_STATE_TIMES[times]}
                connection.execute(getattr(statements(), f"set_state_{times}"), change)
                if running and self.heartbeat_interval is not None:
                    # A claimed trial (a dead worker's, re-queued) beats from its claim, as
                    # a new one from its birth: its worker may die before its first beat.
                    connection.execute(self._upsert("heartbeat"), {"trial_id": trial_id})
        except optuna.exceptions.StorageInternalError as error:
            if isinstance(error.__cause__, IntegrityError):
                return False
            raise
        return True

    def record_heartbeat(self, trial_id: int) -> None:
        if not self._core:
            super().record_heartbeat(trial_id)
            return
        with self._writing(one_statement=True) as connection:
            connection.execute(self._upsert("heartbeat"), {"trial_id": trial_id})


for _name in READ_METHODS:
    if hasattr(_RDBStorage, _name):  # an untested Optuna may lack one; then it is unused
        method = vars(SharedRDBStorage).get(_name, getattr(_RDBStorage, _name))
        setattr(SharedRDBStorage, _name, _reads_only(method))
ride_out_outages(SharedRDBStorage, DATABASE_METHODS, STALE_CHECK)
