"""The runs of one bench-search in a pool of worker processes: every strategy on every
task and seed, each task's oracle search and its retrainings on every seed's data.

It owns the order of work: a capped strategy waits for `random-100` on its task and seed
(its budget is a share of what that spent); an oracle, or a seed's retrainings, stored
in the output folder by an earlier run is reused, not searched again; every finished run
is appended to `partial.jsonl` there at once; and a progress line with the time left is
printed as jobs finish.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from bench.search.runs import (
    FINAL_SEEDS,
    ORACLE_RETRAINS,
    ORACLE_TOP,
    one_run,
    oracle_for_seed,
    oracle_retrain,
    oracle_search,
)
from bench.search.strategies import BASELINE, Strategy, applies, epoch_cap
from bench.search.tasks import oracle_path

PARTIAL = "partial.jsonl"  # the runs so far, in the output folder: survives a crash mid-way
WORK = {"search": 3.0, "run": 1.0, "retrain": 1 / 30}


class RunFailed(Exception):
    """A run, oracle search or retraining of the benchmark raised: which one, and why."""


class Progress:
    """Counts finished jobs; the time left is estimated in units of work, where an oracle
    search is three runs and a retraining a thirtieth of one."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.total = sum(counts.values())
        self.work = sum(WORK[kind] * n for kind, n in counts.items())
        self.done, self.worked, self.start = 0, 0.0, time.perf_counter()

    def count(self, kind: str, n: int = 1) -> None:
        self.done += n
        self.worked += WORK[kind] * n

    def say(self, kind: str, text: str) -> None:
        self.count(kind)
        elapsed = time.perf_counter() - self.start
        left = elapsed / self.worked * (self.work - self.worked)
        print(f"[{self.done}/{self.total} {elapsed:.0f} s, ~{left:.0f} s left] {text}", flush=True)


@dataclass(frozen=True)
class Plan:
    """What to run: `strategies` on `tasks` (resolved task files) with each of `seeds`,
    `jobs` at a time, oracles searched with `oracle_trials` unless `oracles` is False;
    results and oracle files in `out`. Without `random-100` among the strategies, a
    capped one is held to its share of `spent[(task, seed)]`, the epochs random-100
    spent in an earlier run, when given (else of 100 trials at full epochs)."""

    tasks: list[Path]
    strategies: list[Strategy]
    seeds: list[int]
    out: Path
    jobs: int
    oracle_trials: int
    oracles: bool = True
    spent: dict[tuple[str, int], int] = field(default_factory=dict)
    final_seeds: int = FINAL_SEEDS  # retrainings behind each run's test accuracy


@dataclass(frozen=True)
class Outcome:
    """The finished runs in the order they finished, the oracles by task name (those
    not searched have no `top`), and the wall time from the first job on."""

    runs: list[dict]
    oracles: dict[str, dict]
    seconds: float


def baseline_spent(path: Path) -> dict[tuple[str, int], int]:
    """The epochs random-100 spent per (task, seed) in the results file at `path`."""
    runs = json.loads(path.read_text())["runs"]
    return {(r["task"], r["seed"]): r["epochs"] for r in runs if r["strategy"] == BASELINE}


def run(plan: Plan) -> Outcome:
    """Every job of `plan`, `plan.jobs` at a time; prints one line per finished job."""
    plan.out.mkdir(parents=True, exist_ok=True)
    oracles: dict[str, dict] = {}
    for task in plan.tasks:
        path = oracle_path(plan.out, task)
        oracles[task.stem] = json.loads(path.read_text()) if path.exists() else {}
        oracles[task.stem].setdefault("by_seed", {})
    jobs = [
        (task, strategy, seed)
        for task in plan.tasks
        for strategy in plan.strategies
        if applies(strategy, task.stem)
        for seed in plan.seeds
    ]
    searches = [t for t in plan.tasks if "top" not in oracles[t.stem]] if plan.oracles else []
    retrains = len(plan.tasks) * len(plan.seeds) * ORACLE_TOP * ORACLE_RETRAINS
    counts = {"search": len(searches), "run": len(jobs), "retrain": retrains if plan.oracles else 0}
    seeds = plan.seeds
    print(
        f"bench-search: {len(plan.tasks)} tasks x {len(plan.strategies)} strategies x seeds "
        f"{seeds[0]}..{seeds[-1]}: {len(jobs)} runs, {len(searches)} oracle searches, "
        f"{plan.jobs} at a time",
        flush=True,
    )
    progress = Progress(counts)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, ProcessPoolExecutor(plan.jobs) as pool:
        work = _Pool(plan, oracles, pool, folder, progress)
        for task in searches:
            work.submit(("search", task), oracle_search, str(task), folder, plan.oracle_trials)
        has_baseline = any(s.name == BASELINE for s in plan.strategies)
        for task, strategy, seed in jobs:
            if strategy.epoch_share is None or not has_baseline:
                work.start_run(task, strategy, seed, plan.spent.get((task.stem, seed)))
            else:
                work.waiting.setdefault((task.stem, seed), []).append(strategy)
        for task in plan.tasks:
            if plan.oracles and task not in searches:
                work.retrain_oracle(task)
        try:
            work.drain()
        except BaseException:
            # A run that failed ends the benchmark now, not once every queued run is done.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return Outcome(work.runs, oracles, time.perf_counter() - started)


