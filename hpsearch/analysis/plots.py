"""Figures of a study: matplotlib Figure objects (no pyplot, no display), saved as PNG.

Each function takes plain data (the frames of `analysis`, a Narrowing) and returns
a Figure; `report.write_report` decides where they go.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from hpsearch.analysis.narrowing import Narrowing, RangeChange
from hpsearch.records import TRAIN_ACCURACY, VAL_ACCURACY, Metric


def best_curves(
    curves: pd.DataFrame, trials: pd.DataFrame, metric: Metric = VAL_ACCURACY, n: int = 20
) -> Figure:
    """The book's "Best-1 ... Best-20" grid: the study's value per epoch (solid) and, for
    hpsearch's network, its train accuracy (dashed), for the best completed trials."""
    complete = trials[trials["state"] == "COMPLETE"].nlargest(n, "value")
    columns = 5
    rows = max(1, math.ceil(len(complete) / columns))
    figure = Figure(figsize=(3.0 * columns, 2.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, sharey=True)
    for ax in axes.flat:
        ax.set_visible(False)
    for rank, (ax, row) in enumerate(zip(axes.flat, complete.itertuples(), strict=False), 1):
        ax.set_visible(True)
        mine = curves[curves["number"] == row.number]
        for name, style, label in (
            (metric.name, "-", metric.short),
            ("intermediate", "-", metric.short),
            (TRAIN_ACCURACY, "--", "train acc"),
        ):
            curve = mine[mine["metric"] == name]
            if len(curve):
                ax.plot(curve["epoch"], curve["value"], style, label=label)
        ax.set_title(f"Best-{rank} (trial {row.number}): {row.value:.3f}", fontsize=9)
        if metric.unit_interval:
            ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    if len(complete):
        axes.flat[0].legend(fontsize=7, loc="lower right")
    trained = len(curves) and bool((curves["metric"] == TRAIN_ACCURACY).any())
    dashed = ", train accuracy (dashed)" if trained else ""
    figure.suptitle(f"Best trials: {metric.label} per epoch (solid){dashed}")
    return figure


def log_float_params(trials: pd.DataFrame) -> list[str]:
    return [c.removeprefix("log10_") for c in trials.columns if c.startswith("log10_")]


def value_map(
    trials: pd.DataFrame,
    x: str,
    y: str,
    narrowing: Narrowing | None = None,
    metric: Metric = VAL_ACCURACY,
) -> Figure:
    """The study's value (on accuracy's fixed [0, 1] scale, or on its own) over two
    log-scale parameters; pruned and diverged trials marked; the old (dashed) and
    narrowed (solid) search box drawn."""
    value = metric.label
    scale = {"vmin": 0, "vmax": 1} if metric.unit_interval else {}
    figure = Figure(figsize=(7, 5.5), layout="constrained")
    ax = figure.subplots()
    complete = trials[trials["state"] == "COMPLETE"]
    diverged = trials[trials["diverged"].astype(bool)]
    pruned = trials[(trials["state"] == "PRUNED") & ~trials["diverged"].astype(bool)]
    points = ax.scatter(
        complete[x],
        complete[y],
        c=complete["value"],
        cmap="viridis",
        **scale,
        s=28,
        edgecolors="k",
        linewidths=0.3,
        label="complete",
    )
    ax.scatter(pruned[x], pruned[y], marker="x", color="0.55", s=18, label="pruned")
    ax.scatter(diverged[x], diverged[y], marker="x", color="red", s=22, label="diverged")
    figure.colorbar(points, ax=ax, label=value)
    if narrowing is not None and x in narrowing.changes and y in narrowing.changes:
        cx, cy = narrowing.changes[x], narrowing.changes[y]
        if isinstance(cx, RangeChange) and isinstance(cy, RangeChange):
            for (xs, ys), style, label in (
                ((cx.old, cy.old), "--", "old range"),
                ((cx.new, cy.new), "-", "narrowed range"),
            ):
                ax.add_patch(
                    Rectangle(
                        (xs[0], ys[0]),
                        xs[1] - xs[0],
                        ys[1] - ys[0],
                        fill=False,
                        linestyle=style,
                        linewidth=1.5,
                        edgecolor="tab:orange",
                        label=label,
                    )
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"{value.capitalize()} over {x} and {y}")
    return figure


def ranges_by_round(lineage: Sequence[tuple[int, str, dict[str, Any]]]) -> Figure:
    """Each parameter's searched range, round after round (from study user attrs)."""
    names = sorted({name for _, _, ranges in lineage for name, r in ranges.items() if "low" in r})
    figure = Figure(figsize=(3.2 * max(1, len(names)), 3.6), layout="constrained")
    axes = figure.subplots(1, max(1, len(names)), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=False):
        for round_number, _, ranges in lineage:
            bounds = ranges.get(name)
            if bounds is None or "low" not in bounds:
                continue
            ax.plot(
                [round_number, round_number],
                [bounds["low"], bounds["high"]],
                linewidth=8,
                solid_capstyle="butt",
                color="tab:blue",
                alpha=0.7,
            )
            if bounds.get("log"):
                ax.set_yscale("log")
        ax.set_xticks([r for r, _, _ in lineage])
        ax.set_xlabel("round")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    figure.suptitle("Searched range per round")
    return figure


def reference_gains(init: str, width: int) -> dict[str, float]:
    """Where textbook Xavier and He sit on the init-scale axis of a study: init_scale is
    a gain on the rule's std, except for `normal`, where it is the std itself (for
    `width` inputs)."""
    if init == "xavier":
        return {"Xavier": 1.0, "He": math.sqrt(2.0)}
    if init == "he":
        return {"Xavier": 1.0 / math.sqrt(2.0), "He": 1.0}
    return {"Xavier": 1.0 / math.sqrt(width), "He": math.sqrt(2.0 / width)}


def value_by_init_scale(
    trials: pd.DataFrame, init: str, width: int, metric: Metric = VAL_ACCURACY
) -> Figure:
    """The study's value against log init scale, with Xavier's and He's gains marked."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    finished = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    complete = finished[finished["state"] == "COMPLETE"]
    ax.scatter(complete["init_scale"], complete["value"], s=20, label="complete")
    others = finished[finished["state"] == "PRUNED"]
    ax.scatter(
        others["init_scale"],
        others["value"],
        marker="x",
        color="0.55",
        s=16,
        label="pruned (last reported)",
    )
    for (label, gain), color in zip(
        reference_gains(init, width).items(), ("tab:green", "tab:red"), strict=True
    ):
        ax.axvline(gain, color=color, linestyle="--", label=f"{label} ({gain:.3g})")
    ax.set_xscale("log")
    if metric.unit_interval:
        ax.set_ylim(0, 1.02)
    axis = "init scale (std)" if init == "normal" else f"init scale (gain on {init})"
    ax.set_xlabel(axis)
    ax.set_ylabel(metric.label)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{metric.label.capitalize()} against init scale")
    return figure


def save(figure: Figure, path: Any) -> None:
    figure.savefig(path, dpi=110)


__all__ = [
    "best_curves",
    "log_float_params",
    "ranges_by_round",
    "reference_gains",
    "save",
    "value_by_init_scale",
    "value_map",
]
