"""Range narrowing: the next round's search space from a round's trials, with the
decision taken for each parameter and the evidence behind it.

Per float or integer parameter, on the parameter's own scale (log10 for log ranges):

1. *kept: too few trials* when fewer than `min_completed` trials completed.
2. *kept: no evidence* when the best `top` fraction of completed trials cannot be told
   apart from the other finished trials (completed and pruned alike): seeded
   permutation tests of the Kolmogorov-Smirnov distance between the top trials' values
   and the others' (are they elsewhere?) and of the top trials' span (are they bunched
   together?), the smaller p-value doubled, p >= `alpha`. A parameter that barely
   matters (weight decay over ten epochs) is then left alone instead of being narrowed
   onto whatever values its three best trials happened to have, or extended towards
   absurd values.
3. Otherwise the range the top trials occupy, widened by `margin` times the old width
   on each side and clipped to the old range (*narrowed*). A side where the top trials
   come within `margin` of the old boundary is *extended at edge* instead: the optimum
   may lie beyond it. The step is `extend` times the old width but at most one decade
   on a log scale (a quarter of the width on a linear one), and never past the
   setting's sensible limits (`spec.SEARCHABLE[name].sensible`: weight decay at most
   0.1, lr at most 10, init scale within [1e-3, 100], dropout at most 0.9).

Choices are tested the same way (the statistic is the total-variation distance between
the choice frequencies of the top trials and of the others); with evidence, choices
that none of the top trials used are dropped.

"Best" follows the study's objectives: the first one in its own direction, or, with
several, the Pareto fronts in order (the front first, then what only it dominates, and
so on, each front by the first objective): narrowing keeps the region where the front
lies. Trials outside the study's constraints are never among the top trials. A user's
own function's parameter never leaves the range its spec wrote, whatever its name:
nothing says what the user's code accepts beyond it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from hpsearch.analysis.evidence import choice_evidence, range_evidence
from hpsearch.errors import HpsearchError
from hpsearch.records import VAL_ACCURACY, Metric
from hpsearch.spec import SEARCHABLE, Choice, FloatRange, IntRange, Param, Setting

MIN_COMPLETED = 10
ALPHA = 0.05  # a parameter is narrowed only when its top trials differ at this level
MAX_LOG_STEP = 1.0  # decades an edge may move in one round
MAX_LINEAR_STEP = 0.25  # fraction of the old width an edge may move in one round

NARROWED = "narrowed"
EXTENDED = "extended at edge"
NO_EVIDENCE = "kept: no evidence"
TOO_FEW = "kept: too few trials"
SPANNED = "kept: top trials span the range"


class NarrowingError(HpsearchError):
    """Nothing to narrow from."""


@dataclass(frozen=True)
class RangeChange:
    """How one numeric parameter's range moves to the next round, and why."""

    name: str
    log: bool
    old: tuple[float, float]
    best: tuple[float, float]  # the range the top trials occupy
    new: tuple[float, float]
    at_edge: tuple[str, ...]  # sides extended because the top trials touch them
    decision: str = NARROWED
    why: str = ""
    p_value: float | None = None
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
    decision: str = NARROWED
    why: str = ""
    p_value: float | None = None


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

    @property
    def changed(self) -> bool:
        """Whether any parameter's range or choices differ from the old ones."""
        return any(change.new != change.old for change in self.changes.values())

    def table(self) -> pd.DataFrame:
        """One row per parameter: old, top-trial and new ranges, the decision and why."""
        rows = []
        for name, change in self.changes.items():
            if isinstance(change, ChoiceChange):
                row = {
                    "param": name,
                    "scale": "choice",
                    "old": list(change.old),
                    "top trials": "",
                    "new": list(change.new),
                }
            else:
                row = {
                    "param": name,
                    "scale": "log" if change.log else "linear",
                    "old": _fmt_range(change.old),
                    "top trials": _fmt_range(change.best),
                    "new": _fmt_range(change.new),
                }
            row |= {"decision": change.decision, "why": change.why}
            if isinstance(change, RangeChange) and change.interval_low is not None:
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


