"""Every private name of Optuna that hpsearch reads, in this one module: its relational
storage's ORM models (a private module, imported here only), a study's storage and id, a
trial's id and cached copy, the median pruner's start-up count, two loggers. The rest of
`fast_rdb` and hpsearch reach them through here; tests/test_fast_rdb.py and
tests/test_optuna_contract.py fail loudly when a release changes them.
"""

from __future__ import annotations

from typing import Any

import optuna

try:
    from optuna.storages._rdb import models as rdb_models
except ImportError:  # an Optuna that moved its models: the fast path stays off
    rdb_models = None
MODELS_FOUND = rdb_models is not None


def trial_id_of(trial: optuna.trial.FrozenTrial) -> int:
    """A FrozenTrial's row id in its database (Optuna keeps it private)."""
    return trial._trial_id


def with_trial_id(trial: optuna.trial.FrozenTrial, trial_id: int) -> optuna.trial.FrozenTrial:
    trial._trial_id = trial_id
    return trial


def set_user_attrs(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """`trial.set_user_attr` for each key, in one database transaction where the
    storage allows (hpsearch's `set_trial_user_attrs`; a trial's curves and diagnostics
    are stored together anyway)."""
    backend = rdb_backend(trial.study)
    if not hasattr(backend, "set_trial_user_attrs"):  # Optuna's own: one key at a time
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    backend.set_trial_user_attrs(trial._trial_id, attrs)
    trial._cached_frozen_trial.user_attrs.update(attrs)


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


def discard_session(storage: optuna.storages.BaseStorage) -> None:
    """Close this thread's ORM session of a relational storage, and the connections
    behind it. An interrupt inside a write leaves the session's transaction open (on
    SQLite with the write lock held); the session then refuses every later write, and
    the connection goes back to the pool still inside that transaction. Closing the
    connection is what rolls it back."""
    session = getattr(storage, "scoped_session", None)
    if session is not None:
        session.remove()
        storage.engine.dispose()


def rdb_backend(study: optuna.Study) -> optuna.storages.RDBStorage | None:
    """The relational storage under a study (Optuna wraps it in a cache), or None."""
    storage = study._storage
    storage = getattr(storage, "_backend", storage)
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None
