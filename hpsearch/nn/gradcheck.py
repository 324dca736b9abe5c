"""Numerical gradients by central differences, to check backprop against.

Use a float64 net: float32 rounding swamps the O(h**2) difference error.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hpsearch.nn.net import MultiLayerNet


def numerical_gradient(f: Callable[[], float], param: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """d f / d param, perturbing `param` in place one entry at a time and restoring it."""
    grad = np.zeros(param.shape, dtype=np.float64)
    flat = param.reshape(-1)  # a view: writes reach the array f() reads
    grad_flat = grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + h
        f_plus = f()
        flat[i] = original - h
        f_minus = f()
        flat[i] = original
        grad_flat[i] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||): scale-free, and robust to the odd ReLU kink."""
    diff = np.linalg.norm(analytic - numeric)
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if scale == 0.0 else float(diff / scale)


def check_gradients(
    net: MultiLayerNet, x: np.ndarray, t: np.ndarray, h: float = 1e-5
) -> dict[str, float]:
    """Relative error between backprop and numerical gradients, per parameter.

    Dropout masks are frozen for the duration, so both see the same function.
    """
    with net.frozen_dropout():
        analytic = {k: g.copy() for k, g in net.gradient(x, t).items()}
        return {
            key: relative_error(
                analytic[key],
                numerical_gradient(lambda: net.loss(x, t, train=True), net.params[key], h),
            )
            for key in net.params
        }
