"""Trials as pandas, and the range narrowing that turns one round into the next.

Reads storage through Optuna only, so it works on any study in a database, not only
hpsearch's; knows nothing of training.

The narrowing rule, per float or integer parameter, in the parameter's own scale
(log10 for log ranges): take the range the best `top` fraction of completed trials
occupy, widen it by `margin` times the old width on each side, clip it to the old
range. A side where the good region comes within `margin` of the old boundary is
*at the edge*: the optimum may lie beyond it, so that side is extended by `extend`
times the old width instead of being cut. Choices that none of the best trials used
are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.storages import BaseStorage

from hpsearch.errors import HpsearchError
from hpsearch.spec import SEARCHABLE, Choice, FloatRange, IntRange, Param

MIN_COMPLETED = 10


class NarrowingError(HpsearchError):
    """Too little evidence to narrow ranges honestly."""


# -- trials as pandas -------------------------------------------------------------------


def _load(storage: str | BaseStorage, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=storage)


def log_scale_params(trials: list[optuna.trial.FrozenTrial]) -> set[str]:
    """Names of the parameters sampled on a log scale, from their distributions."""
    return {
        name
        for trial in trials
        for name, dist in trial.distributions.items()
        if isinstance(dist, FloatDistribution | IntDistribution) and dist.log
    }


def trials_frame(storage: str | BaseStorage, study: str) -> pd.DataFrame:
    """One row per trial: number, state, value, params, log10_ params, epochs run,
    seconds, diverged, round. Columns hpsearch did not record (a study made by plain
    Optuna code) are derived from what Optuna keeps: epochs from the intermediate
    values, seconds from the trial's start and end times."""
    loaded = _load(storage, study)
    trials = loaded.get_trials(deepcopy=False)
    logs = log_scale_params(trials)
    round_number = loaded.user_attrs.get("round", 1)
    rows = []
    for trial in trials:
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value if trial.values is not None else math.nan,
        }
        row |= trial.params
        row |= {f"log10_{name}": math.log10(v) for name, v in trial.params.items() if name in logs}
        seconds = trial.user_attrs.get("seconds")
        if seconds is None and trial.datetime_start and trial.datetime_complete:
            seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        row |= {
            "epochs_run": trial.user_attrs.get("epochs_run", len(trial.intermediate_values)),
            "seconds": seconds,
            "diverged": bool(trial.user_attrs.get("diverged", False)),
            "copied_from": trial.user_attrs.get("copied_from"),
            "round": round_number,
        }
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(
            columns=[
                "number",
                "state",
                "value",
                "epochs_run",
                "seconds",
                "diverged",
                "copied_from",
                "round",
            ]
        )
    return frame


CURVES = ("train_loss", "train_accuracy", "val_accuracy")


def curves_frame(storage: str | BaseStorage, study: str) -> pd.DataFrame:
    """Per-epoch curves in long format: number, state, epoch, metric, value. Studies not
    made by hpsearch give their intermediate values as metric 'intermediate'."""
    rows = []
    for trial in _load(storage, study).get_trials(deepcopy=False):
        recorded = [m for m in CURVES if m in trial.user_attrs]
        for metric in recorded:
            for epoch, value in enumerate(trial.user_attrs[metric], start=1):
                rows.append((trial.number, trial.state.name, epoch, metric, value))
        if not recorded:
            for step, value in sorted(trial.intermediate_values.items()):
                rows.append((trial.number, trial.state.name, step, "intermediate", value))
    return pd.DataFrame(rows, columns=["number", "state", "epoch", "metric", "value"])


# -- narrowing --------------------------------------------------------------------------


