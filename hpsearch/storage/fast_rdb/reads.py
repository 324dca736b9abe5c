"""Optuna's two hot reads, `get_trial` and `_get_trials`, as SQLAlchemy Core queries
compiled once: the trials' rows, then each of their five kinds of child rows in one
query, built into the FrozenTrials Optuna's own ORM reading builds
(tests/test_fast_rdb.py compares the two on every kind of row).

Optuna's reading creates an ORM object for every row it loads, which costs several
times the queries themselves; a sampler or pruner reads the study at every trial.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Container, Iterable
from typing import Any

import optuna
from sqlalchemy import bindparam, or_, select

from hpsearch.storage.fast_rdb.statements import from_stored, rdb_models

# More trial ids than this in one IN list: read the study's trials after the others
# and keep the asked-for ones in Python (Optuna falls back the same way when a
# database refuses a long IN list).
MAX_LISTED_IDS = 500
CHILDREN = ("params", "values", "user_attrs", "system_attrs", "intermediate_values")


def read_trial(connection: Any, trial_id: int) -> optuna.trial.FrozenTrial:
    """The trial with this id, as `RDBStorage.get_trial` reads it."""
    trials = _read(connection, "one", False, {"trial_id": trial_id})
    if not trials:
        raise KeyError(rdb_models.NOT_FOUND_MSG)
    return trials[0]


def read_trials(
    connection: Any,
    study_id: int,
    states: Container[optuna.trial.TrialState] | None,
    included_trial_ids: set[int],
    trial_id_greater_than: int,
) -> list[optuna.trial.FrozenTrial]:
    """The study's trials in `states` (all when None) whose id is above
    `trial_id_greater_than` or in `included_trial_ids`, in id order, as
    `RDBStorage._get_trials` reads them; KeyError when the study does not exist."""
    included = {i for i in included_trial_ids if i <= trial_id_greater_than}
    listed = bool(included) and trial_id_greater_than > -1 and len(included) <= MAX_LISTED_IDS
    mode = (
        "listed" if listed else "after" if trial_id_greater_than > -1 and not included else "study"
    )
    parameters: dict[str, Any] = {"study_id": study_id, "after": trial_id_greater_than}
    if listed:
        parameters["ids"] = sorted(included)
    if states is not None:
        assert isinstance(states, Iterable)
        parameters["states"] = list(states)
    trials = _read(connection, mode, states is not None, parameters)
    if mode == "study" and trial_id_greater_than > -1:  # too many ids to list
        trials = [
            t for t in trials if t._trial_id in included or t._trial_id > trial_id_greater_than
        ]
    if not trials and connection.execute(_study_exists(), parameters).first() is None:
        raise KeyError(rdb_models.NOT_FOUND_MSG)
    return trials


def _read(
    connection: Any, mode: str, by_state: bool, parameters: dict[str, Any]
) -> list[optuna.trial.FrozenTrial]:
    rows = connection.execute(_trial_statement(mode, by_state), parameters).all()
    if not rows:
        return []
    children: dict[str, dict[int, list]] = {kind: {} for kind in CHILDREN}
    for kind in CHILDREN:
        # Children of every trial the filter matches in any state (a trial may change
        # state between two statements on PostgreSQL): the ones of unread trials are
        # left over.
        for row in connection.execute(_child_statement(kind, mode), parameters):
            children[kind].setdefault(row.trial_id, []).append(row)
    return [
        _frozen(row, {kind: children[kind].get(row.trial_id, ()) for kind in CHILDREN})
        for row in rows
    ]


def _frozen(trial: Any, rows: dict[str, Any]) -> optuna.trial.FrozenTrial:
    """Optuna's `_build_frozen_trial_from_trial_model`, from rows."""
    models = rdb_models
    values: list[float] | None = None
    if rows["values"]:
        values = [0 for _ in rows["values"]]
        for value in rows["values"]:
            values[value.objective] = models.TrialValueModel.stored_repr_to_value(
                value.value, value.value_type
            )
    params = rows["params"]  # in param_id order, as Optuna sorts them
    distributions = {p.param_name: _distribution(p.distribution_json) for p in params}
    to_value = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value
    return optuna.trial.FrozenTrial(
        number=trial.number,
        state=trial.state,
        value=None,
        values=values,
        datetime_start=from_stored(trial.datetime_start),
        datetime_complete=from_stored(trial.datetime_complete),
        params={
            p.param_name: distributions[p.param_name].to_external_repr(p.param_value)
            for p in params
        },
        distributions=distributions,
        user_attrs={a.key: json.loads(a.value_json) for a in rows["user_attrs"]},
        system_attrs={a.key: json.loads(a.value_json) for a in rows["system_attrs"]},
        intermediate_values={
            v.step: to_value(v.intermediate_value, v.intermediate_value_type)
            for v in rows["intermediate_values"]
        },
        trial_id=trial.trial_id,
    )


@functools.lru_cache(maxsize=4096)
def _distribution(text: str) -> optuna.distributions.BaseDistribution:
    """Parsed once per distinct JSON: a study's trials share a few distributions."""
    return optuna.distributions.json_to_distribution(text)


def _where(mode: str) -> list:
    trial = rdb_models.TrialModel
    if mode == "one":
        return [trial.trial_id == bindparam("trial_id")]
    where = [trial.study_id == bindparam("study_id")]
    if mode == "after":
        where.append(trial.trial_id > bindparam("after"))
    elif mode == "listed":
        listed = trial.trial_id.in_(bindparam("ids", expanding=True))
        where.append(or_(listed, trial.trial_id > bindparam("after")))
    return where


@functools.cache
def _trial_statement(mode: str, by_state: bool) -> Any:
    trial = rdb_models.TrialModel
    where = _where(mode)
    if by_state:
        where.append(trial.state.in_(bindparam("states", expanding=True)))
    times = trial.__table__.c.datetime_start, trial.__table__.c.datetime_complete  # as stored
    columns = (trial.trial_id, trial.number, trial.state, *times)
    return select(*columns).where(*where).order_by(trial.trial_id)


@functools.cache
def _child_statement(kind: str, mode: str) -> Any:
    """Params in id order (Optuna sorts them so); attrs by key and reports by step (the
    order of their unique index, which Optuna's reading leaves to the database)."""
    models, trial = rdb_models, rdb_models.TrialModel
    model, columns, order = {
        "params": (
            models.TrialParamModel,
            ("param_name", "param_value", "distribution_json"),
            "param_id",
        ),
        "values": (models.TrialValueModel, ("objective", "value", "value_type"), "objective"),
        "user_attrs": (models.TrialUserAttributeModel, ("key", "value_json"), "key"),
        "system_attrs": (models.TrialSystemAttributeModel, ("key", "value_json"), "key"),
        "intermediate_values": (
            models.TrialIntermediateValueModel,
            ("step", "intermediate_value", "intermediate_value_type"),
            "step",
        ),
    }[kind]
    statement = select(model.trial_id, *(getattr(model, c) for c in columns))
    if mode == "one":
        where = [model.trial_id == bindparam("trial_id")]
    else:
        statement = statement.join_from(model, trial, model.trial_id == trial.trial_id)
        where = _where(mode)
    return statement.where(*where).order_by(model.trial_id, getattr(model, order))


@functools.cache
def _study_exists() -> Any:
    study = rdb_models.StudyModel
    return select(study.study_id).where(study.study_id == bindparam("study_id"))
