"""One class per layer, forward() and backward() side by side, as in the book's common/.

Conventions: a batch is a 2-D array (n, features); `forward(x, train)` caches what
`backward(dout)` needs; backward returns the gradient with respect to the layer's
input and leaves parameter gradients on the layer (`dW`, `db`, `dgamma`, `dbeta`).
Parameter arrays are shared with `MultiLayerNet.params` by reference, so optimizers
must update them in place.
"""

from __future__ import annotations

import numpy as np

_BOOL = np.dtype(bool)


def _reuse(buffer: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """`buffer` when it already has this shape and dtype, else a new array: batches of one
    size allocate their activation-sized arrays once, not every step."""
    if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
        return np.empty(shape, dtype=dtype)
    return buffer


def _ones(buffer: np.ndarray | None, n: int, dtype: np.dtype) -> np.ndarray:
    if buffer is None or buffer.shape != (n,) or buffer.dtype != dtype:
        return np.ones(n, dtype=dtype)
    return buffer


class Affine:
    """y = x @ W + b, with W of shape (fan_in, fan_out); `b=None` for no bias.

    With `reuse_output`, the output array is the layer's own and is overwritten by its
    next forward call; the net uses this for hidden layers, whose outputs are consumed
    before the next step.
    """

    def __init__(
        self,
        W: np.ndarray,
        b: np.ndarray | None,
        *,
        input_grad: bool = True,
        reuse_output: bool = False,
        dW: np.ndarray | None = None,
        db: np.ndarray | None = None,
    ) -> None:
        self.W = W
        self.b = b
        # The first layer's input is data: no one needs its gradient, so skip that GEMM.
        self.input_grad = input_grad
        self.reuse_output = reuse_output
        # Gradient buffers may be given (views into the net's packed gradients).
        self.dW = np.zeros_like(W) if dW is None else dW
        self.db = None if b is None else (np.zeros_like(b) if db is None else db)
        self.x: np.ndarray | None = None
        self._out: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._ones: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.x = x
        shape = (x.shape[0], self.W.shape[1])
        dtype = np.result_type(x.dtype, self.W.dtype)
        out = _reuse(self._out, shape, dtype) if self.reuse_output else np.empty(shape, dtype)
        self._out = out if self.reuse_output else None
        np.matmul(x, self.W, out=out)
        if self.b is not None:
            out += self.b
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        np.matmul(self.x.T, dout, out=self.dW)
        if self.db is not None:
            # The column sums as a matrix-vector product, which BLAS does faster than
            # np.sum(axis=0).
            self._ones = _ones(self._ones, dout.shape[0], dout.dtype)
            np.matmul(self._ones, dout, out=self.db)
        if not self.input_grad:
            return None
        self._dx = _reuse(self._dx, self.x.shape, dout.dtype)
        return np.matmul(dout, self.W.T, out=self._dx)


class ReLU:
    """max(x, 0). With `inplace`, forward overwrites its input and backward its
    upstream gradient: the net passes arrays no one else reads."""

    def __init__(self, *, inplace: bool = False) -> None:
        self.inplace = inplace
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.mask = np.greater(x, 0, out=_reuse(self.mask, x.shape, _BOOL))
        if self.inplace:
            # Multiplying by the mask is one SIMD pass; np.maximum(x, 0), with its NaN
            # rules, was slower here.
            return np.multiply(x, self.mask, out=x)
        return x * self.mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self.inplace:
            return np.multiply(dout, self.mask, out=dout)
        return dout * self.mask


class Sigmoid:
    def __init__(self) -> None:
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        # 0.5 * (1 + tanh(x / 2)) is the logistic function without exp() overflow.
        out = np.tanh(x * 0.5)
        out += 1
        out *= 0.5
        self.out = out
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1.0 - self.out) * self.out


class Tanh:
    def __init__(self) -> None:
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1.0 - self.out * self.out)


class BatchNorm:
    """Ioffe & Szegedy batch normalisation over the batch axis.

    Training mode normalises with the batch's mean and (biased) variance and folds them
    into running statistics; eval mode uses the running statistics, so a prediction
    does not depend on which other examples share its batch.
    """

    def __init__(
        self,
        gamma: np.ndarray,
        beta: np.ndarray,
        *,
        momentum: float = 0.9,
        eps: float = 1e-5,
        dgamma: np.ndarray | None = None,
        dbeta: np.ndarray | None = None,
    ) -> None:
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.eps = eps
        self.running_mean = np.zeros_like(gamma)
        self.running_var = np.ones_like(gamma)
        self.dgamma = np.zeros_like(gamma) if dgamma is None else dgamma
        self.dbeta = np.zeros_like(beta) if dbeta is None else dbeta
        self.xn: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        if train:
            mean = x.mean(axis=0)
            xc = x - mean
            var = np.mean(xc * xc, axis=0)
            self.std = np.sqrt(var + self.eps)
            self.xn = xc / self.std
            self.running_mean *= self.momentum
            self.running_mean += (1.0 - self.momentum) * mean
            self.running_var *= self.momentum
            self.running_var += (1.0 - self.momentum) * var
            xn = self.xn
        else:
            xn = (x - self.running_mean) / np.sqrt(self.running_var + self.eps)
        return self.gamma * xn + self.beta

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n = dout.shape[0]
        np.sum(dout, axis=0, out=self.dbeta)
        np.sum(self.xn * dout, axis=0, out=self.dgamma)
        # The closed form of the book's step-by-step graph: d(xn) minus its projections
        # onto the batch mean and onto xn itself.
        return (self.gamma / self.std) * (dout - self.dbeta / n - self.xn * (self.dgamma / n))