class _Pool:
    """The jobs in flight and what each one's end sets off."""

    def __init__(
        self,
        plan: Plan,
        oracles: dict[str, dict],
        pool: ProcessPoolExecutor,
        folder: str,
        progress: Progress,
    ) -> None:
        self.plan, self.oracles, self.pool = plan, oracles, pool
        self.folder, self.progress = folder, progress
        self.pending: dict[Future, tuple] = {}
        self.retrained: dict[tuple[str, int], dict[tuple[int, int], float | None]] = {}
        self.waiting: dict[tuple[str, int], list[Strategy]] = {}
        self.runs: list[dict] = []

    def submit(self, job: tuple, function: Callable[..., object], *args: object) -> None:
        self.pending[self.pool.submit(function, *args)] = job

    def start_run(self, task: Path, strategy: Strategy, seed: int, spent: int | None) -> None:
        """One run, held to its share of the `spent` epochs of random-100."""
        cap = epoch_cap(task, strategy, spent)
        self.submit(
            ("run", task, strategy.name, seed),
            one_run,
            str(task),
            strategy,
            seed,
            self.folder,
            cap,
            self.plan.final_seeds,
        )

    def retrain_oracle(self, task: Path) -> None:
        """Retrain the oracle's configurations on every seed's data, reusing the
        retrainings an earlier run stored."""
        oracle = self.oracles[task.stem]
        for seed in self.plan.seeds:
            stored = oracle["by_seed"].get(str(seed), {}).get("retrained", [])
            cell = self.retrained.setdefault((task.stem, seed), {})
            for index, config in enumerate(oracle["top"]):
                for retrain in range(ORACLE_RETRAINS):
                    if index < len(stored) and retrain < len(stored[index]):
                        cell[(index, retrain)] = stored[index][retrain]
                        self.progress.count("retrain")
                        continue
                    job = ("retrain", task, seed, index, retrain)
                    self.submit(job, oracle_retrain, str(task), config["params"], seed, retrain)
            self._settle(task, seed)

    def _settle(self, task: Path, seed: int) -> None:
        """The oracle of a seed, once all its retrainings are in."""
        cell = self.retrained[(task.stem, seed)]
        configs = len(self.oracles[task.stem]["top"])
        if len(cell) < configs * ORACLE_RETRAINS:
            return
        rows = [[cell[(i, r)] for r in range(ORACLE_RETRAINS)] for i in range(configs)]
        oracle = oracle_for_seed(rows)
        self.oracles[task.stem]["by_seed"][str(seed)] = oracle
        self._keep_oracle(task)
        print(f"{task.stem} oracle on seed {seed}: test {oracle['test']}", flush=True)

    def _keep_oracle(self, task: Path) -> None:
        path = oracle_path(self.plan.out, task)
        path.write_text(json.dumps(self.oracles[task.stem], indent=1))

    def drain(self) -> None:
        """Wait for every job, handling each as it finishes (which may submit more)."""
        while self.pending:
            finished, _ = wait(self.pending, return_when=FIRST_COMPLETED)
            for future in finished:
                kind, task, *rest = job = self.pending.pop(future)
                try:
                    value = future.result()
                except Exception as exc:
                    raise RunFailed(f"{_named(job)} failed: {exc}") from exc
                if kind == "search":
                    self._searched(task, value)
                elif kind == "retrain":
                    seed, index, retrain = rest
                    self.retrained[(task.stem, seed)][(index, retrain)] = value
                    self.progress.count("retrain")
                    self._settle(task, seed)
                else:
                    self._ran(task, value)

    def _searched(self, task: Path, value: dict) -> None:
        self.oracles[task.stem] |= value
        self._keep_oracle(task)
        self.progress.say(
            "search",
            f"{task.stem} oracle search: {value['trials']} trials, best val "
            f"{value['top'][0]['val']:.4f} ({value['search_seconds']:.0f} s)",
        )
        self.retrain_oracle(task)

    def _ran(self, task: Path, value: dict) -> None:
        if value["strategy"] == BASELINE:
            for strategy in self.waiting.pop((task.stem, value["seed"]), []):
                self.start_run(task, strategy, value["seed"], value["epochs"])
        self.runs.append(value)
        with (self.plan.out / PARTIAL).open("a") as stream:
            stream.write(json.dumps(value) + "\n")
        self.progress.say(
            "run",
            f"{value['task']} {value['strategy']} seed {value['seed']}: test "
            f"{value['test']:.4f}, best val {value['best_val']:.4f}, "
            f"{value['epochs']} epochs ({value['seconds']:.0f} s)",
        )


def _named(job: tuple) -> str:
    """A job as the progress lines name it: 'run book default seed 3'."""
    kind, task, *rest = job
    if kind == "run":
        return f"run {task.stem} {rest[0]} seed {rest[1]}"
    return " ".join(str(part) for part in (kind, task.stem, *rest))
