"""Where one worker's time goes: every second of its trial loop is charged to exactly one
part (training, the sampler, storage reads, storage writes, the pruner, the
budget, hpsearch's objective around training, Optuna's trial loop, the worker loop),
the innermost timed call that was running. Run in a fresh process of its own
(`python -m bench.speed.trial_clock SPEC DATABASE TRIALS` from the repository, DATABASE
an SQLite file or a storage URL); prints one JSON line. Only the main thread is timed: the
heartbeat thread runs beside it. The clock's own cost (two clock reads per timed call)
lands in the parts it times: an upper bound.

Training is what the speed targets call training: each epoch's forward, backward and update
steps (`train._train_epoch`) and its validation pass (`MultiLayerNet.accuracy`).
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The parts, in the order they are printed, with what each one is.
PART_LABELS = {
    "training": "training (epochs' steps and validation passes)",
    "sampler": "sampler (its own computation)",
    "storage_reads": "storage reads (the sampler's and pruner's)",
    "storage_writes": "storage writes (trial, params, reports, attrs)",
    "pruner": "pruner (its own computation)",
    "budget": "budget checks",
    "objective": "hpsearch's objective around training",
    "optuna_loop": "Optuna's trial loop (ask/tell glue)",
    "worker_loop": "the worker's loop between trials",
}
PARTS = tuple(PART_LABELS)
SAMPLER_METHODS = (
    "infer_relative_search_space",
    "sample_relative",
    "sample_independent",
    "before_trial",
    "after_trial",
)
WRITE_METHODS = (
    "create_new_trial",
    "_create_new_trial",
    "set_trial_param",
    "_set_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_user_attrs",
    "set_trial_system_attr",
)


class Clock:
    """Exclusive time per part (a call's time minus the timed calls inside it) and
    inclusive time per part (outermost calls only), inside the worker's loop: opening
    the study before it is a cost of its own."""

    def __init__(self) -> None:
        self.exclusive: dict[str, float] = defaultdict(float)
        self.inclusive: dict[str, float] = defaultdict(float)
        self._stack: list[list[Any]] = []  # [part, resumed at]
        self._depth: dict[str, int] = defaultdict(int)

    def timed(self, function: Callable, part: str) -> Callable:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            outside_the_loop = not self._stack and part != "worker_loop"
            if outside_the_loop or threading.current_thread() is not threading.main_thread():
                return function(*args, **kwargs)
            start = time.perf_counter()
            if self._stack:
                self.exclusive[self._stack[-1][0]] += start - self._stack[-1][1]
            self._stack.append([part, start])
            self._depth[part] += 1
            try:
                return function(*args, **kwargs)
            finally:
                end = time.perf_counter()
                self.exclusive[part] += end - self._stack.pop()[1]
                self._depth[part] -= 1
                if self._depth[part] == 0:
                    self.inclusive[part] += end - start
                if self._stack:
                    self._stack[-1][1] = end

        return wrapper

    def wrap(self, owner: Any, name: str, part: str) -> None:
        """Time `owner.name` (a function or a classmethod of a class, or a module's
        function) as `part`."""
        attribute = inspect.getattr_static(owner, name)
        if isinstance(attribute, classmethod):
            setattr(owner, name, classmethod(self.timed(attribute.__func__, part)))
        else:
            setattr(owner, name, self.timed(getattr(owner, name), part))


def instrument(clock: Clock, spec: Any) -> None:
    """Charge every part of a worker's trial loop to `clock`."""
    import optuna

    from hpsearch import train
    from hpsearch.nn import MultiLayerNet
    from hpsearch.search import budget, runner
    from hpsearch.search.samplers import make_pruner, make_sampler
    from hpsearch.storage.version_gate import rdb_storage_class
    from hpsearch.trials.network import Objective

    clock.wrap(train, "_train_epoch", "training")
    clock.wrap(MultiLayerNet, "accuracy", "training")
    for sampler_class in {type(make_sampler(spec)), optuna.samplers.RandomSampler}:
        for name in SAMPLER_METHODS:
            clock.wrap(sampler_class, name, "sampler")
    clock.wrap(type(make_pruner(spec)), "prune", "pruner")
    storage_class = rdb_storage_class()
    for name in dir(storage_class):
        if name.startswith(("get_", "_get_")) and callable(getattr(storage_class, name)):
            clock.wrap(storage_class, name, "storage_reads")
    for name in WRITE_METHODS:
        if hasattr(storage_class, name):
            clock.wrap(storage_class, name, "storage_writes")
    clock.wrap(budget.Budget, "of", "budget")
    clock.wrap(budget.WithinBudget, "__call__", "budget")
    clock.wrap(Objective, "__call__", "objective")
    clock.wrap(optuna.Study, "optimize", "optuna_loop")
    clock.wrap(runner, "work", "worker_loop")  # the name the runner calls


def main(spec_path: str, database: str, trials: int) -> dict[str, Any]:
    """`database`: an SQLite file, or a storage URL (PostgreSQL)."""
    from threadpoolctl import threadpool_limits

    from hpsearch import spec as spec_module
    from hpsearch.search.runner import run
    from hpsearch.search.work import quiet_optuna
    from hpsearch.spec import with_overrides
    from hpsearch.trials.context import load_split

    quiet_optuna()
    spec = with_overrides(spec_module.load(spec_path), n_trials=trials)
    if "://" in database:  # a server's database may hold an earlier run's study
        spec = with_overrides(spec, storage=database, name=f"{spec.name}-{uuid.uuid4().hex[:8]}")
    else:
        spec = with_overrides(spec, storage=f"sqlite:///{database}")
    clock = Clock()
    instrument(clock, spec)
    with threadpool_limits(1):
        load_split(spec.data, spec.seed)  # data loaded before the clock, as a worker has it
        start = time.perf_counter()
        result = run(spec)
        wall = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the forking parent.
    status = Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]
    return {
        "trials": result.finished_now,
        "wall": wall,
        "loop": clock.inclusive["worker_loop"],  # the worker's loop over its trials
        "trial_time": clock.inclusive["optuna_loop"],  # inside study.optimize
        "objective_time": clock.inclusive["objective"],
        "parts": {part: clock.exclusive[part] for part in PARTS},
        "rss_mb": int(status) / 1024,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
