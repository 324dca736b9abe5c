"""The median pruner judges a trial the same way with one worker or several."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpsearch.search.pruning import ParallelMedianPruner
from hpsearch.storage import open_storage


def _study(url: str, **options) -> optuna.Study:
    storage = open_storage(url, heartbeat=None)
    study = optuna.create_study(
        storage=storage, direction="maximize", pruner=ParallelMedianPruner(**options)
    )
    for value in (0.2, 0.3):  # completed: median 0.25 at step 0
        _add_completed(study, value)
    return study


def _add_completed(study: optuna.Study, value: float, **user_attrs) -> None:
    """A completed trial that reported `value` at step 0."""
    study.add_trial(
        create_trial(
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            value=value,
            intermediate_values={0: value},
            state=TrialState.COMPLETE,
            user_attrs=user_attrs,
        )
    )


@pytest.fixture(params=["sqlite", "postgresql", "journal"])
def url(request, tmp_path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    if request.param == "journal":
        return f"journal:{tmp_path / 'p.log'}"
    return f"sqlite:///{tmp_path / 'p.db'}"


def test_a_trial_running_elsewhere_counts_at_the_steps_it_reported(url):
    study = _study(url, n_startup_trials=2)
    judged = study.ask()
    judged.report(0.28, 0)
    assert not judged.should_prune()  # 0.28 is above the completed trials' median

    elsewhere = study.ask()  # another worker's trial, ahead at step 0
    elsewhere.report(0.9, 0)
    elsewhere.report(0.95, 1)
    assert judged.should_prune()  # median of 0.2, 0.3, 0.9 is 0.3

    study.tell(elsewhere, state=TrialState.PRUNED)  # ended: no longer counted
    assert not judged.should_prune()


def test_running_trials_do_not_count_towards_the_start_up_trials(url):
    study = _study(url, n_startup_trials=3)
    elsewhere = study.ask()
    elsewhere.report(0.9, 0)
    judged = study.ask()
    judged.report(0.01, 0)
    assert not judged.should_prune()  # two completed trials, three needed


def test_a_rounds_copies_of_its_parents_best_are_not_what_its_trials_are_judged_against(url):
    # A narrowed round starts with copies of its parent's best trials, far ahead at every
    # epoch. Judged against them, every new trial was pruned at the first chance.
    study = _study(url, n_startup_trials=2)
    for value in (0.9, 0.95, 0.97):
        _add_completed(study, value, copied_from="parent#1")
    judged = study.ask()
    judged.report(0.28, 0)
    # Median of the round's own trials (0.2, 0.3) is 0.25: go on. With the three copies
    # counted, the median would be 0.9.
    assert not judged.should_prune()
    judged.report(0.1, 1)  # no own trial reached step 1: nothing to judge against
    assert not judged.should_prune()


def test_the_start_up_count_waits_for_the_rounds_own_trials(url):
    study = _study(url, n_startup_trials=3)
    _add_completed(study, 0.9, copied_from="parent#1")
    judged = study.ask()
    judged.report(0.01, 0)
    assert not judged.should_prune()  # two own completed trials, three needed
