"""The fast relational storage (hpsearch.storage.fast_rdb) against plain Optuna: what it
writes reads back as Optuna's own writes do, its hot writes keep Optuna's checks, and
queries written against Optuna's tables agree with Optuna's reading of them."""

import collections
import concurrent.futures
import datetime
import inspect
import logging
import math
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.samplers import RandomSampler
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from hpsearch.search.runner import run
from hpsearch.search.study import open_study
from hpsearch.spec import with_overrides
from hpsearch.storage import (
    SharedRDBStorage,
    count_live_trials,
    open_storage,
    queries,
    running_curves,
    set_user_attrs,
)
from hpsearch.storage.fast_rdb import (
    DATABASE_METHODS,
    OVERRIDDEN_READS,
    OVERRIDDEN_WRITES,
    READ_METHODS,
    STALE_CHECK,
    rdb_backend,
    reads,
)
from hpsearch.storage.fast_rdb import storage as fast_storage
from hpsearch.storage.version_gate import FAST_PATH_VARIABLE, PlainRDBStorage
from tests.support import tiny_spec


@pytest.fixture(autouse=True)
def fast_path(monkeypatch):
    """These tests are about the fast path: on, whatever the environment says."""
    monkeypatch.delenv(FAST_PATH_VARIABLE, raising=False)


def plain_trials(spec):
    """The study as plain Optuna sees it, not through hpsearch."""
    return optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()


def test_open_storage_gives_the_fast_path_on_this_optuna(database_url):
    assert type(open_storage(database_url)) is SharedRDBStorage


def test_user_attrs_are_written_together_and_overwritten_like_optunas(tmp_path, database_url):

    spec = with_overrides(
        tiny_spec(tmp_path, n_trials=1, start_at_defaults=False), storage=database_url
    )
    study = open_study(spec, open_storage(spec.storage))
    trial = study.ask()
    set_user_attrs(trial, {"curve": [0.1, float("inf")], "note": "first", "n": 3})
    set_user_attrs(trial, {"note": "second", "extra": {"a": [1, 2]}})
    study.tell(trial, 0.5)
    stored = plain_trials(spec)[-1].user_attrs
    assert stored == {
        "curve": [0.1, float("inf")],
        "note": "second",
        "n": 3,
        "extra": {"a": [1, 2]},
    }
    with pytest.raises(RuntimeError, match="finished"):
        set_user_attrs(trial, {"late": True})  # a finished trial is never changed


def test_reports_are_stored_as_optuna_reads_them(tmp_path, database_url):
    """SharedRDBStorage writes a report with one upsert; plain Optuna reads back the
    same values, infinities and NaN included, and a finished trial refuses reports."""

    spec = with_overrides(
        tiny_spec(tmp_path, n_trials=1, start_at_defaults=False), storage=database_url
    )
    storage = open_storage(spec.storage)
    study = open_study(spec, storage)
    trial = study.ask()
    for step, value in enumerate([0.25, float("inf"), float("-inf"), float("nan"), 0.5], 1):
        storage.set_trial_intermediate_value(trial._trial_id, step, value)
    storage.set_trial_intermediate_value(trial._trial_id, 5, 0.75)  # a step written again
    study.tell(trial, 0.75)
    stored = plain_trials(spec)[-1].intermediate_values
    assert stored[1] == 0.25 and stored[2] == float("inf") and stored[3] == float("-inf")
    assert math.isnan(stored[4]) and stored[5] == 0.75 and len(stored) == 5
    with pytest.raises(RuntimeError, match="finished"):
        storage.set_trial_intermediate_value(trial._trial_id, 6, 0.1)
    with pytest.raises(KeyError):
        storage.set_trial_intermediate_value(10_000, 1, 0.1)


