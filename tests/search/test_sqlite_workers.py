"""Several worker processes on one SQLite file: every trial claimed once, nothing locked,
the file intact afterwards."""

import sqlite3
import threading

import optuna
from optuna.trial import TrialState

from hpsearch.search.runner import run
from hpsearch.search.study import open_study
from hpsearch.storage import open_storage
from tests.support import tiny_spec


def test_four_workers_claim_each_enqueued_trial_once(tmp_path):
    """SQLite ignores SELECT ... FOR UPDATE, Optuna's guard when a worker claims a
    waiting trial: with deferred transactions two workers both ran one enqueued trial
    and the second failed with 'Cannot tell a COMPLETE trial'."""
    spec = tiny_spec(tmp_path, n_trials=24, start_at_defaults=False)
    study = open_study(spec, open_storage(spec.storage))
    for i in range(24):
        study.enqueue_trial({"lr": 0.1, "weight_decay": 1e-6, "init_scale": 0.5 + i / 24})
    result = run(spec, workers=4)
    trials = optuna.load_study(study_name=spec.name, storage=spec.storage).trials
    assert result.finished_now == 24
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 24
    assert sorted(t.params["init_scale"] for t in trials) == [0.5 + i / 24 for i in range(24)]
    with sqlite3.connect(tmp_path / "studies.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_workers_start_from_a_fork_server_while_another_thread_uses_sqlite(tmp_path):
    """Forking copies the locks other threads hold (SQLite's mutexes too): a worker
    forked while a thread of the parent was inside SQLite waited on one for ever. With
    other threads alive, workers come from a fork server instead, and still get the
    parent's data split and finish the study."""
    from hpsearch.search import runner

    spec = tiny_spec(tmp_path, n_trials=8, start_at_defaults=False)
    study = open_study(spec, open_storage(spec.storage))
    done = threading.Event()

    def read_all_the_time() -> None:
        while not done.wait(0.01):  # paced: reading flat out starved the workers' writes
            study.get_trials(deepcopy=False)

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        assert runner.start_method() == "forkserver"
        result = run(spec, workers=2)
    finally:
        done.set()
        reader.join()
    assert runner.start_method() == "fork"  # the parent's only thread again
    trials = optuna.load_study(study_name=spec.name, storage=spec.storage).trials
    assert result.finished_now == 8
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
