"""Init-health pruning: a trial whose init has collapsed or saturated is pruned before
its first epoch, with the reason stored; healthy trials train as before."""

import dataclasses

import numpy as np
import optuna
import pytest
import tomli_w
from optuna.trial import TrialState

from hpsearch import spec as spec_module
from hpsearch.search.runner import run
from hpsearch.spec import FloatRange, InitHealth, SpecError, StudySpec, with_overrides
from hpsearch.trials.network import Objective, init_problem, pinned_fraction
from tests.support import tiny_spec

ON = "[search.init_health]\nenabled = true\n"


def health_spec(
    tmp_path,
    *,
    activation,
    init,
    init_scale=1.0,
    optimizer="sgd",
    enabled=True,
    depth=6,
    pruner="none",
):
    """The tiny digits study with `depth` hidden layers of 32 and a fixed init."""
    base = tiny_spec(tmp_path, pruner=pruner, extra=ON if enabled else "")
    params = {k: v for k, v in base.search.params.items() if k != "init_scale"}
    return dataclasses.replace(
        base,
        model=dataclasses.replace(
            base.model,
            hidden_sizes=(32,) * depth,
            activation=activation,
            init=init,
            init_scale=init_scale,
        ),
        training=dataclasses.replace(base.training, optimizer=optimizer),
        search=dataclasses.replace(base.search, params=params),
    )


def one_trial(spec, lr=0.1):
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": lr, "weight_decay": 1e-6})
    study.optimize(Objective(spec), n_trials=1)
    return study.trials[0]


def assert_pruned_at_init(trial, reason):
    attrs = trial.user_attrs
    assert trial.state == TrialState.PRUNED
    assert attrs["stop_reason"].startswith(f"init-health: {reason}")
    assert attrs["epochs_run"] == 0 and trial.intermediate_values == {}
    assert attrs["train_loss"] == [] and attrs["val_accuracy"] == []
    assert attrs["diverged"] is False


# -- real trials -----------------------------------------------------------------------


def test_a_collapsed_init_is_pruned_before_its_first_epoch(tmp_path):
    spec = health_spec(tmp_path, activation="tanh", init="normal", init_scale=1e-3)
    trial = one_trial(spec)
    assert_pruned_at_init(trial, "signal collapsed")
    assert "last hidden layer" in trial.user_attrs["stop_reason"]
    std = trial.user_attrs["init_activation_std"]
    assert len(std) == 6 and 0 < std[-1] < 1e-3 * std[0]


def test_the_pruned_collapsed_trial_would_have_wasted_its_epochs(tmp_path):
    """The same trial without the check trains every epoch and stays near chance."""
    spec = health_spec(tmp_path, activation="tanh", init="normal", init_scale=1e-3, enabled=False)
    trial = one_trial(spec)
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["epochs_run"] == 4 and "stop_reason" not in trial.user_attrs
    assert max(trial.user_attrs["val_accuracy"]) < 0.25


def test_a_he_init_relu_trial_is_not_pruned(tmp_path):
    spec = health_spec(tmp_path, activation="relu", init="he")
    trial = one_trial(spec)
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["epochs_run"] == 4 and "stop_reason" not in trial.user_attrs
    assert trial.value > 0.5  # chance is 0.1
    assert "init_pinned_fraction" not in trial.user_attrs  # relu has no upper limit


def test_a_saturated_sigmoid_net_is_pruned_with_the_reason(tmp_path):
    spec = health_spec(tmp_path, activation="sigmoid", init="xavier", init_scale=100.0)
    trial = one_trial(spec)
    assert_pruned_at_init(trial, "saturated")
    pinned = trial.user_attrs["init_pinned_fraction"]
    assert len(pinned) == 6 and max(pinned) > 0.8
    assert "pinned at their limits (saturation = 0.8)" in trial.user_attrs["stop_reason"]


def test_a_xavier_tanh_net_is_healthy_and_records_its_pinned_fractions(tmp_path):
    spec = health_spec(tmp_path, activation="tanh", init="xavier")
    trial = one_trial(spec)
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["epochs_run"] == 4
    pinned = trial.user_attrs["init_pinned_fraction"]
    assert len(pinned) == 6 and max(pinned) < 0.1


def test_adam_is_not_held_to_the_collapse_ratio(tmp_path):
    """Adam rescales shrunken gradients: the tiny-init net is trained, not pruned."""
    spec = health_spec(
        tmp_path, activation="tanh", init="normal", init_scale=1e-3, optimizer="adam"
    )
    trial = one_trial(spec, lr=1e-2)
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["epochs_run"] == 4


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_an_all_zeros_init_is_collapsed_whatever_the_optimizer(tmp_path, optimizer):
    spec = health_spec(tmp_path, activation="relu", init="zeros", optimizer=optimizer)
    trial = one_trial(spec, lr=1e-2)
    assert_pruned_at_init(trial, "signal collapsed")
    assert "hidden layer 1 of 6" in trial.user_attrs["stop_reason"]
    assert "activation std 0" in trial.user_attrs["stop_reason"]


def test_the_check_is_off_by_default(tmp_path):
    spec = health_spec(tmp_path, activation="relu", init="zeros", enabled=False)
    assert spec.search.init_health == InitHealth(enabled=False)
    trial = one_trial(spec)
    assert trial.user_attrs["epochs_run"] == 4 and "stop_reason" not in trial.user_attrs