def test_params_and_system_attrs_are_stored_as_optuna_reads_them(tmp_path, database_url):
    """SharedRDBStorage's own paths for parameters and system attrs keep Optuna's
    checks: one distribution per parameter name in a study, no change to a finished
    trial."""

    study = optuna.create_study(storage=open_storage(database_url), direction="maximize")
    first = study.ask()
    x = first.suggest_float("x", 1e-3, 1.0, log=True)
    first.storage.set_trial_system_attr(first._trial_id, "note", {"a": [1, 2]})
    first.storage.set_trial_system_attr(first._trial_id, "note", "again")
    study.tell(first, 0.5)
    # Another worker's storage: the earlier distribution comes from the database.
    elsewhere = optuna.load_study(study_name=study.study_name, storage=open_storage(database_url))
    second = elsewhere.ask()
    with pytest.raises(ValueError, match="log"):
        second.suggest_float("x", 1e-3, 1.0)  # the same name on another scale
    assert second.suggest_float("x", 1e-3, 1.0, log=True) > 0
    with pytest.raises(RuntimeError, match="finished"):
        first.storage.set_trial_system_attr(first._trial_id, "late", True)
    with pytest.raises(RuntimeError, match="finished"):
        first.storage.set_trial_param(first._trial_id, "y", 0.5, FloatDistribution(0, 1))
    plain = optuna.load_study(study_name=study.study_name, storage=database_url).trials[0]
    assert plain.params == {"x": x} and plain.system_attrs["note"] == "again"


def test_new_and_enqueued_trials_are_numbered_and_stored_as_optuna_reads_them(database_url):
    """SharedRDBStorage creates asked and enqueued trials itself; plain Optuna reads
    the same numbers, states, start times and enqueued parameters, and a worker of
    its own runs the enqueued trial."""

    study = optuna.create_study(storage=open_storage(database_url), direction="maximize")
    asked = study.ask()
    study.enqueue_trial({"x": 0.25}, user_attrs={"why": "replay"})
    again = study.ask()  # takes the enqueued trial
    study.enqueue_trial({"x": 0.75})
    fresh = study.ask()  # takes the second one
    newest = study.ask()
    assert [t.number for t in (asked, again, fresh, newest)] == [0, 1, 2, 3]
    assert again.suggest_float("x", 0, 1) == 0.25 and fresh.suggest_float("x", 0, 1) == 0.75
    plain = optuna.load_study(study_name=study.study_name, storage=database_url)
    trials = plain.get_trials(deepcopy=False)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert [t.state for t in trials] == [TrialState.RUNNING] * 4
    assert trials[1].user_attrs == {"why": "replay"}
    assert trials[1].system_attrs["fixed_params"] == {"x": 0.25}
    assert all(t.datetime_start is not None for t in trials)
    plain.enqueue_trial({"x": 0.5})
    plain.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert plain.trials[-1].value == 0.5 and plain.trials[-1].number == 4


def test_heartbeats_are_one_row_per_trial_and_make_silent_trials_stale(database_url):
    """SharedRDBStorage writes heartbeats with one upsert stamped by the database's
    clock; Optuna's own stale-trial check reads them and fails a silent trial."""

    storage = open_storage(database_url, heartbeat=1)  # grace: 3 s
    study = optuna.create_study(storage=storage, direction="maximize")
    silent, beating = study.ask(), study.ask()
    storage.record_heartbeat(silent._trial_id)
    storage.record_heartbeat(beating._trial_id)
    first = {row.trial_id: row.heartbeat for row in _heartbeats(storage)}
    # Wait, with a deadline, for the silent trial to go stale while the other beats on.
    deadline = time.monotonic() + 20
    while True:
        storage.record_heartbeat(beating._trial_id)
        optuna.storages.fail_stale_trials(study)
        states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
        if states[silent.number] == TrialState.FAIL:
            break
        assert time.monotonic() < deadline, "the silent trial never went stale"
        time.sleep(0.2)  # poll
    assert states[beating.number] == TrialState.RUNNING
    rows = _heartbeats(storage)
    assert len(rows) == 2  # overwritten, not added
    assert {r.trial_id: r.heartbeat for r in rows}[beating._trial_id] > first[beating._trial_id]


def test_a_new_trial_beats_from_birth(database_url):
    """A worker lost between creating its trial and its first heartbeat still leaves a
    trial that the stale check can fail and re-queue."""
    beating = open_storage(database_url, heartbeat=1)
    trial = optuna.create_study(study_name="b", storage=beating).ask()
    assert [row.trial_id for row in _heartbeats(beating)] == [trial._trial_id]
    silent = open_storage(database_url, heartbeat=None)
    optuna.create_study(study_name="s", storage=silent).ask()
    assert len(_heartbeats(silent)) == 1  # no heartbeats, no row


