"""A spec's search space in Optuna's terms: what a trial suggests, the distributions a
copied trial is given, and whether a value lies in a parameter's range."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hpsearch.spec import Choice, IntRange, Param


def suggest(trial: optuna.Trial, params: Mapping[str, Param]) -> dict[str, Any]:
    """Ask the trial for every searched parameter, in the spec's order."""
    values: dict[str, Any] = {}
    for name, param in params.items():
        if isinstance(param, Choice):
            values[name] = trial.suggest_categorical(name, list(param.choices))
        elif isinstance(param, IntRange):
            values[name] = trial.suggest_int(
                name, param.low, param.high, step=param.step, log=param.log
            )
        else:
            values[name] = trial.suggest_float(
                name, param.low, param.high, step=param.step, log=param.log
            )
    return values


def distributions(params: Mapping[str, Param]) -> dict[str, BaseDistribution]:
    """The Optuna distributions `suggest` samples from, for copying trials in."""
    result: dict[str, BaseDistribution] = {}
    for name, param in params.items():
        if isinstance(param, Choice):
            result[name] = CategoricalDistribution(list(param.choices))
        elif isinstance(param, IntRange):
            result[name] = IntDistribution(param.low, param.high, log=param.log, step=param.step)
        else:
            result[name] = FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    return result


def contains(param: Param, value: Any) -> bool:
    """Whether `value` is one the parameter can take: a choice, or inside the range and
    on its step (integer and float ranges alike)."""
    if isinstance(param, Choice):
        return value in param.choices
    if not param.low <= value <= param.high:
        return False
    if param.step is None:
        return True
    steps = (value - param.low) / param.step
    return math.isclose(steps, round(steps), abs_tol=1e-9)
