"""One worker's costs, measured in a fresh process of its own: the share of a trial's
wall time spent outside the objective and outside training, opening the study, and the
worker's peak memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchkit import ROOT
from benchkit.studies import STUDY


def overhead(trials: int, folder: Path) -> dict[str, float]:
    """One worker in a fresh process, data loaded and study opened before the clock.

    Per trial (each `study.optimize(n_trials=1)` call of a worker): the share of its
    wall time spent outside the objective (Optuna's ask and tell, the sampler, SQLite:
    the issue's measure), and the share spent outside training itself (also counting
    the suggest, report, should_prune and user-attr calls made inside the objective,
    and building the net). Opening the study is a once-per-worker cost, shown apart.
    Also the worker's peak RSS."""
    code = f"""
import time, json
import optuna
from hpsearch import spec
from hpsearch.runner import run
from hpsearch.work import quiet_optuna
from hpsearch.objective import Objective, load_split
from threadpoolctl import threadpool_limits
clock = {{"objective": 0.0, "trials": 0.0}}
def timed(function, key):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            clock[key] += time.perf_counter() - start
    return wrapper
# On the class itself, so whichever module of hpsearch calls it is timed.
Objective.__call__ = timed(Objective.__call__, "objective")
optuna.Study.optimize = timed(optuna.Study.optimize, "trials")
quiet_optuna()
s = spec.load({str(STUDY)!r}).with_overrides(
    storage="sqlite:///{folder / "overhead.db"}", n_trials={trials})
with threadpool_limits(1):
    load_split(s.data, s.seed)
    start = time.perf_counter()
    result = run(s)
    wall = time.perf_counter() - start
training = sum(t.user_attrs.get("seconds", 0.0) for t in result.study.trials)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the forking parent.
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(json.dumps({{"wall": wall, "trial_time": clock["trials"], "objective": clock["objective"],
                  "training": training, "trials": result.finished_now,
                  "rss_mb": int(status) / 1024}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    f = json.loads(out.stdout.strip().splitlines()[-1])
    outside = f["trial_time"] - f["objective"]
    not_training = f["trial_time"] - f["training"]
    return {
        "optuna_sqlite_overhead_share": outside / f["trial_time"],
        "optuna_sqlite_overhead_ms_per_trial": outside / f["trials"] * 1e3,
        "non_training_share": not_training / f["trial_time"],
        "non_training_ms_per_trial": not_training / f["trials"] * 1e3,
        "opening_and_other_ms": (f["wall"] - f["trial_time"]) * 1e3,
        "worker_peak_rss_mb": f["rss_mb"],
    }
