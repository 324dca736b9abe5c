"""The rest of Optuna's private names hpsearch reads (a study's storage and id, a trial's
id and cached copy, the median pruner's start-up count, two loggers), here so that no
module outside this package does.
"""

from __future__ import annotations

from typing import Any

import optuna

from hpsearch.storage.fast_rdb.storage import SharedRDBStorage


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
