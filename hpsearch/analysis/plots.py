"""Figures of a study: matplotlib Figure objects (no pyplot, no display), saved as PNG.

Each function takes plain data (the frames of `analysis`, a Narrowing) and returns
a Figure; `report.write_report` decides where they go. "Best" is the study's: each
objective in its own direction, trials outside the constraints never among the best,
and colour scales turned so that the good end is always yellow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from hpsearch.analysis.narrowing import Narrowing, RangeChange, best_first
from hpsearch.records import (
    TRAIN_ACCURACY,
    TRAIN_LOSS,
    VAL_ACCURACY,
    VAL_LOSS,
    Metric,
    value_text,
)

OUTSIDE = "outside the constraints"  # the legend's name for infeasible completed trials
# The train curve drawn dashed beside an objective's curve: on the same scale.
TRAIN_CURVES = {VAL_LOSS.name: (TRAIN_LOSS, "train loss")}
DEFAULT_TRAIN_CURVE = (TRAIN_ACCURACY, "train acc")


def objectives_in(trials: pd.DataFrame, metric: Metric | None = None) -> tuple[Metric, ...]:
    """The objectives a trials frame holds (`trials_frame` keeps them in its attrs),
    with `metric` first when given; hpsearch's network's when the frame says nothing."""
    objectives = tuple(trials.attrs.get("objectives") or (metric or VAL_ACCURACY,))
    if metric is not None and metric != objectives[0]:
        return (metric, *(m for m in objectives if m != metric))
    return objectives


def axis_label(metric: Metric) -> str:
    """What an axis or colour bar showing a metric says: its label and which way is better."""
    return f"{metric.label} ({metric.better})"


def _feasible(trials: pd.DataFrame) -> pd.Series:
    if "feasible" not in trials:
        return pd.Series(True, index=trials.index)
    return trials["feasible"].astype(bool)


def _first_of(objectives: tuple[Metric, ...]) -> str:
    """A title's note that a figure shows the first of several objectives only."""
    return f" (the first of {len(objectives)} objectives)" if len(objectives) > 1 else ""


def _mark_outside(ax: Axes, trials: pd.DataFrame, x: str, y: str) -> None:
    """Completed trials outside the constraints, as hollow squares, when there are any."""
    outside = trials[(trials["state"] == "COMPLETE") & ~_feasible(trials)]
    if len(outside):
        ax.scatter(
            outside[x],
            outside[y],
            marker="s",
            facecolors="none",
            edgecolors="tab:purple",
            linewidths=1.0,
            s=30,
            label=OUTSIDE,
        )


