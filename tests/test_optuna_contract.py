"""Contracts with Optuna's private names that hpsearch reads (all in hpsearch.storage.fast_rdb;
the fast storage's own contract is in test_fast_rdb.py):
each fails loudly here, not slowly in a study, when an Optuna release changes them."""

import importlib

import optuna

from hpsearch.storage import (
    OPTIMIZE_LOGGER,
    RDB_LOGGER,
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