def test_a_claimed_waiting_trial_beats_from_its_claim(database_url):
    """A dead worker's trial, re-queued with its parameters, is claimed by another
    worker: it has a heartbeat row from the claim, so if that worker dies too before its
    first beat the stale check still fails it (no trial is left RUNNING for ever)."""
    beating = open_storage(database_url, heartbeat=1)
    study = optuna.create_study(study_name="claimed", storage=beating)
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0.0, 1.0)},
        )
    )
    waiting = study.trials[0]._trial_id
    assert waiting not in [row.trial_id for row in _heartbeats(beating)]  # Optuna's path
    assert study.ask()._trial_id == waiting
    assert waiting in [row.trial_id for row in _heartbeats(beating)]


def test_the_stale_check_queries_at_most_once_a_second(tmp_path, monkeypatch):
    storage = open_storage(f"sqlite:///{tmp_path / 'stale.db'}", heartbeat=1)
    study = optuna.create_study(storage=storage)
    queries = []

    def counted(self, study_id):
        queries.append(study_id)
        return []

    monkeypatch.setattr(RDBStorage, "_get_stale_trial_ids", counted)
    for _ in range(3):
        optuna.storages.fail_stale_trials(study)
    assert len(queries) == 1
    monkeypatch.setattr(fast_storage, "STALE_CHECK_SECONDS", 0.0)
    optuna.storages.fail_stale_trials(study)
    assert len(queries) == 2


def _heartbeats(storage) -> list:
    from sqlalchemy import text

    with storage.engine.connect() as connection:
        return connection.execute(text("SELECT trial_id, heartbeat FROM trial_heartbeats")).all()


# -- contract: fail loudly, here, when an Optuna release changes what the fast path uses --


