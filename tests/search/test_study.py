import dataclasses
import math

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from hpsearch import spec as spec_module
from hpsearch.search.final import final
from hpsearch.search.runner import run
from hpsearch.search.study import StudyError
from hpsearch.spec import SpecError, with_overrides
from tests.support import dump, tiny_spec

ROOT_SPEC = spec_module.StudySpec()


def plain_trials(spec):
    """The study as plain Optuna sees it, not through hpsearch."""
    return optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()


def test_trials_land_in_sqlite_as_optuna_reads_them(tmp_path):
    spec = tiny_spec(tmp_path, n_trials=6, pruner="median")
    result = run(spec)
    assert result.finished_now == 6
    trials = plain_trials(spec)
    assert len(trials) == 6
    for trial in trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        for name in ("lr", "weight_decay", "init_scale"):
            distribution = trial.distributions[name]
            assert isinstance(distribution, FloatDistribution) and distribution.log
        attrs = trial.user_attrs
        assert sorted(trial.intermediate_values) == list(range(1, attrs["epochs_run"] + 1))
        for key in ("train_loss", "train_accuracy", "val_accuracy"):
            assert len(attrs[key]) == attrs["epochs_run"]
        assert attrs["seconds"] > 0
        assert attrs["diverged"] is False or trial.state == TrialState.PRUNED
        assert len(attrs["init_activation_std"]) == 2
    study = optuna.load_study(study_name=spec.name, storage=spec.storage)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert spec_module.from_dict(study.user_attrs["spec"]) == spec
    assert study.user_attrs["seed"] == 0


def test_same_spec_and_seed_give_identical_trials(tmp_path):
    runs = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        spec = tiny_spec(tmp_path / folder, n_trials=8, pruner="median")
        run(spec)
        runs.append([(t.params, t.value, t.state) for t in plain_trials(spec)])
    assert runs[0] == runs[1]
    (tmp_path / "c").mkdir()
    other = with_overrides(tiny_spec(tmp_path / "c", n_trials=8), seed=1)
    run(other)
    assert [t.params for t in plain_trials(other)] != [p for p, _, _ in runs[0]]


def test_rerunning_continues_to_the_total_budget(tmp_path):
    spec = tiny_spec(tmp_path, n_trials=4)
    run(spec)
    first = {t.number: (t.params, t.value) for t in plain_trials(spec)}
    result = run(with_overrides(spec, n_trials=7))
    assert (result.finished_before, result.finished_now) == (4, 7)
    again = run(with_overrides(spec, n_trials=7))
    assert again.finished_now == 7  # a total, not an increment
    kept = {t.number: (t.params, t.value) for t in plain_trials(spec) if t.number in first}
    assert kept == first


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_continuing_a_study_proposes_new_trials_not_the_first_runs_again(tmp_path, sampler):
    """A seeded sampler made afresh replays its stream: continuing one trial at a time
    used to propose the very first trial's params every time."""
    spec = tiny_spec(tmp_path, n_trials=1, sampler=sampler)
    for total in range(1, 6):
        run(with_overrides(spec, n_trials=total))
    params = [tuple(sorted(t.params.items())) for t in plain_trials(spec)]
    assert len(params) == 5 and len(set(params)) == 5
    # ...and the continued run is still reproducible.
    (tmp_path / "again").mkdir()
    again = tiny_spec(tmp_path / "again", n_trials=1, sampler=sampler)
    for total in range(1, 6):
        run(with_overrides(again, n_trials=total))
    assert [tuple(sorted(t.params.items())) for t in plain_trials(again)] == params


def test_workers_of_different_commands_get_different_streams():
    from hpsearch.search.samplers import worker_seed

    seeds = {worker_seed(0, w, s, m) for w in range(3) for s in (0, 7) for m in (0, 1, 2)}
    assert len(seeds) == 18 and worker_seed(5, 0) == 5


def test_workers_run_exactly_the_budget(tmp_path):
    spec = tiny_spec(tmp_path, n_trials=9, pruner="median")
    result = run(spec, workers=2)
    trials = plain_trials(spec)
    assert result.finished_now == 9 and len(trials) == 9
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 9  # no duplicated proposals


