"""One strategy on one task and seed, and the oracle of a task: each runs in a worker
process with one BLAS thread and returns plain data (JSON-ready dicts)."""

from __future__ import annotations

import math
import time
from pathlib import Path

from bench.search.strategies import BASELINE, BY_NAME, Strategy, strategy_spec
from bench.search.tasks import task_key, task_spec

ORACLE_SEED = 424_242  # neither a development nor a report seed
ORACLE_TRIALS = 300
ORACLE_TOP = 10  # configurations retrained
ORACLE_RETRAINS = 6  # retraining seeds per configuration: half choose, half measure
# Retrainings of each run's chosen configuration (`hpsearch final --seeds`): its test
# accuracy is their mean, so that one retraining's luck does not decide a comparison.
FINAL_SEEDS = 3


def _epochs_of(study) -> list[tuple[int, float | None, int]]:
    """(epochs run, value or None, trial number) of each finished trial run here."""
    from hpsearch.search.budget import finished_trials

    return [(t.user_attrs.get("epochs_run", 0), t.value, t.number) for t in finished_trials(study)]


def within_cap(
    rows: list[tuple[int, float | None, int]], full_epochs: int, cap: float | None
) -> list[tuple[int, float | None, int]]:
    """The trials (rows of `_epochs_of`), in order, that a search held to `cap` epochs
    would have run: it stops before a full-length trial could take the total over the
    cap. One worker runs trials one after another, each seeing only those before it, so
    cutting a finished run here equals stopping it there."""
    kept, spent = [], 0
    for row in sorted(rows, key=lambda row: row[2]):
        if cap is not None and spent + full_epochs > cap:
            break
        kept.append(row)
        spent += row[0]
    return kept


def one_run(
    task_path: str,
    strategy: Strategy,
    seed: int,
    folder: str,
    cap: float | None,
    final_seeds: int = FINAL_SEEDS,
) -> dict:
    """`strategy` on the task with `seed`, held to `cap` epochs: best validation accuracy,
    the test accuracy of the chosen configuration (`hpsearch final`, the mean of
    `final_seeds` retrainings), epochs and trials spent. Each round is one uninterrupted
    `run` with one worker, as a user's `hpsearch run` is. A strategy with the confirm
    stage is held to the epochs `default` spends under the same cap (`_confirmed`)."""
    from threadpoolctl import threadpool_limits

    from hpsearch.search.work import quiet_optuna

    quiet_optuna()
    path = Path(task_path)
    storage = f"sqlite:///{Path(folder) / f'{path.stem}-{strategy.name}-s{seed}.db'}"
    start = time.perf_counter()
    with threadpool_limits(limits=1):
        if strategy.confirm is not None:
            searched = _confirmed(path, strategy, seed, folder, cap, storage)
        else:
            searched = _searched(path, strategy, seed, storage, cap)
        result, diverged = _final(searched.pop("choices"), storage, final_seeds)
        searched.pop("rows", None)
    return {
        "task": path.stem,
        "strategy": strategy.name,
        "seed": seed,
        "epoch_cap": cap,
        "best_val": searched.pop("best"),
        "chosen_val": result.validation_value,
        "test": result.test_value,
        "test_runs": result.test_runs[result.metric.name],
        "best_params": result.params,
        "final_diverged": diverged,
        **searched,
        "seconds": time.perf_counter() - start,
    }


def _searched(path: Path, strategy: Strategy, seed: int, storage: str, cap: float | None) -> dict:
    """A strategy without the confirm stage: its rounds, cut at `cap` epochs; the
    candidates best value first."""
    from hpsearch.analysis.narrowing import NarrowingError
    from hpsearch.search.rounds import next_round
    from hpsearch.search.runner import run

    spec = strategy_spec(path, strategy, seed, storage)
    full = spec.training.epochs
    spent, best, trials = 0, -math.inf, 0
    candidates: list[tuple[float, int, str, int]] = []  # value, order, study, trial
    kept_rows: list[tuple[int, float | None, int]] = []
    decisions: list[dict[str, str]] = []
    stopped = ""
    for round_index in range(strategy.rounds):
        study = run(spec).study
        finished = _epochs_of(study)
        rows = within_cap(finished, full, None if cap is None else cap - spent)
        trials += len(rows)
        kept_rows += rows
        for epochs, value, number in rows:
            spent += epochs
            if value is not None:
                best = max(best, value)
                candidates.append((value, -len(candidates), study.study_name, number))
        if round_index == strategy.rounds - 1:
            break
        if len(rows) < len(finished):
            stopped = "epoch cap reached"
            break
        try:
            following = next_round(spec.name, storage, n_trials=strategy.n_trials)
        except NarrowingError as exc:  # no completed trial at all
            stopped = str(exc)
            break
        decisions.append(
            {
                name: f"{change.decision} -> {list(change.new)}"
                for name, change in following.narrowing.changes.items()
            }
        )
        spec = following.spec
    return {
        "choices": [(name, number) for _, _, name, number in sorted(candidates, reverse=True)],
        "rows": kept_rows,  # (epochs, value, number) of the trials within the cap
        "best": best,
        "epochs": spent,
        "trials": trials,
        "rounds": decisions,
        "stopped": stopped,
    }


