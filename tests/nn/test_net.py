import math

import numpy as np
import pytest

from hpsearch.errors import ConfigError
from hpsearch.nn import MultiLayerNet, weight_std
from hpsearch.nn.net import judge_probabilities


def test_parameter_names_and_shapes_follow_the_book():
    net = MultiLayerNet(784, [100] * 6, 10)
    assert list(net.params) == [k for i in range(1, 8) for k in (f"W{i}", f"b{i}")]
    assert net.params["W1"].shape == (784, 100)
    assert net.params["W7"].shape == (100, 10)
    assert all(p.dtype == np.float32 for p in net.params.values())
    assert all(not p.any() for k, p in net.params.items() if k.startswith("b"))


def test_batchnorm_parameters_replace_hidden_biases():
    net = MultiLayerNet(4, [5, 3], 2, batchnorm=True)
    assert list(net.params) == ["W1", "gamma1", "beta1", "W2", "gamma2", "beta2", "W3", "b3"]
    assert np.all(net.params["gamma1"] == 1) and not net.params["beta2"].any()


@pytest.mark.parametrize(
    ("init", "scale", "expected"),
    [
        ("normal", 0.01, 0.01),
        ("normal", 1.0, 1.0),
        ("xavier", 1.0, 1 / math.sqrt(400)),
        ("he", 1.0, math.sqrt(2 / 400)),
        ("he", 3.0, 3 * math.sqrt(2 / 400)),
        ("zeros", 1.0, 0.0),
    ],
)
def test_init_rules_give_the_theoretical_std(init, scale, expected):
    assert weight_std(init, 400, scale) == pytest.approx(expected)
    net = MultiLayerNet(400, [300], 10, init=init, init_scale=scale, rng=np.random.default_rng(1))
    measured = float(net.params["W1"].std())
    assert measured == pytest.approx(expected, rel=0.02, abs=1e-12)
    assert abs(float(net.params["W1"].mean())) <= 5 * expected / math.sqrt(400 * 300)


def test_float64_on_request_and_same_weights_as_float32():
    a = MultiLayerNet(20, [10], 3, dtype=np.float64, rng=np.random.default_rng(5))
    b = MultiLayerNet(20, [10], 3, dtype=np.float32, rng=np.random.default_rng(5))
    assert a.params["W1"].dtype == np.float64
    np.testing.assert_allclose(a.params["W1"], b.params["W1"], rtol=1e-6)
    x = np.random.default_rng(0).random((4, 20))
    assert a.predict(x).dtype == np.float64 and b.predict(x).dtype == np.float32


def test_predict_eval_mode_does_not_drop_units():
    net = MultiLayerNet(20, [50], 3, dropout=0.5, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).random((8, 20))
    np.testing.assert_array_equal(net.predict(x), net.predict(x))
    assert not np.array_equal(net.predict(x, train=True), net.predict(x, train=True))


def test_accuracy_counts_argmax_hits():
    net = MultiLayerNet(2, [], 2, init="zeros")
    net.params["W1"][:] = [[1, 0], [0, 1]]
    x = np.array([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [1.0, 5.0]])
    assert net.accuracy(x, np.array([0, 1, 1, 1])) == 0.75
    assert net.accuracy(x, np.eye(2)[[0, 1, 1, 1]], batch_size=3) == 0.75


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"activation": "gelu"}, "unknown activation 'gelu'"),
        ({"init": "lecun"}, "unknown init rule 'lecun'"),
        ({"init_scale": -1.0}, "init_scale"),
        ({"init_scale": math.nan}, "init_scale"),
        ({"weight_decay": math.inf}, "weight_decay"),
        ({"dropout": 1.0}, "dropout"),
        ({"dtype": np.float16}, "dtype"),
    ],
)
def test_bad_configuration_is_rejected_by_name(options, message):
    with pytest.raises(ConfigError, match=message):
        MultiLayerNet(4, [3], 2, **options)


def test_bad_sizes_are_rejected():
    with pytest.raises(ConfigError, match="hidden sizes"):
        MultiLayerNet(4, [3, 0], 2)
    with pytest.raises(ConfigError, match="input_size"):
        MultiLayerNet(0, [3], 2)


@pytest.mark.parametrize(("output", "classes"), [("softmax", 3), ("sigmoid", 1)])
def test_probabilities_agree_with_the_nets_own_loss_and_accuracy(output, classes):
    """What an ensemble averages: each row sums to one, and scored as they are, the
    probabilities give the net's own cross-entropy and accuracy."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 4))
    t = rng.integers(0, max(classes, 2), size=50)
    net = MultiLayerNet(4, [8], classes, output=output, rng=np.random.default_rng(4))
    probabilities = net.probabilities(x, batch_size=16)  # several blocks
    assert probabilities.shape == (50, max(classes, 2))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    loss, accuracy = judge_probabilities(probabilities, t)
    own_loss, own_accuracy = net.evaluate(x, t)
    assert accuracy == own_accuracy
    assert loss == pytest.approx(own_loss, rel=1e-5)
