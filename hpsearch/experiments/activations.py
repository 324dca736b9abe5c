"""Activation statistics per layer at init: the reference articles' histograms.

1,000 x 100 standard-normal inputs through 5 layers of 100 units (and 10 layers of 500
tanh units), for each activation and weight std 1, 0.01, Xavier (1/sqrt(n)) and He
(sqrt(2/n)), with the network the search trains (MultiLayerNet.hidden_activations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hpsearch.experiments.common import ExperimentResult
from hpsearch.nn import MultiLayerNet

# (label, init rule, init_scale): init="normal" takes the std itself.
WEIGHTS = [
    ("std 1", "normal", 1.0),
    ("std 0.01", "normal", 0.01),
    ("Xavier", "xavier", 1.0),
    ("He", "he", 1.0),
]
ACTIVATION_NAMES = ("sigmoid", "tanh", "relu")


def layer_stats(
    activation: str,
    init: str,
    scale: float,
    *,
    width: int,
    depth: int,
    samples: int,
    seed: int,
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, width))
    net = MultiLayerNet(
        width,
        [width] * depth,
        1,
        activation=activation,
        init=init,
        init_scale=scale,
        output="sigmoid",
        dtype=np.float64,
        rng=rng,
    )
    return net.hidden_activations(x)


def run(
    out: Path,
    seed: int = 0,
    *,
    samples: int = 1000,
    width: int = 100,
    depth: int = 5,
    deep_width: int = 500,
    deep_depth: int = 10,
) -> ExperimentResult:
    rows = []
    result = ExperimentResult("activations", pd.DataFrame())
    outputs: dict[tuple[str, str], list[np.ndarray]] = {}
    for activation in ACTIVATION_NAMES:
        for label, init, scale in WEIGHTS:
            layers = layer_stats(
                activation, init, scale, width=width, depth=depth, samples=samples, seed=seed
            )
            outputs[activation, label] = layers
            rows += [
                _row(f"{depth}x{width}", activation, label, i, a) for i, a in enumerate(layers, 1)
            ]
        result.save(_histograms(outputs, activation, depth), out, f"activations_{activation}.png")
    deep: dict[tuple[str, str], list[np.ndarray]] = {}
    for label, init, scale in WEIGHTS:
        layers = layer_stats(
            "tanh", init, scale, width=deep_width, depth=deep_depth, samples=samples, seed=seed
        )
        deep["tanh", label] = layers
        rows += [
            _row(f"{deep_depth}x{deep_width}", "tanh", label, i, a) for i, a in enumerate(layers, 1)
        ]
    result.save(_histograms(deep, "tanh", deep_depth), out, "activations_tanh_deep.png")
    result.table = pd.DataFrame(rows)
    result.save(_std_by_layer(result.table), out, "activation_std_by_layer.png")
    result.findings = findings(result.table, depth)
    return result


def _row(net: str, activation: str, weights: str, layer: int, a: np.ndarray) -> dict:
    """Mean, std, and the fraction of units pinned near a saturating limit (sigmoid: 0
    or 1, tanh: -1 or 1), where the gradient vanishes."""
    if activation == "sigmoid":
        saturated = float(np.mean((a < 0.02) | (a > 0.98)))
    elif activation == "tanh":
        saturated = float(np.mean(np.abs(a) > 0.96))
    else:
        saturated = float("nan")
    return {
        "net": net,
        "activation": activation,
        "weights": weights,
        "layer": layer,
        "mean": float(a.mean()),
        "std": float(a.std()),
        "saturated": saturated,
    }


def _histograms(outputs, activation: str, depth: int) -> Figure:
    """One row per weight scale, one column per layer. ReLU rows show the positive
    units only (the zeros are half of them by construction) on the row's own range, so
    a width that shrinks or explodes with depth is visible."""
    figure = Figure(figsize=(2.2 * depth, 1.9 * len(WEIGHTS)), layout="constrained")
    axes = figure.subplots(len(WEIGHTS), depth, squeeze=False)
    for row, (label, _, _) in enumerate(WEIGHTS):
        layers = outputs[activation, label]
        if activation == "relu":
            layers = [values[values > 0] for values in layers]
            top = max(float(np.percentile(values, 99)) for values in layers if values.size)
            span = (0.0, top)
        else:
            span = (0.0, 1.0) if activation == "sigmoid" else (-1.0, 1.0)
        for layer, values in enumerate(layers):
            ax = axes[row][layer]
            ax.hist(values.ravel(), bins=30, range=span, color="tab:blue")
            ax.set_yticks([])
            ax.tick_params(labelsize=7)
            if row == 0:
                ax.set_title(f"layer {layer + 1}", fontsize=9)
            if layer == 0:
                ax.set_ylabel(label, fontsize=9)
    note = " (positive units, each row on its own scale)" if activation == "relu" else ""
    figure.suptitle(f"{activation}: activation histograms per layer and weight scale{note}")
    return figure


def _std_by_layer(table: pd.DataFrame) -> Figure:
    nets = list(dict.fromkeys(table["net"]))
    groups = [
        (net, act)
        for net in nets
        for act in dict.fromkeys(table[table["net"] == net]["activation"])
    ]
    figure = Figure(figsize=(3.4 * len(groups), 3.2), layout="constrained")
    axes = figure.subplots(1, len(groups), squeeze=False)[0]
    for ax, (net, activation) in zip(axes, groups, strict=True):
        part = table[(table["net"] == net) & (table["activation"] == activation)]
        for label, rows in part.groupby("weights", sort=False):
            ax.plot(rows["layer"], rows["std"], "o-", label=label)
        ax.set_yscale("log")
        ax.set_title(f"{activation} ({net})", fontsize=10)
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("activation std")
    axes[0].legend(fontsize=8)
    return figure


def findings(table: pd.DataFrame, depth: int) -> list[str]:
    def std(activation: str, weights: str, layer: int) -> float:
        row = table[
            (table["net"] == table["net"].iloc[0])
            & (table["activation"] == activation)
            & (table["weights"] == weights)
            & (table["layer"] == layer)
        ]
        return float(row["std"].iloc[0])

    return [
        f"ReLU + He: layer {depth} std {std('relu', 'He', depth):.3f} vs layer 1 "
        f"{std('relu', 'He', 1):.3f} (kept)",
        f"ReLU + Xavier: layer {depth} std {std('relu', 'Xavier', depth):.3f} vs layer 1 "
        f"{std('relu', 'Xavier', 1):.3f} (shrinks with depth)",
        f"std 0.01: sigmoid layer {depth} std {std('sigmoid', 'std 0.01', depth):.2e} "
        "(all units output ~0.5)",
    ]
