"""The baseline: the book's MultiLayerNet (ch. 6, common/multi_layer_net.py and
common/layers.py) as the book writes it, in float64, with plain SGD."""

from __future__ import annotations

import itertools

import numpy as np


class BookAffine:
    """common/layers.py's Affine: keeps x, returns dx even for the input layer."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W, b

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


class BookRelu:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout[self.mask] = 0
        return dout


def book_softmax(x: np.ndarray) -> np.ndarray:
    x = x.T
    x = x - np.max(x, axis=0)
    return (np.exp(x) / np.sum(np.exp(x), axis=0)).T


class BookSoftmaxWithLoss:
    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        self.t = t
        self.y = book_softmax(x)
        batch_size = self.y.shape[0]
        return -np.sum(np.log(self.y[np.arange(batch_size), t] + 1e-7)) / batch_size

    def backward(self, dout: float = 1) -> np.ndarray:
        batch_size = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(batch_size), self.t] -= 1
        return dx / batch_size


class BookNet:
    """The book's MultiLayerNet with He init and ReLU. `gradient` runs `loss` (forward,
    softmax, cross-entropy and the L2 term over every W), backpropagates through every
    layer including the input's dx, and adds weight decay to each dW; SGD is
    `params[key] -= lr * grads[key]`."""

    def __init__(self, rng: np.random.Generator, sizes: list[int], weight_decay: float) -> None:
        self.weight_decay = weight_decay
        self.params: dict[str, np.ndarray] = {}
        self.layers: list[BookAffine | BookRelu] = []
        self.affines: list[BookAffine] = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), 1):
            self.params[f"W{i}"] = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)
            self.params[f"b{i}"] = np.zeros(fan_out)
            affine = BookAffine(self.params[f"W{i}"], self.params[f"b{i}"])
            self.affines.append(affine)
            self.layers.append(affine)
            if i < len(sizes) - 1:
                self.layers.append(BookRelu())
        self.last_layer = BookSoftmaxWithLoss()

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        for layer in self.layers:
            x = layer.forward(x)
        weight_decay = 0.0
        for affine in self.affines:
            weight_decay += 0.5 * self.weight_decay * np.sum(affine.W**2)
        return self.last_layer.forward(x, t) + weight_decay

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads = {}
        for i, affine in enumerate(self.affines, 1):
            grads[f"W{i}"] = affine.dW + self.weight_decay * affine.W
            grads[f"b{i}"] = affine.db
        return grads
