"""Do two studies hold the same trials? Trial by trial (by slot in a reproducible
search, else by number): state, parameters, value and every intermediate value to the
last digit, epochs run. What may differ between two runs of one search (which worker ran
a trial, when, for how long, and the FAIL trials of stopped, refused or dead workers,
which hold no result) is not compared.

This is how a rerun is checked against the original: one worker against several, a
resumed study against an uninterrupted one (`hpsearch trials --compare OTHER`).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from hpsearch import records
from hpsearch.records import place

COMPARED = ("state", "params", "value", "intermediate_values", "epochs_run")


def _fields(trial: FrozenTrial) -> dict[str, Any]:
    return {
        "state": trial.state.name,
        "params": dict(trial.params),
        "value": list(trial.values) if trial.values is not None else None,
        "intermediate_values": dict(sorted(trial.intermediate_values.items())),
        "epochs_run": trial.user_attrs.get(records.EPOCHS_RUN),
    }


def _same(a: Any, b: Any) -> bool:
    """Equal to the last digit (NaN equals NaN: a diverged curve repeats as NaN)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


def _by_place(trials: list[FrozenTrial]) -> dict[tuple[int, int], dict[str, Any]]:
    """The trials that hold a result, by (place, 0), and the confirm stage's
    re-evaluations by (their configuration's place, repeat): their own numbers depend
    on the order workers queued and claimed them."""
    by_number = {t.number: t for t in trials}

    def key(trial: FrozenTrial) -> tuple[int, int]:
        origin = by_number.get(trial.user_attrs.get(records.CONFIRMS, -1))
        if origin is None:
            return (place(trial), 0)
        return (place(origin), int(trial.user_attrs.get(records.REPEAT, 0)))

    return {key(t): _fields(t) for t in trials if t.state != TrialState.FAIL}


def _name(key: tuple[int, int]) -> int | str:
    return key[0] if key[1] == 0 else f"{key[0]} re-evaluation {key[1]}"


def differences(ours: list[FrozenTrial], theirs: list[FrozenTrial]) -> pd.DataFrame:
    """One row per trial (slot or number; a re-evaluation by its configuration's and its
    repeat) and field that differ (a trial only one study has is a row of its own):
    number, field, here, there. Empty when they agree."""
    here, there = _by_place(ours), _by_place(theirs)
    rows = []
    for key in sorted(here.keys() | there.keys()):
        number = _name(key)
        if key not in there or key not in here:
            rows.append(
                (
                    number,
                    "trial",
                    "present" if key in here else "absent",
                    "absent" if key not in there else "present",
                )
            )
            continue
        for field in COMPARED:
            if not _same(here[key][field], there[key][field]):
                rows.append((number, field, repr(here[key][field]), repr(there[key][field])))
    return pd.DataFrame(rows, columns=["number", "field", "here", "there"])
