"""Retrying a database that cannot be reached: what counts as unreachable, the backoff,
the one line per retry, the limit, and the stale-trial check held back after an outage."""

import logging
import time
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from hpsearch.storage.retry import RetryPolicy, StorageUnavailable, unreachable_reason


def refused() -> OperationalError:
    return OperationalError(
        "SELECT 1", {}, Exception('connection to server at "127.0.0.1" failed: Connection refused')
    )


def flaky(failures: int, error=refused):
    calls = []

    def operation(value):
        calls.append(value)
        if len(calls) <= failures:
            raise error()
        return value * 2

    return operation, calls


def test_connection_errors_are_unreachable_and_others_are_not():
    assert unreachable_reason(refused()) == "connection refused"
    shutting = OperationalError("x", {}, Exception("FATAL: the database system is shutting down"))
    assert unreachable_reason(shutting) == "server shutting down"
    try:  # wrapped, as Optuna wraps it
        try:
            raise shutting
        except OperationalError as inner:
            raise RuntimeError("an error occurred while writing to the storage") from inner
    except RuntimeError as outer:
        assert unreachable_reason(outer) == "server shutting down"
    assert unreachable_reason(IntegrityError("x", {}, Exception("duplicate key"))) is None
    assert unreachable_reason(OperationalError("x", {}, Exception("no such table: trials"))) is None
    assert unreachable_reason(ValueError("connection refused")) is None  # not a driver's


def test_a_transient_failure_is_retried_with_growing_pauses_and_one_line_each(caplog):
    pauses = []
    policy = RetryPolicy(retry_for=60, sleep=pauses.append)
    operation, calls = flaky(failures=3)
    with caplog.at_level(logging.WARNING, logger="hpsearch.storage.retry"):
        assert policy.call(operation, 21) == 42
    assert calls == [21] * 4
    assert len(pauses) == 3 and pauses[0] < pauses[1] < pauses[2] <= 8.0 * 1.25
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4 and lines[-1] == "database reachable again"
    assert all(
        line.startswith("database unreachable (connection refused); retrying in ")
        for line in lines[:3]
    )
    assert "giving up at" in lines[0]
    assert policy.recovered_within(60)


def test_other_errors_fail_at_once():
    policy = RetryPolicy(retry_for=60, sleep=lambda _: pytest.fail("no retry expected"))
    operation, calls = flaky(failures=1, error=lambda: IntegrityError("x", {}, Exception("dup")))
    with pytest.raises(IntegrityError):
        policy.call(operation, 1)
    assert calls == [1] and not policy.recovered_within(60)


def test_past_the_limit_one_clear_error_and_the_run_is_over():
    pauses = []
    policy = RetryPolicy(retry_for=0.05, sleep=lambda s: (pauses.append(s), time.sleep(s)))
    operation, calls = flaky(failures=100)
    with pytest.raises(StorageUnavailable, match=r"unreachable \(connection refused\)") as error:
        policy.call(operation, 1)
    assert "\n" not in str(error.value) and "run the same command" in str(error.value)
    assert pauses and sum(pauses) <= 0.05 + 1e-9
    # Optuna then fails the trial through more calls: each tries once, no new wait.
    pauses.clear()
    with pytest.raises(StorageUnavailable):
        policy.call(operation, 2)
    assert pauses == [] and calls[-1] == 2
    working, _ = flaky(failures=0)
    assert policy.call(working, 3) == 6  # what works still works


def test_a_stop_request_ends_the_waiting_at_once():
    policy = RetryPolicy(retry_for=60, sleep=lambda _: pytest.fail("no wait expected"))
    policy.stop_requested = lambda: True
    operation, calls = flaky(failures=100)
    with pytest.raises(StorageUnavailable, match="stopped while the database was unreachable"):
        policy.call(operation, 1)
    assert calls == [1]