def test_every_overridden_method_keeps_optunas_signature():
    """A changed signature would kill every study with a TypeError: caught here."""

    def shape(function):
        return [
            (p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()
        ]

    for name in OVERRIDDEN_WRITES:
        assert name in vars(SharedRDBStorage), f"{name} is no longer overridden"
        ours, optunas = getattr(SharedRDBStorage, name), getattr(RDBStorage, name)
        assert shape(ours) == shape(optunas), f"{name}: Optuna's signature changed"
    for name in OVERRIDDEN_READS:
        assert name in READ_METHODS and name in vars(SharedRDBStorage)
        ours, optunas = inspect.unwrap(getattr(SharedRDBStorage, name)), getattr(RDBStorage, name)
        assert shape(ours) == shape(optunas), f"{name}: Optuna's signature changed"
    for name in READ_METHODS:
        assert hasattr(RDBStorage, name), f"Optuna's RDBStorage has no {name} any more"
        if name not in OVERRIDDEN_READS:
            assert inspect.unwrap(getattr(SharedRDBStorage, name)) is getattr(RDBStorage, name)
    assert len(set(DATABASE_METHODS)) == len(DATABASE_METHODS)  # each retried once, not nested
    for name in (*DATABASE_METHODS, STALE_CHECK):  # the methods that ride out outages
        assert hasattr(getattr(SharedRDBStorage, name), "__wrapped__"), f"{name} not retried"
        if name != "set_trial_user_attrs":  # the fast path's own
            assert hasattr(getattr(PlainRDBStorage, name), "__wrapped__"), f"{name} not retried"


def _routes_not_taken(storage: SharedRDBStorage) -> list[str]:
    """The fast path's methods that a study driven through Optuna's public API never
    called: Optuna's storage cache would have gone around them (slower, silently)."""
    calls = collections.Counter()
    routes = (*OVERRIDDEN_WRITES, *OVERRIDDEN_READS)

    def counting(name: str, original):
        def call(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        return call

    for name in routes:  # on the instance: the class stays as it is
        setattr(storage, name, counting(name, getattr(storage, name)))
    study = optuna.create_study(storage=storage, direction="maximize")
    study.enqueue_trial({"x": 0.5})

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x, 1)
        return x

    study.optimize(objective, n_trials=2)  # heartbeats beat through the cache too
    trial = study.ask()
    trial.storage.set_trial_system_attr(trial._trial_id, "note", 1)
    study.tell(trial, 0.1)
    assert len(study.get_trials()) == 3
    return [name for name in routes if calls[name] == 0]


def test_optunas_cache_routes_every_hot_write_through_the_fast_path(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'r.db'}", heartbeat=1)
    assert _routes_not_taken(storage) == []


def test_the_route_check_fails_when_a_route_is_disabled(tmp_path, monkeypatch):
    """The check above can fail: an Optuna whose cache wrote reports around the fast
    path (here: patched to call RDBStorage's own method) is caught."""
    cache = optuna.storages._cached_storage._CachedStorage

    def around(self, trial_id, step, intermediate_value):
        RDBStorage.set_trial_intermediate_value(self._backend, trial_id, step, intermediate_value)

    monkeypatch.setattr(cache, "set_trial_intermediate_value", around)
    storage = open_storage(f"sqlite:///{tmp_path / 'r.db'}", heartbeat=1)
    assert _routes_not_taken(storage) == ["set_trial_intermediate_value"]


def _write(study: optuna.Study) -> None:
    """The same trials, whatever storage is under `study`: every kind of hot write,
    every end state, values that are not finite."""
    study.enqueue_trial({"x": 0.25}, user_attrs={"why": "start"})
    for i in range(4):
        trial = study.ask()
        x = trial.suggest_float("x", 1e-3, 1.0, log=True)
        trial.suggest_int("n", 1, 8)
        trial.suggest_categorical("c", ["a", "b"])
        for step, value in enumerate([x, math.inf, -math.inf, math.nan][: i + 1], 1):
            trial.report(value, step)
        set_user_attrs(trial, {"curve": [x, 0.5], "i": i})
        trial.storage.set_trial_system_attr(trial._trial_id, "note", {"i": i})
        if i < 3:
            study.tell(trial, x if i == 0 else None, state=list(TrialState)[[1, 2, 3][i]])


def _as_read(study: optuna.Study) -> list[tuple]:
    def plain(value):
        return "nan" if isinstance(value, float) and math.isnan(value) else value

    return [
        (
            t.number,
            t.state,
            t.values,
            t.params,
            t.distributions,
            t.user_attrs,
            t.system_attrs,
            {step: plain(v) for step, v in t.intermediate_values.items()},
            t.datetime_start is not None,
            t.datetime_complete is not None,
        )
        for t in study.get_trials(deepcopy=False)
    ]


def test_a_study_written_by_the_fast_path_reads_back_as_plain_optunas_own(
    database_url, far_from_utc
):
    sampler = optuna.samplers.RandomSampler
    fast = optuna.create_study(
        study_name="fast", storage=open_storage(database_url), sampler=sampler(seed=3)
    )
    slow = optuna.create_study(
        study_name="plain", storage=RDBStorage(database_url), sampler=sampler(seed=3)
    )
    _write(fast)
    _write(slow)
    fast_read, plain_read = (
        _as_read(optuna.load_study(study_name=name, storage=database_url))
        for name in ("fast", "plain")
    )
    assert [t[1] for t in fast_read] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
        TrialState.RUNNING,
    ]
    assert fast_read == plain_read
    for trial in optuna.load_study(study_name="fast", storage=database_url).trials:
        for moment in (trial.datetime_start, trial.datetime_complete):  # stored in UTC
            assert moment is None or abs((moment - datetime.datetime.now()).total_seconds()) < 60
    # hpsearch's own queries on Optuna's tables agree with Optuna's reading of them.
    running = [t for t in fast.get_trials() if t.state == TrialState.RUNNING]
    expected = [{s: str(v) for s, v in t.intermediate_values.items()} for t in running]
    got = [{s: str(v) for s, v in curve.items()} for curve in running_curves(fast, other_than=-1)]
    assert got == expected and "nan" in expected[0].values()
    assert count_live_trials(fast) == {"COMPLETE": 1, "PRUNED": 1, "FAIL": 1, "RUNNING": 1}


