"""Retrying a database that cannot be reached: what counts as unreachable, the backoff,
the one line per retry, the limit, and the stale-trial check held back after an outage."""

import logging
import time

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


def test_past_the_limit_one_clear_error_and_no_second_wait():
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
    assert policy.call(working, 3) == 6 and not policy.gave_up  # back: full retries again


def test_nested_calls_retry_once_at_the_outermost():
    pauses = []
    policy = RetryPolicy(retry_for=60, sleep=pauses.append)
    inner, inner_calls = flaky(failures=1)
    assert policy.call(lambda v: policy.call(inner, v), 5) == 10
    assert len(inner_calls) == 2 and len(pauses) == 1


def test_a_policy_travels_to_worker_processes():
    import pickle

    policy = RetryPolicy(retry_for=12)
    again = pickle.loads(pickle.dumps(policy))
    assert again.retry_for == 12 and again.call(lambda: 3) == 3


def test_the_spec_sets_the_retry_limit_and_refuses_a_negative_one():
    from hpsearch.spec import SpecError, loads

    assert loads("[search]\nretry_for = 90").search.retry_for == 90.0
    assert loads("").search.retry_for == 300.0
    with pytest.raises(SpecError, match=r"search.retry_for: must be >= 0 seconds"):
        loads("[search]\nretry_for = -1")