@pytest.mark.parametrize("sampler", ["random", "cmaes", "qmc", "grid"])
def test_samplers_by_name(tmp_path, sampler):
    spec = tiny_spec(tmp_path, n_trials=4, sampler=sampler)
    assert run(spec).finished_now == 4
    if sampler == "grid":  # five log-spaced points per log range
        grid = [10**e for e in (-3, -2.25, -1.5, -0.75, 0)]
        for trial in plain_trials(spec):
            assert any(math.isclose(trial.params["lr"], point) for point in grid)


def test_gp_sampler_without_torch_says_how_to_get_it(tmp_path):
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        spec = tiny_spec(tmp_path, n_trials=3, sampler="gp")
        assert run(spec).finished_now == 3
        return
    with pytest.raises(SpecError, match="gp sampler needs PyTorch"):
        run(tiny_spec(tmp_path, sampler="gp"))


@pytest.mark.parametrize("pruner", ["successive-halving", "hyperband"])
def test_pruners_by_name(tmp_path, pruner):
    spec = tiny_spec(tmp_path, n_trials=8, pruner=pruner)
    assert run(spec).finished_now == 8


def test_bad_sampler_options_are_refused_before_the_database_exists(tmp_path):
    spec = tiny_spec(tmp_path, extra="[search.sampler_options]\nn_startup=3\n")
    with pytest.raises(SpecError, match="search.sampler_options: tpe sampler rejects"):
        run(spec)
    assert not (tmp_path / "studies.db").exists()


def test_a_study_with_another_experiment_is_refused_and_left_untouched(tmp_path):
    spec = tiny_spec(tmp_path, n_trials=3)
    run(spec)
    before = dump(tmp_path / "studies.db")
    narrower = dict(spec.search.params) | {"lr": spec_module.FloatRange(1e-3, 0.5, log=True)}
    changed = dataclasses.replace(spec, search=dataclasses.replace(spec.search, params=narrower))
    with pytest.raises(StudyError, match=r"experiment \(params.lr.high: 1.0 there, 0.5 here\)"):
        run(changed)
    with pytest.raises(StudyError, match="training.epochs: 4 there, 5 here"):
        run(with_overrides(spec, epochs=5))
    assert dump(tmp_path / "studies.db") == before


def test_final_evaluates_the_best_trial_once_on_the_test_split(tmp_path):
    spec = tiny_spec(tmp_path, n_trials=8)
    run(spec)
    result = final(spec.name, spec.storage)
    study = optuna.load_study(study_name=spec.name, storage=spec.storage)
    assert result.trial_number == study.best_trial.number
    assert result.test_value == study.user_attrs["test_accuracy"]
    assert result.test_value > 0.8  # digits: chance is 0.1
    assert result.train_examples == 1438  # train + validation of 1,797 - 359 test
    assert study.user_attrs["final"]["params"] == study.best_trial.params
    other = next(
        t for t in study.trials if t.state == TrialState.COMPLETE and t != study.best_trial
    )
    chosen = final(spec.name, spec.storage, trial_number=other.number, seeds=1, again=True)
    assert (chosen.trial_number, chosen.params) == (other.number, other.params)
    pruned_or_missing = max(t.number for t in study.trials) + 1
    with pytest.raises(StudyError, match=f"no completed trial {pruned_or_missing}"):
        final(spec.name, spec.storage, trial_number=pruned_or_missing, again=True)


