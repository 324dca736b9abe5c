"""Optuna's two hot reads, `get_trial` and `_get_trials`, as SQLAlchemy Core queries
compiled once: the trials' rows, then all five kinds of their child rows in one
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
from sqlalchemy import (
    Float,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    literal,
    null,
    select,
    union_all,
)

from hpsearch.storage.fast_rdb.names import rdb_models, trial_id_of
from hpsearch.storage.fast_rdb.statements import from_stored

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
            t
            for t in trials
            if trial_id_of(t) in included or trial_id_of(t) > trial_id_greater_than
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
    children: dict[int, dict[str, list]] = {row.trial_id: {k: [] for k in CHILDREN} for row in rows}
    if mode == "listed":  # by the ids read: an OR of two id ranges would scan the study
        ids = sorted(children)
        chunks = [{"ids": ids[i : i + MAX_LISTED_IDS]} for i in range(0, len(ids), MAX_LISTED_IDS)]
    else:  # the trials the filter matches in any state (one may have changed since)
        chunks = [parameters]
    for chunk in chunks:
        for child in connection.execute(_children_statement(mode), chunk):
            if child.trial_id in children:
                children[child.trial_id][CHILDREN[child.kind]].append(child)
    return [_frozen(row, children[row.trial_id]) for row in rows]


def _frozen(trial: Any, rows: dict[str, list]) -> optuna.trial.FrozenTrial:
    """Optuna's `_build_frozen_trial_from_trial_model`, from rows."""
    models = rdb_models
    values: list[float] | None = None
    if rows["values"]:
        values = [0 for _ in rows["values"]]
        for value in rows["values"]:
            kind = models.TrialValueModel.TrialValueType[value.tag]
            values[value.position] = models.TrialValueModel.stored_repr_to_value(value.number, kind)
    params = rows["params"]  # in param_id order, as Optuna sorts them
    distributions = {p.name: _distribution(p.text) for p in params}
    reported = models.TrialIntermediateValueModel
    return optuna.trial.FrozenTrial(
        number=trial.number,
        state=trial.state,
        value=None,
        values=values,
        datetime_start=from_stored(trial.datetime_start),
        datetime_complete=from_stored(trial.datetime_complete),
        params={p.name: distributions[p.name].to_external_repr(p.number) for p in params},
        distributions=distributions,
        user_attrs={a.name: json.loads(a.text) for a in rows["user_attrs"]},
        system_attrs={a.name: json.loads(a.text) for a in rows["system_attrs"]},
        intermediate_values={
            v.position: reported.stored_repr_to_intermediate_value(
                v.number, reported.TrialIntermediateValueType[v.tag]
            )
            for v in rows["intermediate_values"]
        },
        trial_id=trial.trial_id,
    )


@functools.lru_cache(maxsize=4096)
def _distribution(text: str) -> optuna.distributions.BaseDistribution:
    """Parsed once per distinct JSON: a study's trials share a few distributions, and so
    do their FrozenTrials (one object each; Optuna's reading builds one per trial, and
    nothing changes a distribution in place)."""
    return optuna.distributions.json_to_distribution(text)


def _where(mode: str) -> list:
    trial = rdb_models.TrialModel
    if mode == "one":
        return [trial.trial_id == bindparam("trial_id")]
    where = [trial.study_id == bindparam("study_id")]
    if mode == "after":
        where.append(trial.trial_id > bindparam("after"))
    elif mode == "listed":
        where.append(trial.trial_id.in_(bindparam("ids", expanding=True)))
    return where


@functools.cache
def _trial_statement(mode: str, by_state: bool) -> Any:
    """The trials' own rows in id order. Listed trials and the ones after an id are two
    statements in one (each an index range; their OR would scan the study's trials)."""
    trial = rdb_models.TrialModel
    times = trial.__table__.c.datetime_start, trial.__table__.c.datetime_complete  # as stored
    columns = (trial.trial_id, trial.number, trial.state, *times)

    def where(mode: str) -> list:
        by = [trial.state.in_(bindparam("states", expanding=True))] if by_state else []
        return _where(mode) + by

    if mode != "listed":
        return select(*columns).where(*where(mode)).order_by(trial.trial_id)
    both = union_all(select(*columns).where(*where("after")), select(*columns).where(*where(mode)))
    both = both.subquery()
    return select(both).order_by(both.c.trial_id)


@functools.cache
def _children_statement(mode: str) -> Any:
    """Every child row of the trials in one statement, as (trial_id, kind, name,
    number, tag, text, position): params in id order (Optuna sorts them so), values by
    objective, attrs by key and reports by step (the order of their unique index, which
    Optuna's reading leaves to the database)."""
    models, trial = rdb_models, rdb_models.TrialModel

    def rows(kind: str, model: Any, name: Any, number: Any, tag: Any, text: Any, at: Any):
        statement = select(
            model.trial_id,
            literal(CHILDREN.index(kind), Integer).label("kind"),
            (name if name is not None else cast(null(), String)).label("name"),
            (number if number is not None else cast(null(), Float)).label("number"),
            (cast(tag, String) if tag is not None else cast(null(), String)).label("tag"),
            (text if text is not None else cast(null(), Text)).label("text"),
            (at if at is not None else cast(null(), Integer)).label("position"),
        )
        if mode == "one":
            return statement.where(model.trial_id == bindparam("trial_id"))
        if mode == "listed":
            return statement.where(model.trial_id.in_(bindparam("ids", expanding=True)))
        joined = statement.join_from(model, trial, model.trial_id == trial.trial_id)
        return joined.where(*_where(mode))

    param, value = models.TrialParamModel, models.TrialValueModel
    user, system = models.TrialUserAttributeModel, models.TrialSystemAttributeModel
    report = models.TrialIntermediateValueModel
    everything = union_all(
        rows(
            "params",
            param,
            param.param_name,
            param.param_value,
            None,
            param.distribution_json,
            param.param_id,
        ),
        rows("values", value, None, value.value, value.value_type, None, value.objective),
        rows("user_attrs", user, user.key, None, None, user.value_json, None),
        rows("system_attrs", system, system.key, None, None, system.value_json, None),
        rows(
            "intermediate_values",
            report,
            None,
            report.intermediate_value,
            report.intermediate_value_type,
            None,
            report.step,
        ),
    ).subquery()
    c = everything.c
    return select(everything).order_by(c.trial_id, c.kind, c.position, c.name)


@functools.cache
def _study_exists() -> Any:
    study = rdb_models.StudyModel
    return select(study.study_id).where(study.study_id == bindparam("study_id"))
