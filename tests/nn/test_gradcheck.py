"""Backprop against central differences, for every layer combination the net builds."""

import numpy as np
import pytest

from hpsearch.nn import MultiLayerNet
from hpsearch.nn.gradcheck import check_gradients, numerical_gradient, relative_error

VARIANTS = {
    "plain": {},
    "weight_decay": {"weight_decay": 0.1},
    "batchnorm": {"batchnorm": True},
    "dropout": {"dropout": 0.3},
    "all": {"batchnorm": True, "dropout": 0.3, "weight_decay": 0.05},
}


def _small_net(activation: str, **options) -> tuple[MultiLayerNet, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    net = MultiLayerNet(
        6,
        [10, 8],
        4,
        activation=activation,
        init="xavier",
        dtype=np.float64,
        rng=np.random.default_rng(0),
        **options,
    )
    # Nonzero biases keep ReLU inputs off the kink at exactly 0, where the
    # numerical derivative is undefined.
    for key, value in net.params.items():
        if key.startswith(("b", "beta")):
            value += rng.normal(scale=0.1, size=value.shape)
    x = rng.standard_normal((12, 6))
    t = rng.integers(0, 4, 12)
    return net, x, t


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_backprop_agrees_with_numerical_gradient(activation, variant):
    net, x, t = _small_net(activation, **VARIANTS[variant])
    errors = check_gradients(net, x, t)
    assert set(errors) == set(net.params)
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-6, f"{worst}: relative error {errors[worst]:.2e}"


def test_gradient_check_catches_a_wrong_backward():
    net, x, t = _small_net("tanh")
    net.layers[1].backward = lambda dout: dout  # pretend tanh' == 1
    errors = check_gradients(net, x, t)
    assert errors["W1"] > 1e-2


def test_weight_decay_adds_lambda_w_to_every_weight_gradient_only():
    net, x, t = _small_net("relu")
    plain = {k: g.copy() for k, g in net.gradient(x, t).items()}
    base_loss = net.loss(x, t)
    net.weight_decay = 0.5
    decayed = net.gradient(x, t)
    for key in net.params:
        expected = plain[key] + (0.5 * net.params[key] if key.startswith("W") else 0)
        np.testing.assert_allclose(decayed[key], expected, rtol=1e-12)
    squares = sum(np.sum(net.params[k] ** 2) for k in ("W1", "W2", "W3"))
    assert net.loss(x, t) == pytest.approx(base_loss + 0.25 * squares, rel=1e-12)


def test_numerical_gradient_of_a_known_function():
    w = np.array([1.0, -2.0, 3.0])
    grad = numerical_gradient(lambda: float(np.sum(w**3)), w)
    np.testing.assert_allclose(grad, 3 * np.array([1.0, 4.0, 9.0]), rtol=1e-8)
    np.testing.assert_array_equal(w, [1.0, -2.0, 3.0])  # restored
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_sigmoid_output_with_binary_cross_entropy(activation):
    rng = np.random.default_rng(4)
    net = MultiLayerNet(
        2,
        [10, 5],
        1,
        activation=activation,
        output="sigmoid",
        weight_decay=0.01,
        dtype=np.float64,
        rng=np.random.default_rng(1),
    )
    for key, value in net.params.items():
        if key.startswith("b"):
            value += rng.normal(scale=0.1, size=value.shape)
    x, t = rng.standard_normal((16, 2)), rng.integers(0, 2, 16)
    errors = check_gradients(net, x, t)
    assert max(errors.values()) < 1e-6, errors