def test_final_whose_retraining_diverges_names_the_next_best_trials(tmp_path, monkeypatch, capsys):
    """The chosen trial can sit at the edge of stability: its retraining on train +
    validation then diverges. One line naming the next best trials, exit 2, no test
    accuracy stored, and the error crosses process boundaries (bench-search's pool)."""
    import pickle

    from hpsearch.cli import main
    from hpsearch.search.final import RetrainDiverged
    from hpsearch.train import Diverged
    from hpsearch.trials import network

    spec = tiny_spec(tmp_path, n_trials=6)
    run(spec)

    def diverging_fit(*args, **kwargs):
        raise Diverged(3, 7, float("nan"))

    monkeypatch.setattr(network, "fit", diverging_fit)
    code = main(["final", "--study", spec.name, "--storage", spec.storage, "--seeds", "1"])
    err = capsys.readouterr().err.strip()
    study = optuna.load_study(study_name=spec.name, storage=spec.storage)
    assert code == 2 and len(err.splitlines()) == 1
    assert f"retraining trial {study.best_trial.number} " in err
    assert "diverged at epoch 3, step 7" in err and "next best: " in err
    assert "test_accuracy" not in study.user_attrs
    with pytest.raises(RetrainDiverged) as caught:
        final(spec.name, spec.storage)
    again = pickle.loads(pickle.dumps(caught.value))
    assert (str(again), again.trial_number) == (str(caught.value), caught.value.trial_number)
    diverged = pickle.loads(pickle.dumps(Diverged(3, 7, 1.0)))
    assert (diverged.epoch, diverged.step, diverged.loss) == (3, 7, 1.0)


def test_final_of_a_missing_study_lists_what_is_there(tmp_path):
    spec = tiny_spec(tmp_path, n_trials=2)
    run(spec)
    with pytest.raises(StudyError, match="no study named 'nope' .* studies there: 'tiny'"):
        final("nope", spec.storage)


