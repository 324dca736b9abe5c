"""Trials as pandas: one row per trial, and per-epoch curves in long format.

Reads studies through Optuna's API (on hpsearch's storage when given a URL), so it works
on any study in a database, not only hpsearch's; knows nothing of training. Range
narrowing, which reads these frames, is `hpsearch.analysis.narrowing`.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
import pandas as pd
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from hpsearch import records
from hpsearch.records import CURVES
from hpsearch.storage import open_storage

# -- trials as pandas -------------------------------------------------------------------


def _load(storage: str | BaseStorage, study: str) -> optuna.Study:
    """The study, through hpsearch's storage when given a URL: Optuna's own RDBStorage
    builds an ORM object per row, seconds for a study of thousands of trials."""
    if isinstance(storage, str):
        storage = open_storage(storage)
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
    values, seconds from the trial's start and end times.

    Its `value` column is the study's (first) value whatever it measures;
    `frame.attrs["metric"]` names it (`val_accuracy`, `val_score`, ...), as Optuna's
    `trials_dataframe()` does in its `value_<metric>` column, and
    `frame.attrs["objectives"]` holds every objective's `records.Metric` (name and
    direction). A study of several objectives also has a `value_<name>` column per
    objective and `front`, each candidate's Pareto front (0: not dominated). `feasible`
    says whether a trial met the study's constraints (always, without any).

    A study whose leaders were re-evaluated (the confirm stage) also has `confirms` and
    `repeat` (which configuration a re-evaluation evaluates, and which time),
    `confirmed_mean`, `confirmed_se` and `confirmed_n` on each re-evaluated
    configuration's row, `choice_rank` (the candidates in the order the study chooses
    by, 0 first) and `chosen`, the configuration the study decided on."""
    loaded = _load(storage, study)
    trials = loaded.get_trials(deepcopy=False)
    objectives = records.objectives_of(loaded)
    logs = log_scale_params(trials)
    round_number = records.round_of(loaded)
    several = len(objectives) > 1
    chosen = records.candidates(trials)
    fronts = dict(
        zip(
            (t.number for t in chosen),
            records.front_ranks(chosen, objectives) if several else [],
            strict=False,
        )
    )
    confirmed = {} if several else records.configurations(trials)
    order = {t.number: i for i, t in enumerate(records.ranked(trials, objectives))}
    rows = []
    for trial in trials:
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.values[0] if trial.values is not None else math.nan,
        }
        if several:
            row |= {
                f"value_{m.name}": trial.values[i] if trial.values is not None else math.nan
                for i, m in enumerate(objectives)
            }
            row["front"] = fronts.get(trial.number, math.nan)
        row |= trial.params
        row |= {f"log10_{name}": math.log10(v) for name, v in trial.params.items() if name in logs}
        seconds = trial.user_attrs.get(records.SECONDS)
        if seconds is None and trial.datetime_start and trial.datetime_complete:
            seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        row |= {
            "epochs_run": trial.user_attrs.get(records.EPOCHS_RUN, len(trial.intermediate_values)),
            "seconds": seconds,
            "diverged": bool(trial.user_attrs.get(records.DIVERGED, False)),
            "feasible": records.is_feasible(trial),
            "copied_from": trial.user_attrs.get(records.COPIED_FROM),
            "round": round_number,
        }
        if confirmed:
            row |= _confirmation_columns(trial, confirmed.get(trial.number), order)
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
                "feasible",
                "copied_from",
                "round",
            ]
        )
    frame.attrs["metric"] = objectives[0].name
    frame.attrs["objectives"] = objectives
    return frame


def _confirmation_columns(
    trial: FrozenTrial, found: records.Configuration | None, order: dict[int, int]
) -> dict[str, Any]:
    """The confirm stage's columns of one trial: which configuration a re-evaluation
    evaluates (`confirms`, `repeat`), what its re-evaluations say of a configuration
    (`records.confirmed_values`), its place in the study's choice (`choice_rank`, 0 for the
    chosen one, as `records.ranked` orders the candidates) and whether it is chosen."""
    nan = math.nan
    return (
        {
            "confirms": trial.user_attrs.get(records.CONFIRMS, nan),
            "repeat": trial.user_attrs.get(records.REPEAT, nan),
        }
        | records.confirmed_values(found)
        | {"choice_rank": order.get(trial.number, nan), "chosen": order.get(trial.number) == 0}
    )


def curves_frame(storage: str | BaseStorage, study: str) -> pd.DataFrame:
    """Per-epoch curves in long format: number, state, epoch, metric, value. Studies not
    made by hpsearch give their intermediate values as metric 'intermediate'."""
    rows = []
    loaded = _load(storage, study)
    # hpsearch's own curves, and a python entry's reports under its first objective.
    curves = (*CURVES, records.metric_of(loaded).name)
    for trial in loaded.get_trials(deepcopy=False):
        recorded = [m for m in dict.fromkeys(curves) if m in trial.user_attrs]
        for metric in recorded:
            for epoch, value in enumerate(trial.user_attrs[metric], start=1):
                rows.append((trial.number, trial.state.name, epoch, metric, value))
        if not recorded:
            for step, value in sorted(trial.intermediate_values.items()):
                rows.append((trial.number, trial.state.name, step, "intermediate", value))
    return pd.DataFrame(rows, columns=["number", "state", "epoch", "metric", "value"])