def best_curves(
    curves: pd.DataFrame,
    trials: pd.DataFrame,
    objectives: tuple[Metric, ...] | None = None,
    n: int = 20,
) -> Figure:
    """The book's "Best-1 ... Best-20" grid: the study's (first) value per epoch (solid)
    and its train counterpart (dashed) when recorded, for the best completed feasible
    trials; with several objectives, the Pareto front's first."""
    objectives = objectives or objectives_in(trials)
    metric = objectives[0]
    several = len(objectives) > 1
    best = best_first(trials, objectives).head(n)
    train, train_label = TRAIN_CURVES.get(metric.name, DEFAULT_TRAIN_CURVE)
    columns = 5
    rows = max(1, math.ceil(len(best) / columns))
    figure = Figure(figsize=(3.0 * columns, 2.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, sharey=True)
    for ax in axes.flat:
        ax.set_visible(False)
    for rank, (ax, row) in enumerate(zip(axes.flat, best.to_dict("records"), strict=False), 1):
        ax.set_visible(True)
        mine = curves[curves["number"] == row["number"]]
        for name, style, label in (
            (metric.name, "-", metric.short),
            ("intermediate", "-", metric.short),
            (train, "--", train_label),
        ):
            curve = mine[mine["metric"] == name]
            if len(curve):
                ax.plot(curve["epoch"], curve["value"], style, label=label)
        front = f", front {int(row['front'])}" if several else ""
        ax.set_title(
            f"Best-{rank} (trial {row['number']}{front}): {value_text(row['value'], decimals=3)}",
            fontsize=9,
        )
        if metric.unit_interval:
            ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    if len(best) and axes.flat[0].get_legend_handles_labels()[0]:  # the best has curves
        axes.flat[0].legend(fontsize=7, loc="best")
    trained = len(curves) and bool((curves["metric"] == train).any())
    dashed = f", {train.replace('_', ' ')} (dashed)" if trained else ""
    order = "by Pareto front, then " if several else "by "
    figure.suptitle(
        f"Best trials {order}{axis_label(metric)}, per epoch: {metric.label} (solid){dashed}"
    )
    return figure


def log_float_params(trials: pd.DataFrame) -> list[str]:
    return [c.removeprefix("log10_") for c in trials.columns if c.startswith("log10_")]


def value_map(
    trials: pd.DataFrame,
    x: str,
    y: str,
    narrowing: Narrowing | None = None,
    metric: Metric | None = None,
) -> Figure:
    """The study's (first) value over two log-scale parameters, coloured so that the good
    end is yellow whichever way the metric goes (on a fixed [0, 1] scale for a metric in
    it); trials outside the constraints, pruned and diverged ones marked; the old
    (dashed) and narrowed (solid) search box drawn."""
    objectives = objectives_in(trials, metric)
    metric = objectives[0]
    scale = {"vmin": 0, "vmax": 1} if metric.unit_interval else {}
    figure = Figure(figsize=(7, 5.5), layout="constrained")
    ax = figure.subplots()
    diverged_rows = trials["diverged"].astype(bool)
    complete = trials[(trials["state"] == "COMPLETE") & _feasible(trials)]
    diverged = trials[diverged_rows]
    pruned = trials[(trials["state"] == "PRUNED") & ~diverged_rows]
    points = ax.scatter(
        complete[x],
        complete[y],
        c=complete["value"],
        cmap="viridis" if metric.maximized else "viridis_r",
        **scale,
        s=28,
        edgecolors="k",
        linewidths=0.3,
        label="complete",
    )
    _mark_outside(ax, trials, x, y)
    ax.scatter(pruned[x], pruned[y], marker="x", color="0.55", s=18, label="pruned")
    ax.scatter(diverged[x], diverged[y], marker="x", color="red", s=22, label="diverged")
    figure.colorbar(points, ax=ax, label=axis_label(metric))
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
    ax.set_title(f"{metric.label.capitalize()}{_first_of(objectives)} over {x} and {y}")
    return figure


def pareto_front(trials: pd.DataFrame, objectives: tuple[Metric, ...] | None = None) -> Figure:
    """Every completed trial on the first two objectives, each axis in its own direction,
    the Pareto front highlighted, numbered and joined by its staircase; trials outside
    the constraints marked. With more objectives, one panel per pair of the first with
    another, without the staircase: a projection of the front is no staircase."""
    objectives = objectives or objectives_in(trials)
    if len(objectives) < 2:
        raise ValueError("a Pareto front needs at least two objectives")
    columns = [f"value_{m.name}" for m in objectives]
    ranked = best_first(trials, objectives)
    front = ranked[ranked["front"] == 0]  # best first by the first objective
    dominated = ranked[ranked["front"] != 0]
    pairs = [(0, i) for i in range(1, len(objectives))]
    figure = Figure(figsize=(6.0 * len(pairs), 5.0), layout="constrained")
    axes = figure.subplots(1, len(pairs), squeeze=False)[0]
    for ax, (i, j) in zip(axes, pairs, strict=True):
        x, y = columns[i], columns[j]
        ax.scatter(dominated[x], dominated[y], s=16, color="0.6", label="dominated")
        _mark_outside(ax, trials, x, y)
        if len(objectives) == 2:
            # Best first by x, the staircase bounds what the front dominates.
            ax.step(front[x], front[y], where="post", color="tab:orange", linewidth=1.2)
        ax.scatter(
            front[x],
            front[y],
            s=36,
            color="tab:orange",
            edgecolors="k",
            linewidths=0.5,
            zorder=3,
            label=f"Pareto front ({len(front)} trials)",
        )
        for number, fx, fy in zip(front["number"], front[x], front[y], strict=True):
            ax.annotate(
                str(number), (fx, fy), textcoords="offset points", xytext=(4, 4), fontsize=7
            )
        ax.set_xlabel(axis_label(objectives[i]))
        ax.set_ylabel(axis_label(objectives[j]))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    outside = ((trials["state"] == "COMPLETE") & ~_feasible(trials)).any()
    among = "completed trials" + (" inside the constraints" if outside else "")
    figure.suptitle(f"Pareto front: {len(front)} of {len(ranked)} {among}")
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
    trials: pd.DataFrame, init: str, width: int, metric: Metric | None = None
) -> Figure:
    """The study's (first) value against log init scale, with Xavier's and He's gains
    marked and trials outside the constraints apart."""
    objectives = objectives_in(trials, metric)
    metric = objectives[0]
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    complete = trials[(trials["state"] == "COMPLETE") & _feasible(trials)]
    ax.scatter(complete["init_scale"], complete["value"], s=20, label="complete")
    _mark_outside(ax, trials, "init_scale", "value")
    others = trials[trials["state"] == "PRUNED"]
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
    ax.set_ylabel(axis_label(metric))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{metric.label.capitalize()}{_first_of(objectives)} against init scale")
    return figure


def save(figure: Figure, path: Any) -> None:
    figure.savefig(path, dpi=110)


__all__ = [
    "OUTSIDE",
    "axis_label",
    "best_curves",
    "log_float_params",
    "objectives_in",
    "pareto_front",
    "ranges_by_round",
    "reference_gains",
    "save",
    "value_by_init_scale",
    "value_map",
]
