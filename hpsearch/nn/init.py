"""Weight initialisation rules, with the search's init scale as a gain on the rule.

`init_scale = 1.0` is the textbook rule (Xavier: 1/sqrt(fan_in), He: sqrt(2/fan_in)),
so a log-scale search over the gain is centred on theory; for `normal` the scale is
the absolute std, which reproduces the reference experiments' std = 0.01 or 1.
"""

from __future__ import annotations

import math

import numpy as np

from hpsearch.errors import ConfigError

INIT_RULES = ("zeros", "normal", "xavier", "he")


def weight_std(rule: str, fan_in: int, init_scale: float = 1.0) -> float:
    """Standard deviation of a weight matrix with `fan_in` inputs under `rule`."""
    if rule == "zeros":
        return 0.0
    if rule == "normal":
        return init_scale
    if rule == "xavier":
        return init_scale / math.sqrt(fan_in)
    if rule == "he":
        return init_scale * math.sqrt(2.0 / fan_in)
    raise ConfigError(f"unknown init rule {rule!r}; choose one of {', '.join(INIT_RULES)}")


def init_weights(
    rule: str,
    fan_in: int,
    fan_out: int,
    *,
    init_scale: float,
    rng: np.random.Generator,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """A (fan_in, fan_out) weight matrix drawn from N(0, weight_std**2).

    Draws in float64 and casts, so a float32 and a float64 net built from the same
    seed hold the same weights up to rounding.
    """
    std = weight_std(rule, fan_in, init_scale)
    if std == 0.0:
        return np.zeros((fan_in, fan_out), dtype=dtype)
    return (rng.standard_normal((fan_in, fan_out)) * std).astype(dtype)
