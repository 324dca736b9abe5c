"""Contracts with Optuna's private names that hpsearch reads (all in
hpsearch.storage.fast_rdb; the fast storage's own contract is in test_fast_rdb.py), and
with the public behaviours the reproducible search relies on (hpsearch.search.reproducible): each
fails loudly here, not slowly in a study, when an Optuna release changes them."""

import importlib

import optuna
import pytest
from sqlalchemy import event

from hpsearch.storage import (
    OPTIMIZE_LOGGER,
    RDB_LOGGER,
    discard_session,
    heartbeat_interval,
    open_storage,
    rdb_backend,
    startup_trials,
    study_storage,
)


def test_the_optimize_logger_is_the_one_optuna_reports_failed_trials_with():
    module = importlib.import_module(OPTIMIZE_LOGGER)
    assert module._logger.name == OPTIMIZE_LOGGER


def test_the_rdb_logger_is_the_one_optunas_storage_reports_sql_errors_with():
    module = importlib.import_module(RDB_LOGGER)
    assert module._logger.name == RDB_LOGGER


def test_the_median_pruners_start_up_count_is_read_back():
    assert startup_trials(optuna.pruners.MedianPruner(n_startup_trials=7)) == 7


def test_a_studys_storage_and_heartbeat_interval_are_read_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    beating = open_storage(url, heartbeat=2)
    study = optuna.create_study(storage=beating, study_name="h")
    # Optuna wraps a relational storage in its cache; the backend under it is ours.
    assert rdb_backend(study) is beating
    again = optuna.load_study(study_name="h", storage=study_storage(study))
    assert again._study_id == study._study_id
    assert heartbeat_interval(study) == 2
    silent = optuna.load_study(study_name="h", storage=optuna.storages.RDBStorage(url))
    assert heartbeat_interval(silent) is None


def test_a_write_interrupted_in_its_commit_is_discarded_with_its_transaction(tmp_path):
    """What Ctrl-C inside a commit leaves: the session's connection inside a transaction
    that holds SQLite's write lock. Discarded, the next write of the same storage goes
    through, and the interrupted one is not there."""
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")

    def interrupt(connection) -> None:
        event.remove(storage.engine, "commit", interrupt)
        raise KeyboardInterrupt

    event.listen(storage.engine, "commit", interrupt)
    with pytest.raises(KeyboardInterrupt):
        storage.set_study_user_attr(study_id, "interrupted", 1)
    discard_session(storage)
    storage.set_study_user_attr(study_id, "after", 1)
    assert storage.get_study_user_attrs(study_id) == {"after": 1}


# What the reproducible search (hpsearch.search.reproducible) relies on, with public names only.


def test_relative_sampling_waits_for_the_first_suggest_not_ask():
    """The lag gate runs inside the objective, after `ask`: a sampler that sampled at
    `ask` would wait there, before the trial can fail cleanly."""
    calls = []

    class Recording(optuna.samplers.RandomSampler):
        def infer_relative_search_space(self, study, trial):
            calls.append(trial.number)
            return super().infer_relative_search_space(study, trial)

    study = optuna.create_study(sampler=Recording(seed=0))
    trial = study.ask()
    assert calls == []
    trial.suggest_float("x", 0.0, 1.0)
    assert calls == [0]


def test_optunas_own_retry_and_hpsearchs_repeat_name_the_slots_first_trial():
    import warnings

    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    from hpsearch.search.reproducible import slots

    study = optuna.create_study()
    first = study.ask()
    first.suggest_float("x", 0.0, 1.0)
    study.tell(first, state=TrialState.FAIL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback(max_retry=None)(study, study.trials[0])
        retry = study.trials[1]
        assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == 0
    assert retry.state == TrialState.WAITING and retry.params == first.params
    assert slots(study.trials) == {0: 0, 1: 0}