@dataclass(frozen=True)
class RangeChange:
    """How one numeric parameter's range moves to the next round."""

    name: str
    log: bool
    old: tuple[float, float]
    best: tuple[float, float]  # the range the top trials occupy
    new: tuple[float, float]
    at_edge: tuple[str, ...]  # "low" and/or "high"
    interval_low: tuple[float, float] | None = None  # bootstrap CI of new[0]
    interval_high: tuple[float, float] | None = None

    def width_ratio(self) -> float:
        """New width over old width, on the parameter's scale (log10 for log ranges)."""
        (new_lo, new_hi), (old_lo, old_hi) = (
            np.log10(bounds) if self.log else np.asarray(bounds, dtype=float)
            for bounds in (self.new, self.old)
        )
        return float((new_hi - new_lo) / (old_hi - old_lo))


@dataclass(frozen=True)
class ChoiceChange:
    name: str
    old: tuple[Any, ...]
    new: tuple[Any, ...]


@dataclass
class Narrowing:
    """The next round's search space and the evidence for it."""

    changes: dict[str, RangeChange | ChoiceChange]
    completed: int
    top_trials: int
    top: float
    margin: float
    best_value: float
    params: dict[str, Param] = field(default_factory=dict)

    @property
    def at_edge(self) -> dict[str, tuple[str, ...]]:
        return {
            name: change.at_edge
            for name, change in self.changes.items()
            if isinstance(change, RangeChange) and change.at_edge
        }

    def table(self) -> pd.DataFrame:
        """One row per parameter: old, best-trial and new ranges, edge flags."""
        rows = []
        for name, change in self.changes.items():
            if isinstance(change, ChoiceChange):
                rows.append(
                    {
                        "param": name,
                        "scale": "choice",
                        "old": list(change.old),
                        "top trials": "",
                        "new": list(change.new),
                        "at edge": "",
                    }
                )
                continue
            row = {
                "param": name,
                "scale": "log" if change.log else "linear",
                "old": _fmt_range(change.old),
                "top trials": _fmt_range(change.best),
                "new": _fmt_range(change.new),
                "at edge": ", ".join(change.at_edge) or "no",
            }
            if change.interval_low is not None:
                row["95% CI low"] = _fmt_range(change.interval_low)
                row["95% CI high"] = _fmt_range(change.interval_high)
            rows.append(row)
        return pd.DataFrame(rows)

    def markdown(self) -> str:
        """The table as a Markdown table (dashboard notes, report.md)."""
        table = self.table()
        lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
        lines += [
            "| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)
        ]
        return "\n".join(lines)


