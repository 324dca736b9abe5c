"""Named arrays that live in one contiguous buffer.

A 6x100 net has 14 parameter arrays. Updating them one by one costs 14 NumPy calls
per operation of the update rule, each with its own dispatch overhead, on arrays
as small as 10 numbers: at the usual batch sizes that overhead is a visible share
of a training step. Packed into one buffer, with every weight matrix first, an
elementwise update, the weight decay of all weights or their squared norm is one or
two calls each.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class PackedArrays(dict[str, np.ndarray]):
    """A dict of named views into `flat`; the arrays named in `weights` come first, so
    that `weights` is one contiguous view of all of them.

    Views are written in place (`packed[k][...] = x`, `packed[k] -= g`); assigning a new
    array to a key would detach it from the buffer, so that is refused.
    """

    def __init__(
        self, shapes: Mapping[str, tuple[int, ...]], weights: list[str], dtype: np.dtype
    ) -> None:
        super().__init__()
        order = [*weights, *(key for key in shapes if key not in weights)]
        sizes = {key: int(np.prod(shapes[key])) for key in order}
        self.flat = np.zeros(sum(sizes.values()), dtype=dtype)
        self.layout = tuple((key, tuple(shapes[key])) for key in order)
        views: dict[str, np.ndarray] = {}
        offset = 0
        for key in order:
            views[key] = self.flat[offset : offset + sizes[key]].reshape(shapes[key])
            offset += sizes[key]
        self.weights = self.flat[: sum(sizes[key] for key in weights)]
        for key in shapes:  # the caller's order, e.g. W1, b1, W2, b2, ...
            super().__setitem__(key, views[key])

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        raise TypeError(f"{key!r} is a view into a packed buffer: write into it with [...]")


def packed_alike(params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> bool:
    """Whether one elementwise operation on the two flat buffers updates every array."""
    return (
        isinstance(params, PackedArrays)
        and isinstance(grads, PackedArrays)
        and params.layout == grads.layout
        and params.flat.dtype == grads.flat.dtype
    )


def axpy(a: float, x: np.ndarray, y: np.ndarray, scratch: np.ndarray) -> None:
    """y += a * x in place, through `scratch` (x's shape and dtype): no temporary array.

    Not BLAS axpy: that runs in SciPy's own OpenBLAS, whose threads, next to NumPy's
    in a process without a one-thread limit, slowed a training step many times over."""
    np.multiply(x, a, out=scratch)
    np.add(y, scratch, out=y)
