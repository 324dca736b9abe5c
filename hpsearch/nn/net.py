"""The fully connected network every trial trains: the book's MultiLayerNet(Extend).

Each hidden layer is Affine -> [BatchNorm] -> activation -> [Dropout]; the output
layer is Affine -> softmax cross-entropy. With batch norm the hidden Affine layers
have no bias: beta plays its part, and a bias there would have zero gradient.
Weight decay adds 0.5 * lambda * sum(W**2) over every W to the loss (never over
biases or batch-norm parameters).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from hpsearch.errors import ConfigError
from hpsearch.nn.init import INIT_RULES, init_weights
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
from hpsearch.nn.packed import PackedArrays, axpy

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}
# softmax: classes 0..K-1 with K outputs; sigmoid: labels 0/1 with one output unit.
OUTPUTS = {"softmax": SoftmaxCrossEntropy, "sigmoid": SigmoidBinaryCrossEntropy}


class MultiLayerNet:
    """A multi-layer perceptron with the book's parameter names: W1, b1, ..., WL, bL;
    with batch norm, gamma1, beta1, ... replace the hidden layers' biases."""

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int],
        output_size: int,
        *,
        activation: str = "relu",
        init: str = "he",
        init_scale: float = 1.0,
        weight_decay: float = 0.0,
        batchnorm: bool = False,
        dropout: float = 0.0,
        output: str = "softmax",
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        hidden_sizes = list(hidden_sizes)
        if output not in OUTPUTS:
            raise ConfigError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        if output == "sigmoid" and output_size != 1:
            raise ConfigError(f"a sigmoid output has one unit, got output_size={output_size}")
        _validate(input_size, hidden_sizes, output_size, activation, init, init_scale, weight_decay)
        if not (0.0 <= dropout < 1.0):
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype}")
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.input_size = input_size
        self.hidden_sizes = hidden_sizes
        self.output_size = output_size
        self.activation = activation
        self.init = init
        self.init_scale = float(init_scale)
        self.weight_decay = float(weight_decay)
        self.batchnorm = batchnorm
        self.dropout = float(dropout)

        sizes = [input_size, *hidden_sizes, output_size]
        n_affine = len(sizes) - 1
        self.weight_keys = [f"W{i}" for i in range(1, n_affine + 1)]
        shapes = _param_shapes(sizes, batchnorm)
        # Parameters and gradients each live in one buffer (weights first), so the
        # update, the weight decay and its loss term take one or two NumPy calls each.
        self.params = PackedArrays(shapes, self.weight_keys, self.dtype)
        self.grads = PackedArrays(shapes, self.weight_keys, self.dtype)
        params, grads = self.params, self.grads
        self._scratch = np.empty_like(params.weights)  # for the weight decay
        # In forward order; each layer writes its gradients into its views of self.grads.
        self.layers: list[object] = []
        for i in range(1, n_affine + 1):
            fan_in, fan_out = sizes[i - 1], sizes[i]
            W, dW = params[f"W{i}"], grads[f"W{i}"]
            W[...] = init_weights(
                init, fan_in, fan_out, init_scale=init_scale, rng=self.rng, dtype=self.dtype
            )
            is_output = i == n_affine
            # Batch norm subtracts the batch mean, so a bias before it has zero gradient
            # and no effect: beta takes its place.
            b = db = None
            if f"b{i}" in params:
                b, db = params[f"b{i}"], grads[f"b{i}"]
            affine = Affine(W, b, input_grad=i > 1, reuse_output=not is_output, dW=dW, db=db)
            self.layers.append(affine)
            if is_output:
                break
            if batchnorm:
                gamma, beta = params[f"gamma{i}"], params[f"beta{i}"]
                gamma[...] = 1.0
                norm = BatchNorm(gamma, beta, dgamma=grads[f"gamma{i}"], dbeta=grads[f"beta{i}"])
                self.layers.append(norm)
            self.layers.append(_activation(activation))
            if self.dropout > 0.0:
                self.layers.append(Dropout(self.dropout, self.rng))
        self.output = output
        self.loss_layer = OUTPUTS[output]()

    # -- forward -------------------------------------------------------------------------

    def predict(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Raw class scores (logits) for a batch."""
        out = np.asarray(x, dtype=self.dtype)
        for layer in self.layers:
            out = layer.forward(out, train)
        return out

    def loss(self, x: np.ndarray, t: np.ndarray, train: bool = True) -> float:
        """Mean softmax cross-entropy plus the weight-decay term."""
        return self.loss_layer.forward(self.predict(x, train), np.asarray(t)) + self._decay_term()

    def _decay_term(self) -> float:
        if self.weight_decay == 0.0:
            return 0.0
        weights = self.params.weights
        return 0.5 * self.weight_decay * float(np.vdot(weights, weights))

    # -- backward ------------------------------------------------------------------------

    def loss_and_gradient(
        self, x: np.ndarray, t: np.ndarray
    ) -> tuple[float, dict[str, np.ndarray]]:
        """One forward and one backward pass in training mode.

        The returned gradients are the net's own buffer (`net.grads`), overwritten by
        the next call: copy them to keep them.
        """
        loss = self.loss(x, t, train=True)
        dout = self.loss_layer.backward()
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        if self.weight_decay != 0.0:
            axpy(self.weight_decay, self.params.weights, self.grads.weights, self._scratch)
        return loss, self.grads

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Backprop gradients of `loss(x, t)`, keyed like `params`."""
        return self.loss_and_gradient(x, t)[1]

    # -- evaluation ----------------------------------------------------------------------

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> float:
        """Fraction of examples whose highest score is the true class (eval mode)."""
        return self._judge(x, t, batch_size, with_loss=False)[1]

    def evaluate(self, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> tuple[float, float]:
        """Mean cross-entropy (without the weight-decay term, which is no property of the
        data) and accuracy, from one eval-mode pass."""
        return self._judge(x, t, batch_size, with_loss=True)

    def probabilities(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Each example's predicted class probabilities (rows sum to 1; a sigmoid
        output's two classes are 1 - p and p), from one eval-mode pass: what an
        ensemble of nets averages."""
        blocks = []
        for start in range(0, len(x), batch_size):
            scores = self.predict(x[start : start + batch_size], train=False).astype(np.float64)
            if self.output == "sigmoid":
                p = 0.5 * (1.0 + np.tanh(0.5 * scores[:, :1]))  # the logistic, no overflow
                blocks.append(np.hstack([1.0 - p, p]))
            else:
                shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
                blocks.append(shifted / shifted.sum(axis=1, keepdims=True))
        return np.vstack(blocks)

    def _judge(
        self, x: np.ndarray, t: np.ndarray, batch_size: int, with_loss: bool
    ) -> tuple[float, float]:
        """(mean loss, or NaN when not asked for: it costs a softmax; accuracy)."""
        if len(x) == 0:
            raise ConfigError("accuracy of an empty set is undefined")
        t = np.asarray(t)
        if self.output == "sigmoid":
            labels = t.reshape(-1)
        else:
            labels = t.argmax(axis=1) if t.ndim == 2 else t
        correct = 0
        loss = 0.0
        for start in range(0, len(x), batch_size):
            scores = self.predict(x[start : start + batch_size], train=False)
            if with_loss:
                batch = t[start : start + batch_size]
                loss += float(self.loss_layer.forward(scores, batch)) * len(batch)
            predicted = self.loss_layer.classes(scores)
            correct += int(np.count_nonzero(predicted == labels[start : start + batch_size]))
        return (loss / len(x) if with_loss else math.nan), correct / len(x)

    def hidden_activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Each hidden layer's activation output for one batch, as training would see it
        now: batch norm normalises with the batch's statistics, dropout is left out, and
        nothing is changed (running statistics are restored). The reference articles'
        histograms, and the search's init-health diagnostic, are made from these."""
        norms = [layer for layer in self.layers if isinstance(layer, BatchNorm)]
        saved = [(layer.running_mean.copy(), layer.running_var.copy()) for layer in norms]
        outputs: list[np.ndarray] = []
        out = np.asarray(x, dtype=self.dtype)
        try:
            for layer in self.layers:
                if len(outputs) == len(self.hidden_sizes):
                    break
                if isinstance(layer, Dropout):
                    continue
                out = layer.forward(out, True)
                if isinstance(layer, tuple(ACTIVATIONS.values())):
                    outputs.append(out.copy())
        finally:
            for layer, (mean, var) in zip(norms, saved, strict=True):
                layer.running_mean[...] = mean
                layer.running_var[...] = var
        return outputs

    @contextmanager
    def frozen_dropout(self) -> Iterator[None]:
        """Reuse each dropout layer's next mask for every forward pass inside the block,
        so the loss is a fixed function of the parameters (for gradient checks)."""
        dropouts = [layer for layer in self.layers if isinstance(layer, Dropout)]
        for layer in dropouts:
            layer.frozen = True
        try:
            yield
        finally:
            for layer in dropouts:
                layer.frozen = False
                layer.mask = None

    def __repr__(self) -> str:
        sizes = "-".join(str(s) for s in [self.input_size, *self.hidden_sizes, self.output_size])
        extras = "".join(
            [
                f", weight_decay={self.weight_decay:g}" if self.weight_decay else "",
                ", batchnorm" if self.batchnorm else "",
                f", dropout={self.dropout:g}" if self.dropout else "",
            ]
        )
        return (
            f"MultiLayerNet({sizes}, {self.activation}, init={self.init}, "
            f"init_scale={self.init_scale:g}{extras}, {self.dtype})"
        )


def parameter_count(
    input_size: int, hidden_sizes: Sequence[int], output_size: int, batchnorm: bool = False
) -> int:
    """How many numbers a net of these sizes learns (weights, biases, batch-norm scales
    and shifts), known before it is built."""
    shapes = _param_shapes([input_size, *hidden_sizes, output_size], batchnorm)
    return sum(math.prod(shape) for shape in shapes.values())


def _param_shapes(sizes: list[int], batchnorm: bool) -> dict[str, tuple[int, ...]]:
    """The book's parameter names and shapes in its order: W1, b1 (or gamma1, beta1), ..."""
    shapes: dict[str, tuple[int, ...]] = {}
    last = len(sizes) - 1
    for i in range(1, last + 1):
        fan_in, fan_out = sizes[i - 1], sizes[i]
        shapes[f"W{i}"] = (fan_in, fan_out)
        if i == last or not batchnorm:
            shapes[f"b{i}"] = (fan_out,)
        else:
            shapes[f"gamma{i}"] = shapes[f"beta{i}"] = (fan_out,)
    return shapes


def _activation(name: str) -> ReLU | Sigmoid | Tanh:
    # The net owns the arrays between its layers, so ReLU may work in place.
    return ReLU(inplace=True) if name == "relu" else ACTIVATIONS[name]()


def _validate(
    input_size: int,
    hidden_sizes: list[int],
    output_size: int,
    activation: str,
    init: str,
    init_scale: float,
    weight_decay: float,
) -> None:
    for name, size in [("input_size", input_size), ("output_size", output_size)]:
        if not isinstance(size, int | np.integer) or size < 1:
            raise ConfigError(f"{name} must be a positive integer, got {size!r}")
    for size in hidden_sizes:
        if not isinstance(size, int | np.integer) or size < 1:
            raise ConfigError(f"hidden sizes must be positive integers, got {hidden_sizes!r}")
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}"
        )
    if init not in INIT_RULES:
        raise ConfigError(f"unknown init rule {init!r}; choose one of {', '.join(INIT_RULES)}")
    if not (math.isfinite(init_scale) and init_scale >= 0):
        raise ConfigError(f"init_scale must be a finite number >= 0, got {init_scale!r}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ConfigError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")


def judge_probabilities(probabilities: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of predicted class probabilities (e.g. an
    ensemble's averaged ones) against labels `t` (class indices or one-hot rows)."""
    t = np.asarray(t)
    labels = t.argmax(axis=1) if t.ndim == 2 else t.reshape(-1).astype(np.int64)
    picked = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.maximum(picked, np.finfo(np.float64).tiny))))
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    return loss, accuracy