@pytest.fixture
def far_from_utc(monkeypatch):
    """A local time zone nine hours from UTC: Optuna 5 stores trial times as UTC and
    shows them in local time, so a read or write that skips the conversion is caught."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_core_reads_build_the_trials_optunas_own_reading_builds(database_url, far_from_utc):
    """get_trial and _get_trials in every mode Optuna's cache and callers use (all, new
    since a trial, new or listed, by state, more listed ids than one IN list takes),
    on every kind of row, against RDBStorage's own reading of the same database."""
    plain = RDBStorage(database_url)
    study = optuna.create_study(study_name="rows", storage=plain, sampler=RandomSampler(seed=1))
    _write(study)
    both = optuna.create_study(storage=plain, directions=["maximize", "minimize"])
    both.add_trial(optuna.create_trial(values=[math.inf, -1.5], user_attrs={"u": [1]}))
    fast = open_storage(database_url)
    ids = [t._trial_id for t in plain.get_all_trials(study._study_id)]
    assert len(ids) == 4  # the enqueued trial is the first one asked

    def same(name, *args):
        def shown(trials):  # every field, datetimes and NaN included; dicts in any order
            def field(value):
                return sorted(value.items()) if isinstance(value, dict) else value

            trials = trials if isinstance(trials, list) else [trials]
            return [repr({k: field(v) for k, v in vars(t).items()}) for t in trials]

        ours, optunas = getattr(fast, name)(*args), getattr(plain, name)(*args)
        assert shown(ours) == shown(optunas), (name, args)
        return ours

    finished = [TrialState.COMPLETE, TrialState.PRUNED]
    for sid in (study._study_id, both._study_id):
        assert len(same("_get_trials", sid, None, set(), -1)) in (4, 1)
    assert len(same("_get_trials", study._study_id, finished, set(), -1)) == 2
    assert len(same("_get_trials", study._study_id, None, set(), ids[2])) == 1
    assert len(same("_get_trials", study._study_id, None, {ids[0], ids[3]}, ids[2])) == 2
    assert len(same("_get_trials", study._study_id, finished, {ids[1]}, ids[1])) == 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reads, "MAX_LISTED_IDS", 1)
        assert len(same("_get_trials", study._study_id, None, {ids[0], ids[1]}, ids[2])) == 3
    for trial_id in [*ids, both.trials[0]._trial_id]:
        assert same("get_trial", trial_id)
    with pytest.raises(KeyError):
        fast.get_trial(max(ids) + 100)
    with pytest.raises(KeyError):
        fast._get_trials(both._study_id + 100, None, set(), -1)
    # A trial the fast path creates is stored in UTC like Optuna's own: shown as now.
    created = optuna.load_study(study_name="rows", storage=fast).ask()
    shown = plain.get_trial(created._trial_id).datetime_start
    assert abs((shown - datetime.datetime.now()).total_seconds()) < 60


def test_a_waiting_trial_is_claimed_once_and_a_finished_one_never_changes(database_url):
    storage = open_storage(database_url)
    study = optuna.create_study(storage=storage)
    study.enqueue_trial({"x": 1.0})
    waiting = study.trials[0]._trial_id
    assert storage.set_trial_state_values(waiting, TrialState.RUNNING) is True
    assert storage.set_trial_state_values(waiting, TrialState.RUNNING) is False  # taken
    assert RDBStorage(database_url).get_trial(waiting).state == TrialState.RUNNING
    assert storage.set_trial_state_values(waiting, TrialState.COMPLETE, [2.5]) is True
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_state_values(waiting, TrialState.FAIL)
    assert RDBStorage(database_url).get_trial(waiting).values == [2.5]


