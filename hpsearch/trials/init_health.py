"""Whether a freshly built net can learn at all, read from its hidden layers'
activations at init: a collapsed signal or saturated units end a trial before it trains
(`[search.init_health]`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hpsearch.spec import InitHealth

# Optimizers whose step is proportional to the gradient: a collapsed signal shrinks their
# steps by the same factor. Adaptive ones (adagrad, rmsprop, adam) rescale it away.
PROPORTIONAL_STEP = frozenset({"sgd", "momentum", "nesterov"})
# (centre, half-width): a unit beyond centre +- half-width is pinned at a limit, where
# the derivative is under 1/25 (sigmoid) or 1/50 (tanh) of its peak.
PINNED = {"sigmoid": (0.5, 0.49), "tanh": (0.0, 0.99)}


def pinned_fraction(activations: Sequence[np.ndarray], activation: str) -> list[float]:
    """Per hidden layer, the fraction of activations pinned at the activation's limits
    (none for relu, which has no upper limit)."""
    if activation not in PINNED:
        return []
    centre, half_width = PINNED[activation]
    return [float(np.mean(np.abs(a - centre) > half_width)) for a in activations]


def init_problem(
    std: Sequence[float],
    pinned: Sequence[float],
    optimizer: str,
    rule: InitHealth,
) -> str | None:
    """Why a freshly built net cannot learn, from its hidden layers' activation std and
    pinned fractions at init, or None if it looks healthy (see `hpsearch.spec.InitHealth`)."""
    for layer, value in enumerate(std, start=1):
        if value == 0.0:
            return (
                f"init-health: signal collapsed: hidden layer {layer} of {len(std)} gives "
                "one value for every unit and example (activation std 0)"
            )
    if std and optimizer in PROPORTIONAL_STEP and std[-1] < rule.collapse * std[0]:
        return (
            f"init-health: signal collapsed: the last hidden layer's activation std "
            f"{std[-1]:.3g} is {std[-1] / std[0]:.3g} of the first's (collapse = "
            f"{rule.collapse:g}), and {optimizer} steps shrink with it"
        )
    for layer, fraction in enumerate(pinned, start=1):
        if fraction > rule.saturation:
            return (
                f"init-health: saturated: {fraction:.0%} of hidden layer {layer}'s "
                f"activations are pinned at their limits (saturation = {rule.saturation:g})"
            )
    return None
