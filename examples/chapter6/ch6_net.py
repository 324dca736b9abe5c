"""The book's chapter-6 search ("Deep Learning from Scratch", 6.5) with training code of
your own: a small NumPy net, SGD with weight decay, one validation accuracy per epoch.
`objective` is all hpsearch needs; the spec next to this file says what to search.

    hpsearch run examples/chapter6/ch6.toml
"""

import numpy as np


class TwoLayerNet:
    """Affine - ReLU - Affine - softmax, He init, L2 weight decay on both weights."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, weight_decay: float, rng) -> None:
        self.W1 = rng.standard_normal((n_in, n_hidden)) * np.sqrt(2.0 / n_in)
        self.b1 = np.zeros(n_hidden)
        self.W2 = rng.standard_normal((n_hidden, n_out)) * np.sqrt(2.0 / n_hidden)
        self.b2 = np.zeros(n_out)
        self.weight_decay = weight_decay

    def scores(self, x):
        self.x, self.h = x, np.maximum(0.0, x @ self.W1 + self.b1)
        return self.h @ self.W2 + self.b2

    def sgd_step(self, x, t, lr: float) -> float:
        z = self.scores(x)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(len(t)), t] + 1e-7))
        dz = p
        dz[np.arange(len(t)), t] -= 1.0
        dz /= len(t)
        dh = (dz @ self.W2.T) * (self.h > 0)
        self.W2 -= lr * (self.h.T @ dz + self.weight_decay * self.W2)
        self.b2 -= lr * dz.sum(axis=0)
        self.W1 -= lr * (self.x.T @ dh + self.weight_decay * self.W1)
        self.b1 -= lr * dh.sum(axis=0)
        return float(loss)

    def accuracy(self, x, t) -> float:
        return float(np.mean(self.scores(x).argmax(axis=1) == t))


def objective(config, report, data, rng) -> float:
    wd = config["weight_decay"]
    net = TwoLayerNet(data.input_size, config["hidden"], data.n_classes, wd, rng)
    batches = max(1, len(data.t_train) // config.batch_size)
    for epoch in range(1, config.epochs + 1):
        order = rng.permutation(len(data.t_train))
        losses = [
            net.sgd_step(data.x_train[b], data.t_train[b], config["lr"])
            for b in np.array_split(order[: batches * config.batch_size], batches)
        ]
        report(epoch, net.accuracy(data.x_val, data.t_val), train_loss=float(np.mean(losses)))
    return net.accuracy(data.x_val, data.t_val)