def without_reevaluations(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a trials frame that are configurations of their own: without the
    confirm stage's re-evaluations, which are evidence about another row's."""
    if "confirms" not in frame:
        return frame
    return frame[frame["confirms"].isna()]


def decided_value(row: pd.Series) -> float:
    """The value a configuration is judged by: its re-evaluations' mean where it has
    one, else its own."""
    mean = row.get("confirmed_mean", math.nan)
    return float(row["value"] if pd.isna(mean) else mean)


def best_first(frame: pd.DataFrame, objectives: tuple[Metric, ...]) -> pd.DataFrame:
    """The completed, feasible trials of a trials frame, best first (see the module
    docstring); ties keep the frame's order (the earlier trial first). Re-evaluated
    configurations come first, in the order the study chooses by (the frame's
    `choice_rank`, from `records.ranked`)."""
    completed = without_reevaluations(frame)
    completed = completed[(completed["state"] == "COMPLETE") & completed["value"].notna()]
    if "feasible" in completed:
        completed = completed[completed["feasible"].astype(bool)]
    if "choice_rank" in completed:  # re-evaluated: the study's own order (records.ranked)
        return completed.sort_values("choice_rank", kind="stable")
    goodness = completed["value"] * (1.0 if objectives[0].maximized else -1.0)
    keys = pd.DataFrame({"goodness": goodness})
    order, ascending = ["goodness"], [False]
    if len(objectives) > 1 and "front" in completed:
        keys["front"] = completed["front"]
        order, ascending = ["front", *order], [True, *ascending]
    return completed.loc[keys.sort_values(order, ascending=ascending, kind="stable").index]


def narrow(
    frame: pd.DataFrame,
    space: Mapping[str, Param],
    *,
    objectives: tuple[Metric, ...] | None = None,
    own_limits: bool = False,
    top: float = 0.2,
    margin: float = 0.1,
    extend: float = 0.5,
    min_completed: int = MIN_COMPLETED,
    alpha: float = ALPHA,
    bootstrap: int = 0,
    seed: int = 0,
) -> Narrowing:
    """The next round's ranges from a trials frame (see the module docstring).
    `objectives`: what "best" means (default: the frame's own, from `trials_frame`);
    `own_limits`: the parameters are a user's function's, bounded by their ranges."""
    if objectives is None:
        objectives = frame.attrs.get("objectives") or (VAL_ACCURACY,)
    if not 0.0 < top <= 1.0:
        raise NarrowingError(f"top must be in (0, 1], got {top!r}")
    if not 0.0 <= margin < 0.5:
        raise NarrowingError(f"margin must be in [0, 0.5), got {margin!r}")
    if not extend >= 0.0:  # also refuses NaN
        raise NarrowingError(f"extend must be >= 0, got {extend!r}")
    if not 0.0 < alpha <= 1.0:
        raise NarrowingError(f"alpha must be in (0, 1], got {alpha!r}")
    completed = best_first(frame, objectives)
    if completed.empty:
        outside = " inside the study's constraints" if (frame["state"] == "COMPLETE").any() else ""
        raise NarrowingError(f"no completed trials{outside} to narrow from (run more trials)")
    # The others the top trials are compared with: every finished trial, pruned ones
    # too (they lost at some epoch, which is evidence as well).
    finished = without_reevaluations(frame)
    finished = finished[finished["state"].isin(("COMPLETE", "PRUNED"))]
    n_top = min(len(completed), max(3, math.ceil(top * len(completed))))
    best = completed.head(n_top)
    enough = len(completed) >= min_completed
    changes: dict[str, RangeChange | ChoiceChange] = {}
    params: dict[str, Param] = {}
    rng = np.random.default_rng(seed)
    for name, param in space.items():
        if name not in best:
            raise NarrowingError(f"parameter {name!r} is in the search space but in no trial")
        values = best[name].to_numpy()
        pool = finished[name].dropna()
        is_top = pool.index.isin(best.index)
        if isinstance(param, Choice):
            change = _narrow_choice(
                name, param, values, pool.to_numpy(), is_top, enough, alpha, rng
            )
            changes[name] = change
            params[name] = Choice(change.new)
            continue
        scaled = _forward(param)(pool.to_numpy(dtype=float))
        p_value = range_evidence(scaled, is_top, rng) if enough else None
        if not enough:
            change = _kept(name, param, values, TOO_FEW, f"{len(completed)} < {min_completed}")
        elif p_value >= alpha:
            evidence = _p_text(p_value, n_top, len(pool))
            change = _kept(name, param, values, NO_EVIDENCE, evidence, p_value)
        else:
            change = _narrow_range(name, param, values, margin, extend, own_limits)
            evidence = _p_text(p_value, n_top, len(pool))
            why = f"{evidence}; {change.why}" if change.why else evidence  # keep edge notes
            change = replace(change, p_value=p_value, why=why)
        if bootstrap and enough:  # how much the rule's bounds move with other trials
            change = _with_bootstrap(
                change, param, completed, name, n_top, margin, extend, bootstrap, rng, own_limits
            )
        changes[name] = change
        params[name] = _as_param(param, change.new)
    return Narrowing(
        changes=changes,
        completed=len(completed),
        top_trials=n_top,
        top=top,
        margin=margin,
        best_value=decided_value(best.iloc[0]),
        params=params,
    )


def _p_text(p_value: float, n_top: int, n_pool: int) -> str:
    return f"top {n_top} vs other {n_pool - n_top}: p = {p_value:.3f}"


def _forward(param: FloatRange | IntRange):
    return np.log10 if param.log else np.asarray


def _kept(
    name: str,
    param: FloatRange | IntRange,
    values: np.ndarray,
    decision: str,
    why: str,
    p_value: float | None = None,
) -> RangeChange:
    best = (float(np.min(values)), float(np.max(values)))
    old = (param.low, param.high)
    return RangeChange(name, param.log, old, best, old, (), decision, why, p_value)


def _narrow_choice(
    name: str,
    param: Choice,
    values: np.ndarray,
    pool: np.ndarray,
    is_top: np.ndarray,
    enough: bool,
    alpha: float,
    rng: np.random.Generator,
) -> ChoiceChange:
    if not enough:
        return ChoiceChange(name, param.choices, param.choices, TOO_FEW)
    codes = np.array([_index(param.choices, v) for v in pool])
    p_value = choice_evidence(codes, is_top, rng)
    why = _p_text(p_value, int(is_top.sum()), len(pool))
    if p_value >= alpha:
        return ChoiceChange(name, param.choices, param.choices, NO_EVIDENCE, why, p_value)
    kept = tuple(c for c in param.choices if any(c == v for v in values))
    decision = NARROWED if kept != param.choices else SPANNED
    return ChoiceChange(name, param.choices, kept, decision, why, p_value)


def _index(choices: tuple[Any, ...], value: Any) -> int:
    return next((i for i, c in enumerate(choices) if c == value), len(choices))


# -- moving a range ---------------------------------------------------------------------


def _narrow_range(
    name: str,
    param: FloatRange | IntRange,
    values: np.ndarray,
    margin: float,
    extend: float,
    own_limits: bool = False,
) -> RangeChange:
    forward, back = (np.log10, lambda v: 10.0**v) if param.log else (np.asarray, np.asarray)
    old_lo, old_hi = float(forward(param.low)), float(forward(param.high))
    width = old_hi - old_lo
    step = min(extend * width, MAX_LOG_STEP if param.log else MAX_LINEAR_STEP * width)
    setting = _setting(name, param, own_limits)
    sensible_lo, sensible_hi = setting.sensible or (-math.inf, math.inf)
    limit_lo = float(forward(sensible_lo)) if sensible_lo > 0 or not param.log else -math.inf
    limit_hi = float(forward(sensible_hi))
    scaled = forward(values.astype(float))
    best_lo, best_hi = float(np.min(scaled)), float(np.max(scaled))
    at_edge, notes = [], []
    if best_lo - old_lo <= margin * width:
        new_lo = max(old_lo - step, min(old_lo, limit_lo))
        if new_lo < old_lo:
            at_edge.append("low")
        else:
            notes.append("low edge at the sensible limit")
    else:
        new_lo = max(old_lo, best_lo - margin * width)
    if old_hi - best_hi <= margin * width:
        new_hi = min(old_hi + step, max(old_hi, limit_hi))
        if new_hi > old_hi:
            at_edge.append("high")
        else:
            notes.append("high edge at the sensible limit")
    else:
        new_hi = min(old_hi, best_hi + margin * width)
    low, high = _valid_bounds(setting, param, float(back(new_lo)), float(back(new_hi)))
    if at_edge:
        decision = EXTENDED
    elif (low, high) != (param.low, param.high):
        decision = NARROWED
    else:
        decision = SPANNED
    return RangeChange(
        name=name,
        log=param.log,
        old=(param.low, param.high),
        best=(float(back(best_lo)), float(back(best_hi))),
        new=(low, high),
        at_edge=tuple(at_edge),
        decision=decision,
        why="; ".join(notes),
    )


def _setting(name: str, param: FloatRange | IntRange, own_limits: bool) -> Setting:
    """hpsearch's setting of that name, or for a user's own parameter (whatever it is
    called) one whose sensible limits are the user's range: narrowing never takes it
    past what the user wrote, since nothing says what the user's code accepts beyond it."""
    if name in SEARCHABLE and not own_limits:
        return SEARCHABLE[name]
    kind = int if isinstance(param, IntRange) else float
    return Setting("python", kind, sensible=(param.low, param.high))


def _valid_bounds(setting: Setting, param: Param, low: float, high: float) -> tuple[float, float]:
    """Keep an extended range inside what the setting accepts: log ranges stay positive
    by construction; a linear range stops at the setting's minimum (at its old low when
    the minimum itself is excluded, as for lr) and halfway to an excluded maximum (as
    dropout's 1)."""
    minimum = setting.minimum
    if not param.log and minimum is not None:
        if setting.strict_minimum and low <= minimum:
            low = param.low
        low = max(low, minimum)
    if setting.below is not None and high >= setting.below:
        high = (param.high + setting.below) / 2
    if isinstance(param, IntRange):
        floor = int(minimum) if minimum is not None else param.low
        low = max(math.floor(low), floor, 1 if param.log else floor)
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
    own_limits: bool,
) -> RangeChange:
    """95% intervals of the new bounds over resampled sets of completed trials
    (`completed` best first)."""
    lows, highs = [], []
    values, ranks = completed[name].to_numpy(), np.arange(len(completed))
    for _ in range(rounds):
        pick = rng.integers(0, len(values), len(values))
        order = np.argsort(ranks[pick], kind="stable")[:n_top]
        resampled = _narrow_range(name, param, values[pick][order], margin, extend, own_limits)
        lows.append(resampled.new[0])
        highs.append(resampled.new[1])
    return replace(
        change,
        interval_low=tuple(float(v) for v in np.percentile(lows, [2.5, 97.5])),
        interval_high=tuple(float(v) for v in np.percentile(highs, [2.5, 97.5])),
    )
