"""Optuna samplers and pruners made from a spec, and the seed of each worker's sampler
stream."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna

from hpsearch.search.pruning import ParallelMedianPruner
from hpsearch.search.reproducible import LaggedPruner, LaggedSampler
from hpsearch.spec import Choice, IntRange, SpecError, StudySpec

GRID_POINTS = 5  # per float range, when the grid sampler needs a grid


def worker_seed(seed: int, worker: int, start: int = 0, stream: int = 0) -> int:
    """The sampler seed of one worker of one run.

    Worker 0 of a new study uses the spec's seed itself (a single worker is
    reproducible). Every other combination gets its own stream, so K workers never
    propose K copies of one trial, and a continued study (`start` trials already in
    it) does not replay the first run's draws: a seeded sampler starts its stream
    afresh each time it is made. `stream` tells apart runs that cannot be ordered,
    such as workers on several machines."""
    if (worker, start, stream) == (0, 0, 0):
        return seed
    return int(np.random.SeedSequence([seed, worker, start, stream]).generate_state(1)[0])


def grid_space(spec: StudySpec) -> dict[str, list[Any]]:
    """The grid sampler's points: choices as given, ranges as GRID_POINTS values spaced
    on the range's own scale (all integers when there are few)."""
    space: dict[str, list[Any]] = {}
    for name, param in spec.search.params.items():
        if isinstance(param, Choice):
            space[name] = list(param.choices)
        elif isinstance(param, IntRange):
            values = list(range(param.low, param.high + 1, param.step))
            if len(values) > GRID_POINTS:
                spaced = (np.geomspace if param.log else np.linspace)(
                    param.low, param.high, GRID_POINTS
                )
                values = sorted({round(float(v)) for v in spaced})
            space[name] = values
        else:
            spaced = (np.geomspace if param.log else np.linspace)(
                param.low, param.high, GRID_POINTS
            )
            space[name] = [float(v) for v in spaced]
    return space


def make_sampler(
    spec: StudySpec, worker: int = 0, start: int = 0, stream: int = 0
) -> optuna.samplers.BaseSampler:
    search = spec.search
    seed = worker_seed(spec.seed, worker, start, stream)
    options = dict(search.sampler_options)
    samplers: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "gp": optuna.samplers.GPSampler,
        "qmc": optuna.samplers.QMCSampler,
        "grid": lambda **kw: optuna.samplers.GridSampler(grid_space(spec), **kw),
        "nsga2": optuna.samplers.NSGAIISampler,
        "nsga3": optuna.samplers.NSGAIIISampler,
    }
    if search.sampler == "gp":
        _require("torch", "the gp sampler needs PyTorch: pip install torch==2.13.0")
    if search.sampler == "cmaes":
        _require("cmaes", "the cmaes sampler needs the cmaes package: pip install cmaes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = samplers[search.sampler](seed=seed, **options)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"{spec.source}: search.sampler_options: {search.sampler} sampler rejects "
            f"{options}: {exc}"
        ) from None
    if search.reproducible:  # a fresh one per trial, seeded by its slot (made above: checked)
        if search.sampler == "tpe":  # it is shown no running trial to lie about
            options["constant_liar"] = False
        return LaggedSampler(
            lambda slot_seed: samplers[search.sampler](seed=slot_seed, **options),
            spec.seed,
            search.lag,
        )
    return sampler


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    search = spec.search
    options = search.pruner_kwargs
    epochs = spec.training.epochs
    pruners: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
        "none": optuna.pruners.NopPruner,
        "median": ParallelMedianPruner,
        "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": lambda **kw: optuna.pruners.HyperbandPruner(
            **({"min_resource": 1, "max_resource": epochs} | kw)
        ),
    }
    try:
        pruner = pruners[search.pruner](**options)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"{spec.source}: search.pruner_options: {search.pruner} pruner rejects {options}: {exc}"
        ) from None
    if search.reproducible and search.pruner != "none":  # Optuna's own, on what the slot fixes
        median = optuna.pruners.MedianPruner(**options)
        return LaggedPruner(median, search.lag, warmup=options.get("n_warmup_steps", 0))
    return pruner


def _require(module: str, message: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise SpecError(message)
