"""Parameter update rules with the book's default hyperparameters (chapter 6.1).

Every optimizer updates `params` in place, because the layers hold references to
those arrays; per-parameter state is created on the first update.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from hpsearch.errors import ConfigError
from hpsearch.nn.packed import axpy, packed_alike

Arrays = dict[str, np.ndarray]


class Optimizer(Protocol):
    lr: float

    def update(self, params: Arrays, grads: Arrays) -> None: ...


def _pairs(params: Arrays, grads: Arrays) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(state key, parameter, gradient) to update: the whole flat buffer at once when
    params and grads are packed alike (a net's), else each array of `grads`."""
    if packed_alike(params, grads):
        return [("*", params.flat, grads.flat)]
    return [(key, params[key], grad) for key, grad in grads.items()]


class _Scratch:
    """One scratch array per parameter, so an update allocates nothing weight-sized."""

    def __init__(self) -> None:
        self._arrays: Arrays = {}

    def like(self, key: str, array: np.ndarray) -> np.ndarray:
        out = self._arrays.get(key)
        if out is None or out.shape != array.shape or out.dtype != array.dtype:
            out = self._arrays[key] = np.empty_like(array)
        return out


class SGD:
    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr
        self._scratch = _Scratch()

    def update(self, params: Arrays, grads: Arrays) -> None:
        for key, param, grad in _pairs(params, grads):
            axpy(-self.lr, grad, param, self._scratch.like(key, grad))


class Momentum:
    """v = momentum * v - lr * g;  p += v."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr = lr
        self.momentum = momentum
        self.v: Arrays = {}
        self._scratch = _Scratch()

    def update(self, params: Arrays, grads: Arrays) -> None:
        for key, param, grad in _pairs(params, grads):
            v = self.v.setdefault(key, np.zeros_like(grad))
            v *= self.momentum
            axpy(-self.lr, grad, v, self._scratch.like(key, grad))
            param += v


class Nesterov(Momentum):
    """Nesterov's accelerated gradient in the book's form (Sutskever et al. 2013)."""

    def update(self, params: Arrays, grads: Arrays) -> None:
        m = self.momentum
        for key, param, grad in _pairs(params, grads):
            v = self.v.setdefault(key, np.zeros_like(grad))
            scratch = self._scratch.like(key, grad)
            v *= m
            axpy(-self.lr, grad, v, scratch)
            axpy(m * m, v, param, scratch)
            axpy(-(1 + m) * self.lr, grad, param, scratch)


class AdaGrad:
    """Per-parameter step lr / sqrt(sum of squared gradients)."""

    def __init__(self, lr: float = 0.01, eps: float = 1e-7) -> None:
        self.lr = lr
        self.eps = eps
        self.h: Arrays = {}

    def update(self, params: Arrays, grads: Arrays) -> None:
        for key, param, grad in _pairs(params, grads):
            h = self.h.setdefault(key, np.zeros_like(grad))
            h += grad * grad
            param -= self.lr * grad / (np.sqrt(h) + self.eps)


class RMSprop:
    """AdaGrad with an exponentially decaying sum, so steps do not shrink forever."""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99, eps: float = 1e-7) -> None:
        self.lr = lr
        self.decay_rate = decay_rate
        self.eps = eps
        self.h: Arrays = {}

    def update(self, params: Arrays, grads: Arrays) -> None:
        for key, param, grad in _pairs(params, grads):
            h = self.h.setdefault(key, np.zeros_like(grad))
            h *= self.decay_rate
            h += (1 - self.decay_rate) * grad * grad
            param -= self.lr * grad / (np.sqrt(h) + self.eps)


class Adam:
    """Kingma & Ba, with the bias corrections folded into the step size as in the book."""

    def __init__(
        self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7
    ) -> None:
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.iter = 0
        self.m: Arrays = {}
        self.v: Arrays = {}

    def update(self, params: Arrays, grads: Arrays) -> None:
        self.iter += 1
        lr_t = self.lr * math.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        for key, param, grad in _pairs(params, grads):
            m = self.m.setdefault(key, np.zeros_like(grad))
            v = self.v.setdefault(key, np.zeros_like(grad))
            m += (1 - self.beta1) * (grad - m)
            v += (1 - self.beta2) * (grad * grad - v)
            param -= lr_t * m / (np.sqrt(v) + self.eps)


OPTIMIZERS: dict[str, type] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}


def make_optimizer(name: str, lr: float | None = None, **options: float) -> Optimizer:
    """An optimizer by name; `lr=None` keeps the book's default for that rule."""
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"learning rate must be a finite number > 0, got {lr!r}")
    if lr is not None:
        options["lr"] = lr
    try:
        return OPTIMIZERS[key](**options)
    except TypeError as exc:
        raise ConfigError(f"optimizer {key!r} does not take {sorted(options)}: {exc}") from None