def test_a_trials_end_written_again_after_a_dropped_connection_is_not_an_error():
    """The first try committed, the connection dropped before the answer: the retry
    finds the trial finished in the state asked for, which is success."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    from hpsearch.storage.retry import retry_methods

    class Storage:
        retry_policy = RetryPolicy(retry_for=60, sleep=lambda _: None)
        engine = SimpleNamespace(name="postgresql")
        state, tries = TrialState.RUNNING, 0

        def set_trial_state_values(self, trial_id, state, values=None):
            self.tries += 1
            if self.state != TrialState.RUNNING:
                raise UpdateFinishedTrialError("finished")
            self.state = state
            if self.tries == 1:
                raise OperationalError("x", {}, Exception("server closed the connection"))
            return True

        def get_trial(self, trial_id):
            return SimpleNamespace(state=self.state)

    retry_methods(Storage, ("set_trial_state_values",))
    storage = Storage()
    assert storage.set_trial_state_values(7, state=TrialState.COMPLETE) is True
    assert storage.tries == 2 and storage.state == TrialState.COMPLETE
    with pytest.raises(UpdateFinishedTrialError):  # without a retry it is a real error
        storage.set_trial_state_values(7, state=TrialState.FAIL)


def test_a_full_or_read_only_sqlite_file_is_named_in_one_line(tmp_path):
    import sqlite3

    from hpsearch.storage.retry import disk_error, disk_problem

    assert disk_problem(sqlite3.OperationalError("database or disk is full")) == "disk full"
    assert disk_problem(sqlite3.OperationalError("attempt to write a readonly database")) == (
        "read-only database"
    )
    assert disk_problem(sqlite3.OperationalError("no such table: trials")) is None
    message = str(disk_error("disk full", str(tmp_path / "s.db")))
    assert message.startswith(f"disk full: {tmp_path / 's.db'} (") and "bytes free)" in message
    assert "free space and run the same command to continue" in message
    assert "make it writable" in str(disk_error("read-only database", str(tmp_path / "s.db")))


def test_nested_calls_retry_once_at_the_outermost():
    pauses = []
    policy = RetryPolicy(retry_for=60, sleep=pauses.append)
    inner, inner_calls = flaky(failures=1)
    assert policy.call(lambda v: policy.call(inner, v), 5) == 10
    assert len(inner_calls) == 2 and len(pauses) == 1


def test_a_policy_stays_in_its_process():
    """Each process opens its storage and gets its own policy (a copied one would carry
    one jitter stream into every worker)."""
    import pickle

    with pytest.raises(TypeError, match="belongs to one process"):
        pickle.dumps(RetryPolicy())


def test_the_spec_sets_the_retry_limit_and_refuses_a_negative_one():
    from hpsearch.spec import SpecError, loads

    assert loads("[search]\nretry_for = 90").search.retry_for == 90.0
    assert loads("").search.retry_for == 300.0
    with pytest.raises(SpecError, match=r"search.retry_for: must be >= 0 seconds"):
        loads("[search]\nretry_for = -1")


def test_a_workers_study_lookups_keep_its_retry_limit(tmp_path, monkeypatch):
    """`hpsearch worker --retry-for 3s` holds between studies too, where it reads the
    stored specs, not only inside a run."""
    from hpsearch.search import distributed
    from hpsearch.storage import studies
    from tests.support import tiny_spec

    spec = tiny_spec(tmp_path, n_trials=1)
    distributed.submit(spec)
    limits = []

    def recording(open_storage):
        def opened(url, **kwargs):
            limits.append(kwargs.get("retry_for"))
            return open_storage(url, **kwargs)

        return opened

    monkeypatch.setattr(studies, "open_storage", recording(studies.open_storage))
    monkeypatch.setattr(distributed, "open_storage", recording(distributed.open_storage))
    for name in (spec.name, None):  # one study, or every study of the database
        found = list(distributed._specs_with_budget(spec.storage, name, 3.0, ()))
        assert [s.name for s in found] == [spec.name]
    assert limits == [3.0, 3.0]
