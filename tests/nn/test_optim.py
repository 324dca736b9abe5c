import numpy as np
import pytest

from hpsearch.errors import ConfigError
from hpsearch.nn import OPTIMIZERS, make_optimizer
from hpsearch.nn.optim import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop


def book_function_gradient(p: np.ndarray) -> np.ndarray:
    """Gradient of the book's f(x, y) = x**2 / 20 + y**2."""
    return np.array([p[0] / 10.0, 2.0 * p[1]])


def test_book_defaults():
    assert make_optimizer("sgd").lr == 0.01
    assert make_optimizer("momentum").momentum == 0.9
    assert make_optimizer("nesterov").lr == 0.01
    assert make_optimizer("adagrad").lr == 0.01
    assert make_optimizer("rmsprop").decay_rate == 0.99
    adam = make_optimizer("Adam")
    assert (adam.lr, adam.beta1, adam.beta2) == (0.001, 0.9, 0.999)
    assert isinstance(make_optimizer("sgd", lr=0.5), SGD) and make_optimizer("sgd", 0.5).lr == 0.5


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_descends_the_book_function(name):
    lr = {
        "sgd": 0.95,
        "momentum": 0.1,
        "nesterov": 0.1,
        "adagrad": 1.5,
        "rmsprop": 0.1,
        "adam": 0.3,
    }
    opt = make_optimizer(name, lr=lr[name])
    params = {"p": np.array([-7.0, 2.0])}
    start = params["p"].copy()
    for _ in range(30):
        opt.update(params, {"p": book_function_gradient(params["p"])})
    f = lambda p: p[0] ** 2 / 20 + p[1] ** 2  # noqa: E731
    assert f(params["p"]) < 0.1 * f(start)


def test_first_steps_follow_each_rule():
    g = np.array([0.5, -2.0])

    def first_step(opt):
        params = {"p": np.zeros(2)}
        opt.update(params, {"p": g})
        return params["p"]

    np.testing.assert_allclose(first_step(SGD(0.1)), -0.1 * g)
    np.testing.assert_allclose(first_step(Momentum(0.1, 0.9)), -0.1 * g)
    np.testing.assert_allclose(first_step(Nesterov(0.1, 0.9)), 0.81 * -0.1 * g - 1.9 * 0.1 * g)
    np.testing.assert_allclose(first_step(AdaGrad(0.1)), -0.1 * np.sign(g), rtol=1e-6)
    np.testing.assert_allclose(
        first_step(RMSprop(0.1, 0.99)), -0.1 * g / (0.1 * np.abs(g)), rtol=1e-5
    )
    np.testing.assert_allclose(first_step(Adam(0.1)), -0.1 * np.sign(g), rtol=1e-5)


def test_momentum_accumulates_velocity():
    opt = Momentum(0.1, 0.9)
    params = {"p": np.zeros(1)}
    for _ in range(2):
        opt.update(params, {"p": np.ones(1)})
    np.testing.assert_allclose(params["p"], [-0.1 - 0.19])


def test_updates_are_in_place_and_keep_float32():
    for name in OPTIMIZERS:
        w = np.ones((3, 3), dtype=np.float32)
        params = {"W": w}
        make_optimizer(name).update(params, {"W": np.ones((3, 3), dtype=np.float32)})
        assert params["W"] is w and w.dtype == np.float32 and np.all(w < 1)


def test_unknown_optimizer_and_bad_lr():
    with pytest.raises(ConfigError, match="unknown optimizer 'lbfgs'"):
        make_optimizer("lbfgs")
    with pytest.raises(ConfigError, match="learning rate"):
        make_optimizer("sgd", lr=-1.0)
    with pytest.raises(ConfigError, match="does not take"):
        make_optimizer("sgd", momentum=0.9)