def _confirmed(
    path: Path, strategy: Strategy, seed: int, folder: str, cap: float | None, storage: str
) -> dict:
    """A strategy with the confirm stage, at the epochs `default` spends: `default`'s
    search (as `_searched` runs it, held to `cap`) gives the epochs E it spent; the
    confirm study then searches as many trials as fit in E less the re-evaluations' full
    epochs (one worker runs the same trials in the same order, so its search is that
    one's first trials), and re-evaluates its leaders. The choice is `records.ranked`'s,
    the re-evaluations' mean; the candidates follow in that order."""
    from hpsearch import records
    from hpsearch.search.confirm import Spending
    from hpsearch.search.runner import run
    from hpsearch.spec import with_overrides

    plain = Path(folder) / f"{path.stem}-{strategy.name}-s{seed}-plain.db"
    default = _searched(path, BY_NAME["default"], seed, f"sqlite:///{plain}", cap)
    spec = strategy_spec(path, strategy, seed, storage)
    full = spec.training.epochs
    reserve = spec.search.confirm.reserve(spec.search.n_trials)  # its share never binds
    kept = within_cap(default["rows"], full, default["epochs"] - reserve * full)
    study = run(with_overrides(spec, n_trials=len(kept) + reserve)).study
    every = study.get_trials(deepcopy=False)
    spent = Spending.of(every)
    values = [
        t.value
        for t in every
        if t.state in records.FINISHED and t.value is not None and not records.is_confirmation(t)
    ]
    ranked = records.ranked(every, records.objectives_of(study))
    return {
        "choices": [(study.study_name, t.number) for t in ranked],
        "best": max(values) if values else -math.inf,
        "epochs": spent.search_epochs + spent.reevaluation_epochs,
        "trials": spent.search_trials + spent.reevaluations,
        "search_trials": spent.search_trials,
        "reevaluations": spent.reevaluations,
        "default_epochs": default["epochs"],
        "rounds": [],
        "stopped": "",
    }


def _final(choices: list[tuple[str, int]], storage: str, seeds: int):
    """`hpsearch final` on the first choice whose retrainings train, as a user would
    after `final` reports that retraining diverged (a diverged retraining never read the
    test split): the result, and the trials passed over."""
    from hpsearch.search.final import RetrainDiverged, final

    diverged = []
    for study_name, number in choices:
        try:
            # A rerun of the benchmark may find the study finalled already: --again.
            result = final(study_name, storage, trial_number=number, seeds=seeds, again=True)
            return result, diverged
        except RetrainDiverged:
            diverged.append(number)
    raise RuntimeError(f"{storage}: no retraining trained")


def oracle_search(task_path: str, folder: str, trials: int = ORACLE_TRIALS) -> dict:
    """The long search behind a task's oracle: `trials` random configurations of the
    task's space at full epochs, unpruned."""
    from threadpoolctl import threadpool_limits

    from hpsearch.search.runner import run
    from hpsearch.search.work import quiet_optuna
    from hpsearch.spec import with_overrides

    quiet_optuna()
    path = Path(task_path)
    storage = f"sqlite:///{Path(folder) / f'{path.stem}-oracle.db'}"
    start = time.perf_counter()
    baseline = BY_NAME[BASELINE]
    with threadpool_limits(limits=1):
        spec = with_overrides(
            strategy_spec(path, baseline, ORACLE_SEED, storage),
            n_trials=trials,
            name=f"{path.stem}-oracle",
        )
        study = run(spec).study
        complete = [t for t in study.trials if t.value is not None]
        ranked = sorted(complete, key=lambda t: t.value, reverse=True)[:ORACLE_TOP]
    return {
        "task": path.stem,
        "key": task_key(path),
        "trials": trials,
        "seed": ORACLE_SEED,
        "top": [{"number": t.number, "val": t.value, "params": t.params} for t in ranked],
        "search_seconds": time.perf_counter() - start,
    }


def oracle_retrain(task_path: str, params: dict, seed: int, retrain: int) -> float | None:
    """Test accuracy of one configuration retrained on the train + validation data of
    `seed` (tasks with a `train_size` draw their examples by seed) with the retraining
    seed `retrain`; None when it diverged."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from hpsearch.spec import with_overrides
    from hpsearch.train import Diverged
    from hpsearch.trials.network import retrain_and_test

    spec = with_overrides(task_spec(Path(task_path)), seed=seed)
    rng = np.random.default_rng([ORACLE_SEED, seed, retrain])
    with threadpool_limits(limits=1):
        try:
            accuracy, _ = retrain_and_test(spec, params, rng)
        except Diverged:
            return None
    return accuracy


def oracle_for_seed(retrained: list[list[float | None]]) -> dict:
    """The oracle on one seed's data: the expected test accuracy of the best of the long
    search's best configurations. The first half of each configuration's retrainings
    chooses the configuration (the oracle may look at the test split: it is the
    reference, not a strategy); the other half measures it, so the luck that made it
    look best is not counted twice. `optimistic` is the best mean over all retrainings,
    which that luck inflates (shown for comparison)."""
    half = len(retrained[0]) // 2
    usable = [i for i, row in enumerate(retrained) if all(a is not None for a in row)]
    if not usable:
        return {"retrained": retrained, "test": None, "config": None, "optimistic": None}

    def mean(values) -> float:
        return sum(values) / len(values)

    chosen = max(usable, key=lambda i: mean(retrained[i][:half]))
    return {
        "retrained": retrained,
        "test": mean(retrained[chosen][half:]),
        "config": chosen,
        "optimistic": max(mean(retrained[i]) for i in usable),
    }
