"""Which parameters matter: Optuna's importance evaluators over a study's complete,
feasible trials, one answer per objective, as a frame, a figure and a terminal table.

PED-ANOVA is the default: it compares where the best trials sit with where all trials
sit, so it answers "what matters among the good trials". fANOVA apportions the variance
of a random forest's fit over the whole space, so it answers "what moves the value".
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd
from matplotlib.figure import Figure
from optuna.importance import (
    BaseImportanceEvaluator,
    FanovaImportanceEvaluator,
    PedAnovaImportanceEvaluator,
    get_param_importances,
)
from optuna.trial import FrozenTrial

from hpsearch import records
from hpsearch.analysis import plots
from hpsearch.errors import StudyError

# Both evaluators give equal importances, with no error, below two trials.
MIN_TRIALS = 2

EVALUATORS: types.MappingProxyType[str, Callable[[int], BaseImportanceEvaluator]] = (
    types.MappingProxyType(
        {
            # Deterministic (Parzen estimators on a grid): the seed has nothing to seed.
            "ped-anova": lambda seed: PedAnovaImportanceEvaluator(),
            "fanova": lambda seed: FanovaImportanceEvaluator(seed=seed),
        }
    )
)


def importance_frame(
    study: optuna.Study, evaluator: str = "ped-anova", seed: int = 0
) -> pd.DataFrame:
    """One row per (objective, param) with its importance, normalized to sum to 1 per
    objective, the objectives in the study's order, named and directed as `records`
    reads them; `attrs` name the evaluator and the number of trials it used.

    Only complete trials with finite values count, and a trial marked infeasible does
    not. Which parameters are assessed in a dynamic space is Optuna's call: PED-ANOVA
    takes every parameter, fANOVA those that every trial has."""
    if evaluator not in EVALUATORS:
        raise StudyError(
            f"unknown importance evaluator {evaluator!r}; choose one of {', '.join(EVALUATORS)}"
        )
    every = study.get_trials(deepcopy=False)
    kept = [
        trial
        for trial in records.candidates(every)
        if trial.params and all(math.isfinite(v) for v in trial.values)
    ]
    if len(kept) < MIN_TRIALS:
        trials = "trial" if len(kept) == 1 else "trials"
        raise StudyError(
            f"study {study.study_name!r} has {len(kept)} complete, feasible {trials} with "
            f"parameters; parameter importance needs at least {MIN_TRIALS}: run more trials"
        )
    # The evaluators read every complete trial of the study they are given: a copy in
    # memory holds only the kept ones.
    storage = optuna.storages.InMemoryStorage()
    copy_id = storage.create_new_study(study.directions)  # create_study would log to the terminal
    copy = optuna.load_study(study_name=storage.get_study_name_from_id(copy_id), storage=storage)
    copy.add_trials(kept)

    rows = []
    for i, objective in enumerate(records.objectives_of(study)):
        # PED-ANOVA ranks trials by the study's first direction when no target is given,
        # and takes lower as better whenever one is: each objective is handed over as a
        # loss, negated when maximized. fANOVA fits the target's variance, which the
        # sign does not change.
        sign = -1.0 if objective.direction == "maximize" else 1.0
        importances = _importances(copy, evaluator, seed, objective.name, _loss(i, sign))
        ranked = sorted(importances.items(), key=lambda item: (-item[1], item[0]))
        rows += [
            {
                "objective": objective.name,
                "direction": objective.direction,
                "param": param,
                "importance": float(value),
            }
            for param, value in ranked
        ]
    frame = pd.DataFrame(rows, columns=["objective", "direction", "param", "importance"])
    frame.attrs["evaluator"] = evaluator
    frame.attrs["n_trials"] = len(kept)
    # Pruned and infeasible trials carry no final value the evaluators could read: say
    # how many finished trials that leaves out, since with pruning it is most of them.
    frame.attrs["left_out"] = sum(t.state in records.FINISHED for t in every) - len(kept)
    return frame


def _loss(i: int, sign: float) -> Callable[[FrozenTrial], float]:
    return lambda trial: sign * trial.values[i]


def _importances(
    study: optuna.Study,
    evaluator: str,
    seed: int,
    objective: str,
    target: Callable[[FrozenTrial], float],
) -> dict[str, float]:
    with warnings.catch_warnings():
        # PED-ANOVA's reminder that a target is minimized: `_loss` already made it so.
        warnings.filterwarnings(
            "ignore", message=r".*computes the importances of params to achieve low `target`"
        )
        try:
            found = get_param_importances(
                study, evaluator=EVALUATORS[evaluator](seed), target=target
            )
        except RuntimeError as exc:
            if "zero total variance" not in str(exc):
                raise
            raise StudyError(
                f"every trial has the same {objective}: fANOVA has no variance to apportion; "
                "use ped-anova"
            ) from None
    if not found:
        raise StudyError(
            f"{evaluator} found no parameter that every trial has (a dynamic search space); "
            "use ped-anova"
        )
    return found


def _blocks(frame: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(objective, direction, its rows) in the frame's order."""
    return [
        (str(name), str(rows["direction"].iloc[0]), rows)
        for name, rows in frame.groupby("objective", sort=False)
    ]


def importance_figure(frame: pd.DataFrame, path: Path) -> Path:
    """Horizontal bars of each parameter's importance, one panel per objective, most
    important on top; saved as a PNG at `path`."""
    evaluator, n_trials = frame.attrs["evaluator"], frame.attrs["n_trials"]
    blocks = _blocks(frame)
    most = max((len(rows) for _, _, rows in blocks), default=1)
    figure = Figure(figsize=(5.0 * max(1, len(blocks)), 1.5 + 0.4 * most), layout="constrained")
    axes = figure.subplots(1, max(1, len(blocks)), squeeze=False)[0]
    for ax, (objective, direction, rows) in zip(axes, blocks, strict=False):
        ax.barh(rows["param"], rows["importance"], color="tab:blue")
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"importance ({evaluator})")
        better = "higher" if direction == "maximize" else "lower"
        ax.set_title(f"{objective} ({better} is better)")
        ax.grid(axis="x", alpha=0.3)
    figure.suptitle(f"Parameter importance by {evaluator} over {n_trials} trials")
    plots.save(figure, path)
    return path


def importance_text(frame: pd.DataFrame) -> str:
    """A block per objective: a header naming it, the evaluator and the trials, then
    one line per parameter, most important first."""
    evaluator, n_trials = frame.attrs["evaluator"], frame.attrs["n_trials"]
    blocks = []
    for objective, _, rows in _blocks(frame):
        width = max(len(param) for param in rows["param"])
        lines = [f"parameter importance for {objective} ({evaluator}, {n_trials} trials)"]
        if frame.attrs.get("left_out"):
            lines[0] += f"; {left_out_text(frame)}"
        lines += [
            f"  {param:<{width}}   {value:.3f}"
            for param, value in zip(rows["param"], rows["importance"], strict=True)
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def left_out_text(frame: pd.DataFrame) -> str:
    """How many finished trials the ranking could not read (pruned, infeasible, or with
    a value that is not finite)."""
    return (
        f"{frame.attrs['left_out']} pruned or infeasible trials are not counted: the "
        "evaluators read completed trials' values only"
    )


__all__ = [
    "EVALUATORS",
    "importance_figure",
    "importance_frame",
    "importance_text",
    "left_out_text",
]
