"""The study at scale, built in a fresh process of its own: the default study's search
(its sampler, pruner, SQLite storage and hpsearch's whole trial: suggest, budget,
reports, pruning, curves and attrs) with a synthetic learning curve in place of
training, for thousands of trials. Prints one JSON line: the mean time per trial and
its parts (`trial_clock`'s) in a window of trials around trial 100 and at the end.

Also runs plain Optuna on the same study for comparison (`plain`): Optuna's own
RDBStorage, the same sampler and median pruner, an objective that suggests, reports and
sets attrs through Optuna's API; its mean time per trial over a few trials added.

    python -m bench.speed.scale_run build SPEC DATABASE TRIALS EARLY_COPY
    python -m bench.speed.scale_run plain SPEC DATABASE TRIALS
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna

# Windows of trials (by count of finished trials) whose mean cost is reported: around
# trial 100, and the last 100 of the study.
WINDOW = 100


def synthetic_objective(spec: Any, stop: Any = None) -> Any:
    """hpsearch's objective with `train` replaced by a learning curve computed from the
    parameters (a peak on a log-scale ridge of lr and init scale, plus seeded noise);
    the same user attrs are written at the same moments."""
    from hpsearch.storage import set_user_attrs
    from hpsearch.train import History
    from hpsearch.trials.network import Objective

    class Synthetic(Objective):
        def train(self, trial, config, rng, started, report, split=None):
            set_user_attrs(trial, started | {"init_activation_std": [1.0] * 6})
            history = History()
            for epoch in range(1, config.epochs + 1):
                accuracy = curve(config.lr, config.init_scale, config.weight_decay, epoch, rng)
                history.train_loss.append(1.0 - accuracy)
                history.train_accuracy.append(accuracy)
                history.val_accuracy.append(accuracy)
                history.seconds.append(0.0)
                report(epoch, history)
            return history

    return Synthetic(spec, stop)


def curve(lr: float, init_scale: float, weight_decay: float, epoch: int, rng: Any) -> float:
    """Validation accuracy after `epoch` epochs: best near lr 0.1 and init scale 1."""
    peak = 0.97 - 0.06 * (math.log10(lr) + 1.0) ** 2 - 0.03 * math.log10(init_scale) ** 2
    peak -= 0.02 * max(0.0, math.log10(weight_decay) + 4.0)
    learnt = max(0.1, peak) * (1.0 - math.exp(-epoch / 2.0))
    return float(min(1.0, max(0.05, learnt + rng.normal(0.0, 0.005))))


def build(spec_path: str, database: str, trials: int, early_copy: str) -> dict[str, Any]:
    """`trials` trials of the default study's search with the synthetic objective;
    the database is copied to `early_copy` when the first window ends."""
    from bench.speed.trial_clock import PARTS, Clock, instrument
    from hpsearch import spec as spec_module
    from hpsearch.search.samplers import make_pruner, make_sampler
    from hpsearch.search.study import open_study
    from hpsearch.search.work import quiet_optuna, work
    from hpsearch.spec import with_overrides
    from hpsearch.storage import HEARTBEAT_SECONDS, open_storage

    quiet_optuna()
    spec = with_overrides(
        spec_module.load(spec_path), storage=f"sqlite:///{database}", n_trials=trials
    )
    # The search's own trials are measured: none of the budget goes to re-evaluations.
    no_confirm = dataclasses.replace(spec.search, confirm=spec_module.Confirm(enabled=False))
    spec = dataclasses.replace(spec, search=no_confirm)
    clock = Clock()
    instrument(clock, spec)
    study = open_study(
        spec,
        open_storage(spec.storage, heartbeat=HEARTBEAT_SECONDS),  # as the runner opens it
        make_sampler(spec),
        make_pruner(spec),
    )
    edges = {WINDOW // 2, WINDOW // 2 + WINDOW, trials - WINDOW, trials}
    marks: dict[int, tuple[float, dict[str, float]]] = {}
    finished = 0

    def mark(_study: optuna.Study, _trial: Any) -> None:
        nonlocal finished
        finished += 1
        if finished in edges:
            marks[finished] = (time.perf_counter(), dict(clock.exclusive))
        if finished == WINDOW // 2 + WINDOW:
            copy_database(database, early_copy)

    objective = synthetic_objective(spec)
    start = time.perf_counter()
    clock.timed(work, "worker_loop")(study, objective, trials, None, [mark])
    wall = time.perf_counter() - start

    def window(first: int, last: int) -> dict[str, Any]:
        (t0, parts0), (t1, parts1) = marks[first], marks[last]
        n = last - first
        return {
            "first": first,
            "last": last,
            "ms_per_trial": (t1 - t0) / n * 1e3,
            "parts_ms_per_trial": {
                part: (parts1.get(part, 0.0) - parts0.get(part, 0.0)) / n * 1e3 for part in PARTS
            },
        }

    return {
        "trials": finished,
        "wall": wall,
        "early": window(WINDOW // 2, WINDOW // 2 + WINDOW),
        "late": window(trials - WINDOW, trials),
    }


def plain(spec_path: str, database: str, trials: int) -> dict[str, Any]:
    """`trials` more trials on the study in `database` by plain Optuna; the mean time
    per trial and the study's size before."""
    from hpsearch import spec as spec_module
    from hpsearch.search.samplers import make_sampler
    from hpsearch.trials.context import trial_rng
    from hpsearch.trials.space import suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = spec_module.load(spec_path)
    storage = optuna.storages.RDBStorage(f"sqlite:///{database}")
    study = optuna.load_study(
        study_name=spec.name,
        storage=storage,
        sampler=make_sampler(spec),
        pruner=optuna.pruners.MedianPruner(**spec.search.pruner_kwargs),
    )
    before = len(study.get_trials(deepcopy=False))

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, spec.search.params)
        rng = trial_rng(spec, trial.number)
        trial.set_user_attr("seed_trial", trial.number)
        trial.set_user_attr("init_activation_std", [1.0] * 6)
        curve_so_far: list[float] = []
        for epoch in range(1, spec.training.epochs + 1):
            accuracy = curve(values["lr"], values["init_scale"], values["weight_decay"], epoch, rng)
            curve_so_far.append(accuracy)
            trial.report(accuracy, epoch)
            if epoch < spec.training.epochs and trial.should_prune():
                trial.set_user_attr("val_accuracy", curve_so_far)
                raise optuna.TrialPruned()
        trial.set_user_attr("val_accuracy", curve_so_far)
        return curve_so_far[-1]

    stamps: list[float] = []
    start = time.perf_counter()
    study.optimize(
        objective, n_trials=trials, callbacks=[lambda s, t: stamps.append(time.perf_counter())]
    )
    return {
        "trials_before": before,
        "ms_per_trial": float(np.mean(np.diff([start, *stamps]))) * 1e3,
    }


def copy_database(source: str | Path, target: str | Path) -> None:
    """A consistent copy of a live SQLite database (its backup API)."""
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        live.backup(copy)


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    command, arguments = sys.argv[1], sys.argv[2:]
    with threadpool_limits(1):
        if command == "build":
            result = build(arguments[0], arguments[1], int(arguments[2]), arguments[3])
        else:
            result = plain(arguments[0], arguments[1], int(arguments[2]))
    print(json.dumps(result))
