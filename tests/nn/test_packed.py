"""The net's parameters and gradients packed into one buffer each, and the optimizers'
one-call updates over them, against the same rules applied array by array."""

import numpy as np
import pytest

from hpsearch.nn import OPTIMIZERS, MultiLayerNet, make_optimizer
from hpsearch.nn.packed import PackedArrays, axpy


def small_net(**options) -> MultiLayerNet:
    return MultiLayerNet(6, [5, 4], 3, rng=np.random.default_rng(1), **options)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_params_are_views_into_one_buffer_with_the_weights_first(batchnorm):
    net = small_net(batchnorm=batchnorm, weight_decay=0.1)
    params = net.params
    assert isinstance(params, PackedArrays)
    expected = ["W1", "gamma1", "beta1", "W2", "gamma2", "beta2", "W3", "b3"]
    if not batchnorm:
        expected = ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert list(params) == expected  # the book's names in the book's order
    assert params.flat.size == sum(a.size for a in params.values())
    for array in params.values():
        assert np.shares_memory(array, params.flat)
    weights = np.concatenate([params[k].ravel() for k in net.weight_keys])
    np.testing.assert_array_equal(params.weights, weights)
    # Writing through the flat buffer reaches the layers: the net's output changes.
    x = np.random.default_rng(0).random((4, 6), dtype=np.float32)
    before = net.predict(x)
    params.flat *= 2
    assert not np.allclose(net.predict(x), before)


def test_assigning_a_new_array_to_a_packed_key_is_refused():
    net = small_net()
    with pytest.raises(TypeError, match="view into a packed buffer"):
        net.params["W1"] = np.zeros((6, 5), np.float32)


def test_gradients_land_in_the_packed_gradient_buffer():
    net = small_net(weight_decay=0.05)
    rng = np.random.default_rng(2)
    x, t = rng.random((8, 6), dtype=np.float32), rng.integers(0, 3, 8)
    _, grads = net.loss_and_gradient(x, t)
    assert grads is net.grads and grads.layout == net.params.layout
    copy = {k: g.copy() for k, g in grads.items()}
    assert all(np.any(g != 0) for g in copy.values())
    net.loss_and_gradient(x, t)  # the same batch again: the same numbers, same buffer
    for key, grad in copy.items():
        np.testing.assert_array_equal(net.grads[key], grad)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_one_update_over_the_packed_buffer_equals_updates_array_by_array(name):
    packed, plain = small_net(weight_decay=0.01), small_net(weight_decay=0.01)
    one, each = make_optimizer(name, lr=0.05), make_optimizer(name, lr=0.05)
    rng = np.random.default_rng(3)
    for _ in range(5):
        x, t = rng.random((8, 6), dtype=np.float32), rng.integers(0, 3, 8)
        _, grads = packed.loss_and_gradient(x, t)
        one.update(packed.params, grads)
        _, grads = plain.loss_and_gradient(x, t)
        # A plain dict of the same arrays: the optimizer takes the per-array path.
        params = dict(plain.params.items())
        each.update(params, {k: g.copy() for k, g in grads.items()})
    for attr in ("v", "h", "m"):  # optimizer state: one flat array, not one per key
        if hasattr(one, attr):
            assert list(getattr(one, attr)) == ["*"]
            assert list(getattr(each, attr)) == list(packed.params)
    for key in packed.params:
        np.testing.assert_allclose(packed.params[key], plain.params[key], rtol=2e-5, atol=1e-7)


def test_axpy_updates_in_place_through_its_scratch():
    y, scratch = np.arange(6, dtype=np.float32), np.empty(6, np.float32)
    view = y
    axpy(2.0, np.ones(6, np.float32), y, scratch)
    assert view is y
    np.testing.assert_array_equal(y, np.arange(6) + 2.0)
    strided = np.zeros(12)[::2]  # a view: the buffer under it changes
    axpy(-1.0, np.arange(6.0), strided, np.empty(6))
    np.testing.assert_array_equal(strided, -np.arange(6.0))