def test_it_composes_with_the_median_pruner_in_a_stored_study(tmp_path):
    spec = health_spec(tmp_path, activation="tanh", init="xavier", pruner="median")
    wide = dict(spec.search.params) | {"init_scale": FloatRange(1e-4, 10.0, log=True)}
    spec = dataclasses.replace(
        spec, search=dataclasses.replace(spec.search, n_trials=8, sampler="random", params=wide)
    )
    run(spec)
    trials = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    assert len(trials) == 8
    at_init = [t for t in trials if t.user_attrs.get("epochs_run") == 0]
    trained = [t for t in trials if t.user_attrs.get("epochs_run", 0) > 0]
    assert at_init and trained and len(at_init) + len(trained) == 8
    for trial in at_init:
        assert_pruned_at_init(trial, "signal collapsed")
        std = trial.user_attrs["init_activation_std"]
        assert std[-1] < 1e-3 * std[0] and trial.params["init_scale"] < 0.5
    for trial in trained:
        std = trial.user_attrs["init_activation_std"]
        assert std[-1] >= 1e-3 * std[0]
        assert sorted(trial.intermediate_values) == list(
            range(1, trial.user_attrs["epochs_run"] + 1)
        )


def test_changing_init_health_continues_a_study(tmp_path):
    """A pruning setting, like the pruner: not part of the experiment."""
    spec = tiny_spec(tmp_path, n_trials=1)
    run(spec)
    strict = dataclasses.replace(
        spec,
        search=dataclasses.replace(spec.search, n_trials=2, init_health=InitHealth(True, 0.5, 0.5)),
    )
    assert strict.experiment() == spec.experiment()
    result = run(strict)
    assert (result.finished_before, result.finished_now) == (1, 2)


# -- the decision on its own -----------------------------------------------------------


def test_pinned_fraction_counts_units_at_the_limits():
    sigmoid = np.array([[0.005, 0.5, 0.995, 0.3], [0.011, 0.989, 0.0, 1.0]], np.float32)
    tanh = np.array([[-0.995, 0.0, 0.99, 1.0]], np.float32)
    assert pinned_fraction([sigmoid], "sigmoid") == [pytest.approx(4 / 8)]
    assert pinned_fraction([tanh], "tanh") == [pytest.approx(2 / 4)]
    assert pinned_fraction([sigmoid], "relu") == []


@pytest.mark.parametrize(
    ("std", "pinned", "optimizer", "rule", "expected"),
    [
        ([1.0, 0.5, 2e-3], [], "sgd", InitHealth(True), None),
        ([1.0, 0.5, 5e-4], [], "sgd", InitHealth(True), "signal collapsed"),
        ([1.0, 0.5, 5e-4], [], "momentum", InitHealth(True), "signal collapsed"),
        ([1.0, 0.5, 5e-4], [], "adam", InitHealth(True), None),
        ([1.0, 0.0, 0.0], [], "adam", InitHealth(True), "signal collapsed"),
        ([1.0, 0.5, 5e-4], [], "sgd", InitHealth(True, collapse=0.0), None),
        ([1.0, 1.0], [0.5, 0.81], "adam", InitHealth(True), "saturated"),
        ([1.0, 1.0], [0.5, 0.8], "sgd", InitHealth(True), None),
        ([1.0, 1.0], [0.99, 1.0], "sgd", InitHealth(True, saturation=1.0), None),
        ([], [], "sgd", InitHealth(True), None),  # no hidden layer: nothing to judge
        ([float("nan")], [], "sgd", InitHealth(True), None),  # left to divergence
    ],
)
def test_init_problem_thresholds(std, pinned, optimizer, rule, expected):
    problem = init_problem(std, pinned, optimizer, rule)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(f"init-health: {expected}")


# -- the spec option -------------------------------------------------------------------


def test_the_spec_option_loads_and_round_trips(tmp_path):
    spec = tiny_spec(tmp_path, extra=ON + "collapse = 0.01\nsaturation = 0.95\n")
    assert spec.search.init_health == InitHealth(True, 0.01, 0.95)
    raw = spec.to_dict()
    assert raw["search"]["init_health"] == {
        "enabled": True,
        "collapse": 0.01,
        "saturation": 0.95,
    }
    assert spec_module.from_dict(raw) == spec
    assert spec_module.loads(tomli_w.dumps(raw)) == spec
    assert with_overrides(spec, n_trials=3).search.init_health == spec.search.init_health
    assert "init_health" not in spec.experiment()


def test_defaults_and_integer_fractions():
    assert StudySpec().search.init_health == InitHealth(False, 1e-3, 0.8)
    loaded = spec_module.loads("[search.init_health]\ncollapse = 0\nsaturation = 1\n")
    assert loaded.search.init_health == InitHealth(False, 0.0, 1.0)
    assert isinstance(loaded.search.init_health.collapse, float)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("collapse = nan", "search.init_health.collapse: must be a finite number"),
        ("collapse = -0.01", "search.init_health.collapse: must be a fraction from 0 to 1"),
        ("collapse = 1.5", "search.init_health.collapse: must be a fraction from 0 to 1"),
        ("saturation = inf", "search.init_health.saturation: must be a finite number"),
        ("saturation = -1", "search.init_health.saturation: must be a fraction from 0 to 1"),
        ("saturation = 1.01", "search.init_health.saturation: must be a fraction from 0 to 1"),
        ("saturation = '0.9'", "search.init_health.saturation: must be a number"),
        ("collapse = true", "search.init_health.collapse: must be a number"),
        ("enabled = 'yes'", "search.init_health.enabled: must be true or false"),
        ("collapsed = 0.1", "search.init_health.collapsed: unknown key"),
    ],
)
def test_bad_init_health_settings_are_refused(body, message):
    with pytest.raises(SpecError) as caught:
        spec_module.loads(f"[search.init_health]\n{body}\n", source="s.toml")
    assert str(caught.value).startswith("s.toml: ")
    assert message in str(caught.value)


def test_init_health_must_be_a_table():
    with pytest.raises(SpecError, match="search.init_health: must be a table"):
        spec_module.loads("[search]\ninit_health = true\n")