def test_runs_with_workers_after_a_run_in_the_same_process_keep_sqlite_intact(tmp_path):
    """Regression: checking the database header with a plain open()/close() while this
    process held SQLite connections dropped their POSIX locks, and the next run's
    workers corrupted the file ('database disk image is malformed')."""
    import sqlite3

    spec = tiny_spec(tmp_path, n_trials=6)
    run(spec)
    run(with_overrides(spec, name="second"), workers=2)
    run(with_overrides(spec, name="third"), workers=2)
    with sqlite3.connect(tmp_path / "studies.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    names = optuna.get_all_study_names(spec.storage)
    assert sorted(names) == ["second", "third", "tiny"]


def test_a_new_study_starts_at_the_searched_parameters_own_defaults(tmp_path):
    """Trials 0 to 2 try init scale 1 (He itself) with lr = SGD's usual 0.01, then ten
    times it and a tenth of it; weight decay's own value, 0, is outside its log range,
    so the sampler picks it."""
    spec = tiny_spec(tmp_path, n_trials=4)
    run(spec)
    trials = plain_trials(spec)
    assert [t.params["lr"] for t in trials[:3]] == pytest.approx([0.01, 0.1, 0.001])
    for first in trials[:3]:
        assert first.params["init_scale"] == 1.0
        assert 1e-8 <= first.params["weight_decay"] <= 1e-2
        assert first.user_attrs["start"] == "defaults"
    assert "start" not in trials[3].user_attrs
    (tmp_path / "one").mkdir()
    one = tiny_spec(tmp_path / "one", n_trials=1)  # a budget of one: one start point, no queue
    run(one)
    assert [(t.params["lr"], t.state.name) for t in plain_trials(one)] == [(0.01, "COMPLETE")]
    (tmp_path / "off").mkdir()
    off = tiny_spec(tmp_path / "off", n_trials=3, start_at_defaults=False)
    run(off)
    assert plain_trials(off)[0].params["lr"] != 0.01
    assert "start" not in plain_trials(off)[0].user_attrs


def test_default_point_keeps_only_values_inside_the_searched_space():
    from hpsearch.spec import Choice, FloatRange, IntRange, SearchSpec
    from hpsearch.trials import kind_of

    search = SearchSpec(
        params={
            "lr": FloatRange(0.1, 1.0, log=True),  # SGD's 0.01 is outside
            "init_scale": FloatRange(0.5, 2.0, step=0.5),  # 1.0 is on a step
            "hidden_depth": IntRange(2, 8),  # the model's 6 layers
            "optimizer": Choice(("adam", "sgd")),
            "activation": Choice(("tanh",)),  # relu is not a choice
        }
    )
    searched = dataclasses.replace(ROOT_SPEC, search=search)
    point = kind_of(searched).start_point(searched)
    assert point == {"init_scale": 1.0, "hidden_depth": 6, "optimizer": "sgd"}


def test_start_points_try_lr_a_decade_either_side_where_the_range_allows():
    from hpsearch.search.study import start_points
    from hpsearch.spec import FloatRange, SearchSpec

    def points(low, high):
        search = SearchSpec(params={"lr": FloatRange(low, high, log=True)})
        return [p["lr"] for p in start_points(dataclasses.replace(ROOT_SPEC, search=search))]

    assert points(1e-5, 1.0) == pytest.approx([0.01, 0.1, 0.001])
    assert points(1e-6, 1e-2) == pytest.approx([0.01, 0.001])  # the book's range
    assert points(0.005, 0.05) == pytest.approx([0.01])
    assert points(0.1, 1.0) == []  # the usual lr is outside: no anchor at all


def test_optunas_failed_trial_traceback_is_kept_for_real_errors_only():
    """Stops, outages and surplus trials refused by the budget say themselves in one
    line; Optuna's failed-trial line with a traceback is kept for everything else, and
    its 'failed with value None.' line after it never."""
    import logging

    from hpsearch.search.budget import BudgetFilled
    from hpsearch.search.work import quiet_optuna
    from hpsearch.storage import OPTIMIZE_LOGGER, StorageUnavailable

    quiet_optuna()
    logger = logging.getLogger(OPTIMIZE_LOGGER)

    def record(message: str, error: BaseException | None = None) -> logging.LogRecord:
        info = (type(error), error, None) if error is not None else None
        return logger.makeRecord(logger.name, logging.WARNING, "", 0, message, (), info)

    # Optuna logs two lines for a failed trial: the error with its traceback, then its value.
    errors = [BudgetFilled("taken"), StorageUnavailable("gone"), KeyboardInterrupt()]
    for number, quiet in enumerate(errors):
        assert not logger.filter(record(f"Trial {number} failed with parameters: {{}}", quiet))
        assert not logger.filter(record(f"Trial {number} failed with value None."))
    assert logger.filter(record("Trial 7 failed with parameters: {}", ValueError("a real bug")))
    # The second line says nothing the first did not: dropped for every trial.
    assert not logger.filter(record("Trial 7 failed with value None."))
    assert logger.filter(record("Trial 7 finished with value: 0.5 and parameters: {}."))


def test_submit_sets_the_budget_the_workers_then_use(tmp_path, capsys):
    """`submit --trials N` on a study that exists raises (or lowers) the budget its
    workers share, and prints the budget it stored."""
    from hpsearch.cli import main
    from tests.support import TINY

    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY.format(n_trials=3, sampler="random", pruner="none"))
    db = f"sqlite:///{tmp_path / 'b.db'}"
    worker = ["worker", "--storage", db, "--study", "tiny", "--no-progress"]

    def finished() -> int:
        study = optuna.load_study(study_name="tiny", storage=db)
        return sum(t.state == TrialState.COMPLETE for t in study.trials)

    assert main(["submit", str(spec), "--storage", db]) == 0
    assert main(worker) == 0 and finished() == 3
    capsys.readouterr()
    assert main(["submit", str(spec), "--storage", db, "--trials", "5"]) == 0
    assert "3 of 5 trials finished (budget set to 5, was 3)" in capsys.readouterr().out
    stored = optuna.load_study(study_name="tiny", storage=db).user_attrs["spec"]
    assert stored["search"]["n_trials"] == 5
    assert main(worker) == 0 and finished() == 5
    assert main(["submit", str(spec), "--storage", db, "--trials", "4"]) == 0
    assert "5 of 4 trials finished (budget set to 4, was 5)" in capsys.readouterr().out
    assert main(worker) == 0 and finished() == 5
    assert main(["submit", str(spec), "--storage", db, "--trials", "4"]) == 0
    assert "(budget set" not in capsys.readouterr().out
