"""A reproducible search (`[search] reproducible = true`): the same trials, pruning and
numbers with one worker, two, and `submit` + two `worker` processes; resumed after a
Ctrl-C; slots that skip repeats and refused trials; a trial that gives way to a queued
one; and the spec's refusals."""

from __future__ import annotations

import signal

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpsearch import records
from hpsearch import spec as spec_module
from hpsearch.analysis.compare import differences
from hpsearch.cli import main
from hpsearch.search.budget import BudgetFilled
from hpsearch.search.reproducible import Gate, GiveWay, slots
from tests.support import TINY, hpsearch, trials, wait_for

N_TRIALS = 16
# The last 4 trials re-evaluate the 2 leaders twice (the confirm stage), which must
# repeat as the search does.
SEARCHED, REEVALUATED = 12, 4
SPEC = (
    TINY.format(n_trials=N_TRIALS, sampler="tpe", pruner="median")
    .replace("start_at_defaults = true", "start_at_defaults = true\nreproducible = true\nlag = 4")
    # Trials long enough that the second of two workers started at once still finds some.
    .replace("hidden_sizes = [32, 32]", "hidden_sizes = [200, 200]")
) + "[search.confirm]\ntop_k = 2\nmax_repeats = 2\nshare = 0.25\n"


def _study(db: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=db).get_trials(deepcopy=False)


