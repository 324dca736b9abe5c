import dataclasses

import numpy as np
import optuna
import pytest

from hpsearch.spec import FloatRange, StudySpec
from hpsearch.trials import network as objective
from hpsearch.trials.network import Objective, resolve
from tests.support import tiny_spec


class Untouchable:
    """Stands in for the test split: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError("a trial read the test split")

    def __array__(self, *args, **kwargs):
        raise AssertionError("a trial read the test split")

    def __len__(self):
        raise AssertionError("a trial read the test split")

    def __getitem__(self, item):
        raise AssertionError("a trial read the test split")


def test_resolve_overlays_sampled_values_on_the_spec():
    config = resolve(StudySpec(), {"lr": 0.05, "hidden_width": 50, "hidden_depth": 3})
    assert config.lr == 0.05 and config.hidden_sizes == (50, 50, 50)
    assert config.init == "he" and config.epochs == 10 and config.batch_size == 100


def test_trials_never_read_the_test_split(tmp_path, monkeypatch):
    spec = tiny_spec(tmp_path)
    real = objective.load_split(spec.data, spec.seed)
    guarded = dataclasses.replace(real, x_test=Untouchable(), t_test=Untouchable())
    monkeypatch.setattr(objective, "load_split", lambda *_: guarded)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(Objective(spec), n_trials=4)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_objective_stores_curves_and_init_diagnostics(tmp_path):
    spec = tiny_spec(tmp_path)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 0.3, "weight_decay": 1e-6, "init_scale": 1.0})
    study.optimize(Objective(spec), n_trials=1)
    trial = study.trials[0]
    attrs = trial.user_attrs
    assert trial.value == attrs["val_accuracy"][-1] and trial.value > 0.8
    assert attrs["epochs_run"] == 4 and len(attrs["train_loss"]) == 4
    assert attrs["diverged"] is False and attrs["seconds"] > 0
    assert len(attrs["init_activation_std"]) == 2
    assert sorted(trial.intermediate_values) == [1, 2, 3, 4]


def test_collapsed_init_shows_in_the_activation_std(tmp_path):
    spec = tiny_spec(tmp_path)
    study = optuna.create_study(direction="maximize")
    for scale in (1.0, 0.01):
        study.enqueue_trial({"lr": 0.1, "weight_decay": 1e-8, "init_scale": scale})
    study.optimize(Objective(spec), n_trials=2)
    healthy, collapsed = (t.user_attrs["init_activation_std"] for t in study.trials)
    assert collapsed[-1] < 1e-3 * healthy[-1]


def test_a_diverged_trial_is_pruned_with_its_reason_and_the_study_goes_on(tmp_path):
    spec = tiny_spec(tmp_path)
    wide = dict(spec.search.params) | {"lr": FloatRange(1e-3, 1e6, log=True)}
    spec = dataclasses.replace(spec, search=dataclasses.replace(spec.search, params=wide))
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 1e6, "weight_decay": 1e-2, "init_scale": 10.0})
    study.enqueue_trial({"lr": 0.1, "weight_decay": 1e-6, "init_scale": 1.0})
    study.optimize(Objective(spec), n_trials=2)
    first, second = study.trials
    assert first.state == optuna.trial.TrialState.PRUNED
    assert first.user_attrs["diverged"] is True
    assert "diverged at epoch 1" in first.user_attrs["stop_reason"]
    assert second.state == optuna.trial.TrialState.COMPLETE


def test_same_trial_number_and_params_give_the_same_value(tmp_path):
    spec = tiny_spec(tmp_path)
    values = []
    for _ in range(2):
        study = optuna.create_study(direction="maximize")
        study.enqueue_trial({"lr": 0.2, "weight_decay": 1e-5, "init_scale": 0.7})
        study.optimize(Objective(spec), n_trials=1)
        values.append((study.trials[0].value, study.trials[0].user_attrs["train_loss"]))
    assert values[0] == values[1]


def test_hidden_activations_leave_batchnorm_statistics_alone():
    from hpsearch.nn import MultiLayerNet

    net = MultiLayerNet(10, [8, 8], 3, batchnorm=True, dropout=0.5)
    before = [layer.running_mean.copy() for layer in net.layers if hasattr(layer, "running_mean")]
    outputs = net.hidden_activations(np.random.default_rng(0).standard_normal((20, 10)) * 5 + 3)
    after = [layer.running_mean for layer in net.layers if hasattr(layer, "running_mean")]
    assert len(outputs) == 2 and all(o.shape == (20, 8) for o in outputs)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    # Batch norm then ReLU: about half the units are positive, whatever the input scale.
    assert 0.3 < float((outputs[0] > 0).mean()) < 0.7


@pytest.mark.parametrize("batch_size", [5000])
def test_a_batch_larger_than_the_training_set_is_refused_before_any_trial(tmp_path, batch_size):
    from hpsearch.errors import ConfigError

    spec = tiny_spec(tmp_path)
    spec = dataclasses.replace(
        spec, training=dataclasses.replace(spec.training, batch_size=batch_size)
    )
    with pytest.raises(ConfigError, match="batch size 5000 is larger than the"):
        objective.check_against_data(spec, objective.load_split(spec.data, spec.seed))


def test_a_trial_is_pruned_only_while_epochs_are_left(tmp_path):
    """A pruner that rejects every value stops a trial after its first epoch, but a
    trial that has trained all its epochs completes: pruning it then saves nothing."""
    always = optuna.pruners.ThresholdPruner(lower=2.0)  # every accuracy is below 2
    results = {}
    for epochs in (1, 3):
        spec = tiny_spec(tmp_path)
        spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training, epochs=epochs))
        study = optuna.create_study(direction="maximize", pruner=always)
        study.enqueue_trial({"lr": 0.3, "weight_decay": 1e-6, "init_scale": 1.0})
        study.optimize(Objective(spec), n_trials=1)
        results[epochs] = study.trials[0]
    assert results[1].state == optuna.trial.TrialState.COMPLETE
    assert results[1].value == results[1].intermediate_values[1]
    assert results[3].state == optuna.trial.TrialState.PRUNED
    assert results[3].user_attrs["epochs_run"] == 1
    assert "pruned after epoch 1" in results[3].user_attrs["stop_reason"]