class Dropout:
    """Inverted dropout: kept units are scaled by 1 / (1 - ratio) at training time,
    so evaluation is the identity and needs no rescaling.

    `frozen = True` reuses the last mask, which a gradient check needs to see one
    fixed function of the parameters.
    """

    def __init__(self, ratio: float, rng: np.random.Generator) -> None:
        self.ratio = ratio
        self.rng = rng
        self.mask: np.ndarray | None = None
        self.frozen = False

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        if not train or self.ratio == 0.0:
            return x
        if not (self.frozen and self.mask is not None and self.mask.shape == x.shape):
            keep = self.rng.random(x.shape, dtype=np.float64) >= self.ratio
            self.mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.ratio))
        return x * self.mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self.ratio == 0.0:
            return dout
        return dout * self.mask


class SoftmaxCrossEntropy:
    """Mean softmax cross-entropy from raw scores, stable for huge logits.

    Targets are integer labels (n,) or a distribution per row (n, classes), e.g. one-hot.
    """

    def __init__(self) -> None:
        self.prob: np.ndarray | None = None
        self.t: np.ndarray | None = None
        self._shifted: np.ndarray | None = None
        self._dz: np.ndarray | None = None
        self._arange: np.ndarray | None = None

    def forward(self, z: np.ndarray, t: np.ndarray) -> float:
        n = z.shape[0]
        shifted = self._shifted = _reuse(self._shifted, z.shape, z.dtype)
        np.subtract(z, z.max(axis=1, keepdims=True), out=shifted)
        prob = self.prob = np.exp(shifted, out=_reuse(self.prob, z.shape, z.dtype))
        total = prob.sum(axis=1, keepdims=True)
        prob /= total
        self.t = t
        log_total = np.log(total[:, 0])
        if t.ndim == 1:
            # -log p(t) = log(sum exp) - shifted[t]: only the n picked entries are needed.
            picked = shifted[self._rows(n), t]
            return float(np.mean(log_total - picked, dtype=np.float64))
        return float(((log_total[:, None] - shifted) * t).sum(dtype=np.float64) / n)

    def backward(self) -> np.ndarray:
        n = self.prob.shape[0]
        dz = self._dz = _reuse(self._dz, self.prob.shape, self.prob.dtype)
        if self.t.ndim == 1:
            np.copyto(dz, self.prob)
            dz[self._rows(n), self.t] -= 1
        else:
            np.subtract(self.prob, self.t, out=dz)
        dz *= dz.dtype.type(1.0 / n)
        return dz

    def _rows(self, n: int) -> np.ndarray:
        if self._arange is None or len(self._arange) != n:
            self._arange = np.arange(n)
        return self._arange

    @staticmethod
    def classes(z: np.ndarray) -> np.ndarray:
        """Predicted class per row of scores."""
        return z.argmax(axis=1)

    def last_classes(self) -> np.ndarray:
        """Predicted classes of the last forward pass (no second pass needed)."""
        return self.prob.argmax(axis=1)


class SigmoidBinaryCrossEntropy:
    """Mean binary cross-entropy of one logit per row against 0/1 labels, computed from
    the logit (log(1 + exp(-|z|)) form), so it stays finite for any z."""

    def __init__(self) -> None:
        self.prob: np.ndarray | None = None
        self.t: np.ndarray | None = None

    def forward(self, z: np.ndarray, t: np.ndarray) -> float:
        t = t.reshape(-1, 1).astype(z.dtype)
        self.t = t
        self.prob = 0.5 * (1.0 + np.tanh(0.5 * z))
        losses = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        return float(losses.mean(dtype=np.float64))

    def backward(self) -> np.ndarray:
        return (self.prob - self.t) / self.prob.shape[0]

    @staticmethod
    def classes(z: np.ndarray) -> np.ndarray:
        return (z[:, 0] > 0).astype(np.int64)

    def last_classes(self) -> np.ndarray:
        return (self.prob[:, 0] > 0.5).astype(np.int64)
