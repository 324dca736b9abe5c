"""`make bench` counts the FLOPs the net does, not a rule of thumb: its count equals the
matrix products one training step of the benchmark's net actually calls."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from hpsearch.nn import layers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from benchkit.workloads import SIZES, step_flops, training_step


class CountingNumpy:
    """numpy, with every matmul's FLOPs (2 x m x k x n) added up."""

    def __init__(self) -> None:
        self.flops = 0

    def __getattr__(self, name: str):
        return getattr(np, name)

    def matmul(self, a, b, out=None):
        rows = a.shape[0] if a.ndim == 2 else 1
        columns = b.shape[1] if b.ndim == 2 else 1
        self.flops += 2 * rows * a.shape[-1] * columns
        return np.matmul(a, b, out=out)


@pytest.mark.parametrize("batch", [100, 500])
def test_the_benchmarks_flop_count_is_the_products_a_training_step_calls(batch, monkeypatch):
    step = training_step(batch)
    step()  # the first step also sizes the buffers
    counting = CountingNumpy()
    monkeypatch.setattr(layers, "np", counting)
    step()
    assert counting.flops == step_flops(batch)
    # The old rule of thumb, 6 x batch x weights, counted the first layer's input
    # gradient, which the net never computes.
    weights = sum(a * b for a, b in itertools.pairwise(SIZES))
    assert step_flops(batch) < 6 * batch * weights