def _fmt_range(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f"[{bounds[0]:.3g}, {bounds[1]:.3g}]"


def narrow(
    frame: pd.DataFrame,
    space: Mapping[str, Param],
    *,
    top: float = 0.2,
    margin: float = 0.1,
    extend: float = 0.5,
    min_completed: int = MIN_COMPLETED,
    bootstrap: int = 0,
    seed: int = 0,
) -> Narrowing:
    """The next round's ranges from a trials frame (see the module docstring)."""
    if not 0.0 < top <= 1.0:
        raise NarrowingError(f"top must be in (0, 1], got {top!r}")
    if not 0.0 <= margin < 0.5:
        raise NarrowingError(f"margin must be in [0, 0.5), got {margin!r}")
    if not extend >= 0.0:  # also refuses NaN
        raise NarrowingError(f"extend must be >= 0, got {extend!r}")
    completed = frame[(frame["state"] == "COMPLETE") & frame["value"].notna()]
    n_top = max(3, math.ceil(top * len(completed)))
    if len(completed) < min_completed or len(completed) < n_top:
        raise NarrowingError(
            f"only {len(completed)} completed trials; narrowing needs at least "
            f"{max(min_completed, n_top)} to tell a good region from noise (run more trials)"
        )
    best = completed.nlargest(n_top, "value", keep="first")
    changes: dict[str, RangeChange | ChoiceChange] = {}
    params: dict[str, Param] = {}
    rng = np.random.default_rng(seed)
    for name, param in space.items():
        if name not in best:
            raise NarrowingError(f"parameter {name!r} is in the search space but in no trial")
        values = best[name].to_numpy()
        if isinstance(param, Choice):
            kept = tuple(c for c in param.choices if any(c == v for v in values))
            changes[name] = ChoiceChange(name, param.choices, kept)
            params[name] = Choice(kept)
            continue
        change = _narrow_range(name, param, values, margin, extend)
        if bootstrap:
            change = _with_bootstrap(
                change, param, completed, name, n_top, margin, extend, bootstrap, rng
            )
        changes[name] = change
        params[name] = _as_param(param, change.new)
    return Narrowing(
        changes=changes,
        completed=len(completed),
        top_trials=n_top,
        top=top,
        margin=margin,
        best_value=float(best["value"].iloc[0]),
        params=params,
    )


def _narrow_range(
    name: str, param: FloatRange | IntRange, values: np.ndarray, margin: float, extend: float
) -> RangeChange:
    identity = np.asarray
    forward, back = (np.log10, lambda v: 10.0**v) if param.log else (identity, identity)
    old_lo, old_hi = float(forward(param.low)), float(forward(param.high))
    width = old_hi - old_lo
    scaled = forward(values.astype(float))
    best_lo, best_hi = float(np.min(scaled)), float(np.max(scaled))
    at_edge = []
    if best_lo - old_lo <= margin * width:
        at_edge.append("low")
        new_lo = old_lo - extend * width
    else:
        new_lo = max(old_lo, best_lo - margin * width)
    if old_hi - best_hi <= margin * width:
        at_edge.append("high")
        new_hi = old_hi + extend * width
    else:
        new_hi = min(old_hi, best_hi + margin * width)
    low, high = _valid_bounds(name, param, float(back(new_lo)), float(back(new_hi)))
    return RangeChange(
        name=name,
        log=param.log,
        old=(param.low, param.high),
        best=(float(back(best_lo)), float(back(best_hi))),
        new=(low, high),
        at_edge=tuple(at_edge),
    )


def _valid_bounds(name: str, param: Param, low: float, high: float) -> tuple[float, float]:
    """Keep an extended range inside what the setting accepts: log ranges stay positive
    by construction; a linear range stops at the setting's minimum (at its old low when
    the minimum itself is excluded, as for lr) and halfway to an excluded maximum (as
    dropout's 1)."""
    setting = SEARCHABLE[name]
    minimum = setting.minimum
    if not param.log and minimum is not None:
        if setting.strict_minimum and low <= minimum:
            low = param.low
        low = max(low, minimum)
    if setting.below is not None and high >= setting.below:
        high = (param.high + setting.below) / 2
    if isinstance(param, IntRange):
        low = max(math.floor(low), int(minimum or 0), 1 if param.log else 0)
        return low, max(math.ceil(high), low + 1)
    return low, high


def _as_param(param: FloatRange | IntRange, bounds: tuple[float, float]) -> Param:
    if isinstance(param, IntRange):
        return IntRange(int(bounds[0]), int(bounds[1]), log=param.log, step=param.step)
    return FloatRange(bounds[0], bounds[1], log=param.log, step=param.step)


def _with_bootstrap(
    change: RangeChange,
    param: FloatRange | IntRange,
    completed: pd.DataFrame,
    name: str,
    n_top: int,
    margin: float,
    extend: float,
    rounds: int,
    rng: np.random.Generator,
) -> RangeChange:
    """95% intervals of the new bounds over resampled sets of completed trials."""
    lows, highs = [], []
    values, scores = completed[name].to_numpy(), completed["value"].to_numpy()
    for _ in range(rounds):
        pick = rng.integers(0, len(values), len(values))
        order = np.argsort(-scores[pick], kind="stable")[:n_top]
        resampled = _narrow_range(name, param, values[pick][order], margin, extend)
        lows.append(resampled.new[0])
        highs.append(resampled.new[1])
    return RangeChange(
        **{
            **change.__dict__,
            "interval_low": tuple(float(v) for v in np.percentile(lows, [2.5, 97.5])),
            "interval_high": tuple(float(v) for v in np.percentile(highs, [2.5, 97.5])),
        }
    )
