import warnings

import numpy as np
import pytest

from hpsearch.nn.layers import (
    Affine,
    BatchNorm,
    Dropout,
    ReLU,
    Sigmoid,
    SigmoidBinaryCrossEntropy,
    SoftmaxCrossEntropy,
    Tanh,
)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1e30, 0.0, -1e30], [0.0, 3e38, 0.0]], dtype=np.float32)
    layer = SoftmaxCrossEntropy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        correct = layer.forward(z, np.array([0, 1]))
        assert correct == pytest.approx(0.0, abs=1e-6)
        wrong = layer.forward(z, np.array([2, 0]))
        grad = layer.backward()
    assert np.isfinite(wrong) and wrong > 1e29  # -log softmax of the losing class
    assert np.all(np.isfinite(grad))


def test_softmax_cross_entropy_matches_the_definition_and_accepts_one_hot():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 4))
    t = rng.integers(0, 4, 5)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(5), t]))
    layer = SoftmaxCrossEntropy()
    assert layer.forward(z, t) == pytest.approx(expected, rel=1e-12)
    grad_labels = layer.backward()
    assert layer.forward(z, np.eye(4)[t]) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(layer.backward(), grad_labels, rtol=1e-12)
    np.testing.assert_allclose(grad_labels, (p - np.eye(4)[t]) / 5, rtol=1e-10)


def test_sigmoid_saturates_without_overflow_warnings():
    x = np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Sigmoid().forward(x)
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.0]], atol=1e-7)


def test_activations_match_their_definitions():
    x = np.linspace(-3, 3, 13).reshape(1, -1)
    np.testing.assert_allclose(ReLU().forward(x), np.maximum(x, 0))
    np.testing.assert_allclose(Tanh().forward(x), np.tanh(x))
    np.testing.assert_allclose(Sigmoid().forward(x), 1 / (1 + np.exp(-x)), rtol=1e-12)


def test_affine_skips_the_input_gradient_of_the_first_layer():
    W, b = np.ones((3, 2)), np.zeros(2)
    first = Affine(W, b, input_grad=False)
    first.forward(np.ones((4, 3)))
    assert first.backward(np.ones((4, 2))) is None
    np.testing.assert_allclose(first.dW, np.full((3, 2), 4.0))
    np.testing.assert_allclose(first.db, [4.0, 4.0])


def test_batchnorm_normalises_in_training_and_uses_running_statistics_in_eval():
    rng = np.random.default_rng(0)
    layer = BatchNorm(np.ones(3), np.zeros(3), momentum=0.9)
    x = rng.normal(loc=5.0, scale=2.0, size=(200, 3))
    out = layer.forward(x, train=True)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-4)
    for _ in range(200):
        layer.forward(rng.normal(loc=5.0, scale=2.0, size=(200, 3)), train=True)
    np.testing.assert_allclose(layer.running_mean, 5.0, atol=0.1)
    np.testing.assert_allclose(layer.running_var, 4.0, rtol=0.1)
    # Eval mode: one example alone gets the same output as inside any batch.
    single = layer.forward(x[:1], train=False)
    batch = layer.forward(x, train=False)
    np.testing.assert_allclose(single, batch[:1])
    np.testing.assert_allclose(
        single, (x[:1] - layer.running_mean) / np.sqrt(layer.running_var + 1e-5)
    )


def test_dropout_scales_kept_units_and_is_identity_in_eval():
    x = np.ones((1000, 100), dtype=np.float32)
    layer = Dropout(0.25, np.random.default_rng(0))
    out = layer.forward(x, train=True)
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.02  # inverted scaling keeps the expectation
    assert out.dtype == np.float32
    assert np.array_equal(layer.forward(x, train=False), x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), layer.mask)


def test_dropout_is_seeded():
    x = np.ones((10, 10))
    a = Dropout(0.5, np.random.default_rng(7)).forward(x)
    b = Dropout(0.5, np.random.default_rng(7)).forward(x)
    c = Dropout(0.5, np.random.default_rng(8)).forward(x)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_binary_cross_entropy_matches_the_definition_and_survives_huge_logits():
    z = np.array([[0.3], [-1.2], [2.0]])
    t = np.array([1, 0, 0])
    p = 1 / (1 + np.exp(-z[:, 0]))
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    layer = SigmoidBinaryCrossEntropy()
    assert layer.forward(z, t) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(layer.backward()[:, 0], (p - t) / 3, rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        huge = layer.forward(np.array([[1e30], [-1e30]], dtype=np.float32), np.array([0, 1]))
    assert np.isfinite(huge) and huge > 1e29
    np.testing.assert_array_equal(layer.classes(z), [1, 0, 1])