def test_one_worker_two_workers_and_submitted_workers_give_the_same_trials(tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text(SPEC)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    run = ["run", str(path), "--storage", db, "--no-progress"]
    assert main([*run, "--study", "one", "--workers", "1"]) == 0
    assert main([*run, "--study", "two", "--workers", "2"]) == 0
    assert main([*run, "--study", "two-again", "--workers", "2"]) == 0
    # Two worker processes on a submitted study. On a loaded machine one of them can run
    # every trial before the other has started: then the study is submitted again, so
    # that trials taken by two processes are compared.
    for attempt in range(3):
        submitted = f"submitted-{attempt}"
        assert main(["submit", str(path), "--storage", db, "--study", submitted]) == 0
        workers = [
            hpsearch("worker", "--storage", db, "--study", submitted, "--no-progress")
            for _ in range(2)
        ]
        for worker in workers:
            _, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err
        # A trial a worker created past the budget is refused (FAIL) before it names a
        # worker.
        finished = [t for t in _study(db, submitted) if t.state != TrialState.FAIL]
        submitted_by = {t.user_attrs["worker"] for t in finished}
        if len(submitted_by) == 2:
            break
    assert len(submitted_by) == 2  # both worker processes ran trials
    capsys.readouterr()

    one = _study(db, "one")
    states = [t.state for t in one]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == N_TRIALS
    assert TrialState.PRUNED in states  # pruning decisions are among what must agree
    assert [t.user_attrs["slot"] for t in one[:SEARCHED]] == list(range(SEARCHED))
    again = one[SEARCHED:]
    assert len(again) == REEVALUATED and all(records.is_confirmation(t) for t in again)
    assert all("slot" not in t.user_attrs for t in again)
    for other in ("two", "two-again", submitted):
        found = differences(one, _study(db, other))
        assert found.empty, f"{other}:\n{found}"
    assert main(["trials", "--study", "one", "--storage", db, "--compare", submitted]) == 0
    assert f"agree: {N_TRIALS} trials" in capsys.readouterr().out
    study = optuna.load_study(study_name="one", storage=db)
    assert study.user_attrs["reproducible"] == {"lag": 4}

    # A free search of the same spec is another experiment: it may not continue this one.
    free = tmp_path / "free.toml"
    free.write_text(SPEC.replace("reproducible = true\nlag = 4", ""))
    assert main(["run", str(free), "--storage", db, "--study", "one", "--no-progress"]) == 2
    assert "different experiment (reproducible: 'lag 4' there, None here)" in (
        capsys.readouterr().err
    )


def test_a_run_stopped_with_ctrl_c_and_run_again_equals_an_uninterrupted_one(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SPEC.replace("epochs = 4", "epochs = 30"))
    db = f"sqlite:///{tmp_path / 'r.db'}"
    command = ["run", str(path), "--storage", db, "--no-progress", "--workers", "2"]
    first = hpsearch(*command, "--study", "stopped")
    wait_for(
        lambda: (
            sum(t.state.is_finished() for t in trials(db, "stopped")) >= 3
            and any(t.state == TrialState.RUNNING for t in trials(db, "stopped"))
        ),
        timeout=120,
        what="finished trials and one running",
    )
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    stopped = trials(db, "stopped")
    assert any(t.state == TrialState.FAIL for t in stopped)
    assert any(t.state == TrialState.WAITING for t in stopped)  # queued to run again
    assert main([*command[:-1], "1", "--study", "stopped"]) == 0
    assert main([*command, "--study", "whole"]) == 0
    found = differences(_study(db, "whole"), _study(db, "stopped"))
    assert found.empty, found


def _trial(number: int, state: TrialState, **attrs) -> optuna.trial.FrozenTrial:
    made = create_trial(
        state=state,
        value=0.5 if state == TrialState.COMPLETE else None,
        params={"lr": 0.1},
        distributions={"lr": FloatDistribution(1e-3, 1.0, log=True)},
        user_attrs=attrs.get("user_attrs", {}),
        system_attrs=attrs.get("system_attrs", {}),
    )
    made.number = number
    return made


def test_repeats_keep_their_slot_and_refused_trials_have_none():
    done, fail, wait = TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING
    history = [
        _trial(0, done),
        _trial(1, fail),  # its worker died
        _trial(2, done),
        _trial(3, done, system_attrs={"failed_trial": 1}),  # the repeat of slot 1
        _trial(4, fail, user_attrs={"stop_reason": "not run: the study's 3 trials were taken"}),
        _trial(5, fail, system_attrs={"failed_trial": 1}),  # a repeat that failed again
        _trial(6, wait, system_attrs={"failed_trial": 1}),
        _trial(7, done),
    ]
    assert slots(history) == {0: 0, 1: 1, 2: 2, 3: 1, 5: 1, 6: 1, 7: 3}


def test_a_trial_that_needs_a_queued_one_gives_way_and_is_queued_after_it():
    study = optuna.create_study(direction="maximize")
    study.add_trials([_trial(n, TrialState.COMPLETE) for n in range(6)])
    study.add_trial(_trial(6, TrialState.FAIL))  # slot 6, its worker died
    study.add_trials([_trial(n, TrialState.COMPLETE) for n in range(7, 11)])
    fresh = study.ask()
    assert fresh.number == 11
    study.add_trial(_trial(12, TrialState.WAITING, system_attrs={"failed_trial": 6}))
    gate = Gate(n_trials=100, lag=2)  # slot 11 learns from slots 0-8, slot 6 among them
    with pytest.raises(GiveWay, match="gave way to queued trial 12"):
        gate.run(fresh, lambda _trial: 1.0)
    repeat = study.get_trials(deepcopy=False)[-1]
    assert (repeat.number, repeat.state) == (13, TrialState.WAITING)
    assert repeat.system_attrs["failed_trial"] == 11
    assert slots(study.get_trials(deepcopy=False)) == {n: n for n in range(12)} | {12: 6, 13: 11}


@pytest.mark.parametrize(
    "setting, message",
    [
        ('sampler = "cmaes"', "search.reproducible: works with the tpe and random samplers"),
        ('pruner = "hyperband"', "search.reproducible: works with the none and median pruners"),
        ("lag = -1", "search.lag: must be >= 0"),
    ],
)
def test_a_reproducible_spec_refuses_what_it_cannot_repeat(tmp_path, setting, message):
    key = setting.split(" =")[0]
    text = "\n".join(setting if line.startswith(f"{key} =") else line for line in SPEC.splitlines())
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(spec_module.SpecError, match=message):
        spec_module.load(path)


def test_a_lag_without_reproducible_is_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(SPEC.replace("reproducible = true\n", ""))
    with pytest.raises(spec_module.SpecError, match="search.lag: only applies with reproducible"):
        spec_module.load(path)


def test_a_start_point_that_gives_way_runs_again_at_the_start_point():
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial(0, TrialState.FAIL))  # slot 0, its worker died
    study.enqueue_trial({"lr": 0.1})  # slot 1: a start point, queued with its value
    start = study.ask()
    assert start.number == 1
    study.add_trial(_trial(2, TrialState.WAITING, system_attrs={"failed_trial": 0}))
    with pytest.raises(GiveWay, match="gave way to queued trial 2"):
        Gate(n_trials=10, lag=0).run(start, lambda _trial: 1.0)
    study.tell(start, state=TrialState.FAIL)
    study.tell(study.ask(), 0.5)  # trial 2, slot 0
    again = study.ask()
    assert again.number == 3
    assert again.suggest_float("lr", 1e-3, 1.0, log=True) == 0.1
    assert slots(study.get_trials(deepcopy=False)) == {0: 0, 1: 1, 2: 0, 3: 1}


def test_a_slot_queued_twice_runs_once():
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial(0, TrialState.FAIL))
    study.add_trial(_trial(1, TrialState.COMPLETE, system_attrs={"failed_trial": 0}))
    study.add_trial(_trial(2, TrialState.WAITING, system_attrs={"failed_trial": 0}))
    twin = study.ask()
    assert twin.number == 2
    with pytest.raises(BudgetFilled, match="not run: its slot 0 ran as trial 1"):
        Gate(n_trials=10, lag=0).run(twin, lambda _trial: 1.0)
    assert twin.user_attrs["stop_reason"].startswith("not run:")