def test_counts_stay_exact_while_each_reads_only_the_trials_after_the_settled_ones(
    database_url,
):
    """count_live_trials counts the trials up to the first unfinished one once (they
    never change) and reads the rest at each call: checked against the API's counts as
    trials finish out of order, a warm-start copy arrives, and `before` looks back."""
    study = optuna.create_study(storage=open_storage(database_url))

    def by_api(before=None):
        counts = collections.Counter(
            t.state.name
            for t in study.get_trials()
            if "copied_from" not in t.user_attrs and (before is None or t.number < before)
        )
        return dict(counts)

    def tally():
        tallies, _lock = queries._tallies(rdb_backend(study))
        return tallies[study]

    first, second, third = study.ask(), study.ask(), study.ask()
    study.tell(second, 1.0)
    assert count_live_trials(study) == by_api() == {"RUNNING": 2, "COMPLETE": 1}
    assert tally().last_id == -1  # the first trial is still running: nothing settled
    study.tell(first, state=TrialState.PRUNED)
    assert count_live_trials(study) == by_api() == {"PRUNED": 1, "COMPLETE": 1, "RUNNING": 1}
    assert tally().last_id == second._trial_id
    copy = optuna.create_trial(value=0.5, user_attrs={"copied_from": "parent:0"})
    study.add_trial(copy)
    study.tell(third, state=TrialState.FAIL)
    assert count_live_trials(study) == by_api() == {"PRUNED": 1, "COMPLETE": 1, "FAIL": 1}
    assert tally().last_id == max(t._trial_id for t in study.trials)
    assert count_live_trials(study, before=2) == by_api(before=2) == {"PRUNED": 1, "COMPLETE": 1}
    assert count_live_trials(study, before=1) == by_api(before=1) == {"PRUNED": 1}


def test_counts_are_exact_from_threads_and_for_a_study_made_again(database_url):
    storage = open_storage(database_url)
    study = optuna.create_study(study_name="again", storage=storage)
    for _ in range(5):
        study.tell(study.ask(), 1.0)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        counted = list(pool.map(lambda _: count_live_trials(study), range(40)))
    assert all(c == {"COMPLETE": 5} for c in counted)
    assert count_live_trials(study) == {"COMPLETE": 5}
    optuna.delete_study(study_name="again", storage=storage)
    again = optuna.create_study(study_name="again", storage=storage)  # ids may be reused
    again.tell(again.ask(), state=TrialState.PRUNED)
    assert count_live_trials(again) == {"PRUNED": 1}


def test_a_parameter_set_twice_keeps_the_first_and_raises_nothing_as_optunas(database_url):
    """Optuna ignores a second insert of a trial's parameter (a retried write whose
    first try committed); so does the fast path, on each of its routes."""
    storage = open_storage(database_url)
    study = optuna.create_study(storage=storage)
    trial_id = study.ask()._trial_id
    low, high = FloatDistribution(0.0, 1.0), FloatDistribution(0.0, 1.0)
    storage._set_trial_param(trial_id, "x", 0.25, low, None)
    storage._set_trial_param(trial_id, "x", 0.75, high, None)
    storage._set_trial_param(trial_id, "x", 0.5, high, low)  # one statement on PostgreSQL
    assert RDBStorage(database_url).get_trial(trial_id).params == {"x": 0.25}


def test_an_untested_optuna_gets_plain_storage_a_warning_and_working_studies(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(optuna, "__version__", "9.7.1")
    spec = tiny_spec(tmp_path, n_trials=3)
    with caplog.at_level(logging.WARNING, logger="hpsearch"):
        storage = open_storage(spec.storage)
        assert type(storage) is PlainRDBStorage
        result = run(spec)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "9.7.1" in w] == [
        "Optuna 9.7.1 is not a version hpsearch was tested with (5.0, 5.1): using "
        "Optuna's plain RDBStorage, correct but slower"
    ]
    assert result.finished_now == 3
    assert len(plain_trials(spec)) == 3


def test_the_fast_path_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv(FAST_PATH_VARIABLE, "0")
    assert type(open_storage(f"sqlite:///{tmp_path / 'o.db'}")) is PlainRDBStorage


def test_a_database_of_another_optuna_schema_is_refused_in_one_line(database_url):
    from sqlalchemy import text

    from hpsearch.storage import StorageError

    storage = open_storage(database_url)
    with storage.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'v0.0.1'"))
    storage.engine.dispose()
    with pytest.raises(StorageError, match="schema v0.0.1") as error:
        open_storage(database_url)
    assert "\n" not in str(error.value)
