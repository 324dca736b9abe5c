import numpy as np
import pytest

from hpsearch.data import load
from hpsearch.errors import ConfigError
from hpsearch.nn import MultiLayerNet, make_optimizer
from hpsearch.train import Diverged, History, fit


def train_mnist(split, *, init="he", init_scale=1.0, seed=0, epochs=20, lr=0.1, **net_options):
    rng = np.random.default_rng(seed)
    net = MultiLayerNet(
        784, [100] * 6, 10, init=init, init_scale=init_scale, rng=rng, **net_options
    )
    return fit(net, make_optimizer("sgd", lr=lr), split, epochs=epochs, batch_size=100, rng=rng)


def test_he_net_learns_mnist_and_bad_inits_stay_at_chance(mnist):
    he = train_mnist(mnist)
    assert max(he.val_accuracy) >= 0.85, he.val_accuracy
    assert he.val_accuracy[-1] >= 0.85
    # Zeros: every unit of a layer computes the same thing, forever (symmetry).
    zeros = train_mnist(mnist, init="zeros")
    # std 0.01: the signal vanishes through seven layers before it reaches the output.
    tiny = train_mnist(mnist, init="normal", init_scale=0.01)
    assert max(zeros.val_accuracy) <= 0.2, zeros.val_accuracy
    assert max(tiny.val_accuracy) <= 0.2, tiny.val_accuracy
    print(
        f"he {he.val_accuracy[-1]:.4f}, zeros {zeros.val_accuracy[-1]:.4f}, "
        f"normal(0.01) {tiny.val_accuracy[-1]:.4f}"
    )


def test_same_seed_gives_bit_identical_histories_and_another_seed_does_not(mnist):
    options = {"epochs": 3, "dropout": 0.1, "batchnorm": True}
    a, b = train_mnist(mnist, seed=7, **options), train_mnist(mnist, seed=7, **options)
    c = train_mnist(mnist, seed=8, **options)
    for curve in ("train_loss", "train_accuracy", "val_accuracy"):
        assert getattr(a, curve) == getattr(b, curve)
    assert a.train_loss != c.train_loss


def test_history_shape_and_evaluated_train_metrics():
    split = load("digits")
    rng = np.random.default_rng(0)
    net = MultiLayerNet(64, [32], 10, rng=rng)
    history = fit(
        net, make_optimizer("adam"), split, epochs=4, batch_size=50, rng=rng, evaluate_train=True
    )
    assert isinstance(history, History) and history.epochs == 4
    assert all(len(curve) == 4 for curve in history.to_dict().values())
    assert history.train_accuracy[-1] == net.accuracy(split.x_train, split.t_train)
    assert history.train_loss[-1] < history.train_loss[0]
    assert all(s > 0 for s in history.seconds)


def test_on_epoch_can_stop_training():
    split = load("digits")
    seen = []

    class Stop(Exception):
        pass

    def on_epoch(epoch, history):
        seen.append((epoch, len(history.val_accuracy)))
        if epoch == 2:
            raise Stop

    rng = np.random.default_rng(0)
    with pytest.raises(Stop):
        fit(
            MultiLayerNet(64, [16], 10, rng=rng),
            make_optimizer("sgd"),
            split,
            epochs=10,
            batch_size=50,
            rng=rng,
            on_epoch=on_epoch,
        )
    assert seen == [(1, 1), (2, 2)]


def test_a_huge_learning_rate_raises_diverged_at_once():
    split = load("digits")
    rng = np.random.default_rng(0)
    net = MultiLayerNet(64, [64] * 3, 10, init_scale=10.0, rng=rng)
    with pytest.raises(Diverged) as caught:
        fit(net, make_optimizer("sgd", lr=1e6), split, epochs=50, batch_size=50, rng=rng)
    assert caught.value.epoch == 1
    assert "diverged at epoch 1" in str(caught.value)


def test_bad_training_arguments():
    split = load("digits", train_size=100)
    net = MultiLayerNet(64, [8], 10)
    opt = make_optimizer("sgd")
    with pytest.raises(ConfigError, match="batch_size=500 is larger than the 80"):
        fit(net, opt, split, epochs=1, batch_size=500, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="epochs must be a positive integer, got 0"):
        fit(net, opt, split, epochs=0, batch_size=10, rng=np.random.default_rng(0))
