"""The reproducible parallel search (the spec's `search.reproducible`: trial n is sampled
from trials n - lag and earlier, and pruned at each epoch against every earlier trial's
value there) beside the free one: the default study searched
freely and reproducibly, with 1 and with 2 worker processes, each run in a fresh SQLite
database and timed whole (`studies.study_run`, as the other study figures are).

Two figures matter: how a reproducible search scales from 1 worker to 2 (the target),
and what it costs against a free search with as many workers (the price). Each run
takes seconds and this VM's speed drifts over such spans, so the four runs are
repeated, in an order that reverses every repetition (free-1, reproducible-1,
reproducible-2, free-2, then back), which puts the runs of each ratio side by side.
Every reproducible run must hold the same trials as the first (1 and 2 workers, and
one repetition against the next): `hpsearch.analysis.compare.differences` says whether they do.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.speed.studies import STUDY, StudyRun, study_run

SCALING_TARGET = 1.6  # reproducible, 2 workers against 1, trials/min
# Adjacent in this order, and in its reverse: every ratio compares neighbouring runs.
ORDER = (("free", 1), ("reproducible", 1), ("reproducible", 2), ("free", 2))

Figures = dict[str, float | int | bool | list[float] | None]


def key(mode: str, workers: int) -> str:
    return f"{mode}_{workers}"


def lag() -> int:
    """The lag of the default study's reproducible search (its spec's, or the default)."""
    from hpsearch import spec

    return spec.load(STUDY).search.lag


def reproducible_runs(trials: int, repetitions: int, folder: Path) -> Figures:
    """The four configurations, `repetitions` times each, alternating; their figures
    (medians, the runs behind them, ratios, whether the reproducible runs agree)."""
    from hpsearch.analysis.compare import differences

    runs: dict[str, list[StudyRun]] = {key(*config): [] for config in ORDER}
    reference = None  # the first reproducible run's trials
    differing = 0  # rows of `differences` over every reproducible run against it
    for repetition in range(repetitions):
        for mode, workers in ORDER if repetition % 2 == 0 else reversed(ORDER):
            name = f"{key(mode, workers)}-{repetition}"
            run, done = study_run(
                workers, trials, folder, name, reproducible=mode == "reproducible"
            )
            runs[key(mode, workers)].append(run)
            if mode == "reproducible":
                if reference is None:
                    reference = done
                else:
                    differing += len(differences(reference, done))
    return figures_of(runs, differing)


def figures_of(runs: dict[str, list[StudyRun]], differing: int) -> Figures:
    """The results JSON's figures from the runs of each configuration (in repetition
    order) and the count of differences found between the reproducible runs."""

    def per_rep(a: str, b: str, rate: str = "per_minute") -> list[float]:
        return [getattr(x, rate) / getattr(y, rate) for x, y in zip(runs[a], runs[b], strict=True)]

    figures: Figures = {"reproducible_repetitions": len(runs["free_1"])}
    for name, done in runs.items():
        figures[f"repro_trials_per_min_{name}"] = statistics.median(r.per_minute for r in done)
        figures[f"repro_epochs_per_min_{name}"] = statistics.median(
            r.epochs_per_minute for r in done
        )
        figures[f"repro_trials_per_min_{name}_runs"] = [r.per_minute for r in done]
        figures[f"repro_epochs_{name}_runs"] = [r.epochs for r in done]
        figures[f"repro_seconds_{name}_runs"] = [r.seconds for r in done]
    for figure, (a, b) in {
        "reproducible_scaling": ("reproducible_2", "reproducible_1"),
        "reproducible_price_1_worker": ("reproducible_1", "free_1"),
        "reproducible_price_2_workers": ("reproducible_2", "free_2"),
    }.items():
        pairs = per_rep(a, b)
        figures[figure] = statistics.median(pairs)
        figures[f"{figure}_pairs"] = pairs
        figures[f"{figure}_epochs"] = statistics.median(per_rep(a, b, "epochs_per_minute"))
    figures["reproducible_differences"] = differing
    figures["reproducible_identical"] = differing == 0
    return figures


def _spread(values: list[float]) -> str:
    return f"{min(values):.0f}-{max(values):.0f}" if len(values) > 1 else "one run"


def lines(f: dict) -> list[str]:
    """What `make bench` prints of these figures."""
    n = f["reproducible_repetitions"]
    out = [f"reproducible parallel search (median of {n} alternated repetitions, spread):"]
    for mode, workers in sorted(ORDER):
        name = key(mode, workers)
        runs = f[f"repro_trials_per_min_{name}_runs"]
        out.append(
            f"  {mode:<12} {workers} worker{'s' if workers > 1 else ' '}: "
            f"{f[f'repro_trials_per_min_{name}']:>5.0f} trials/min ({_spread(runs)}), "
            f"{f[f'repro_epochs_per_min_{name}']:>6.0f} epochs/min; epochs "
            + ", ".join(str(e) for e in f[f"repro_epochs_{name}_runs"])
        )
    out += [
        f"  reproducible, 2 workers against 1: x{f['reproducible_scaling']:.2f} trials/min "
        f"({_pairs(f, 'reproducible_scaling')}), x{f['reproducible_scaling_epochs']:.2f} "
        "epochs/min",
        f"  its price, reproducible against free: x{f['reproducible_price_1_worker']:.2f} "
        f"trials/min with 1 worker ({_pairs(f, 'reproducible_price_1_worker')}), "
        f"x{f['reproducible_price_2_workers']:.2f} with 2 "
        f"({_pairs(f, 'reproducible_price_2_workers')}); epochs/min "
        f"x{f['reproducible_price_1_worker_epochs']:.2f} and "
        f"x{f['reproducible_price_2_workers_epochs']:.2f}",
        f"  the reproducible runs hold identical trials (1 and 2 workers, every repetition): "
        f"{_identical(f)}",
    ]
    return out


def _pairs(f: dict, figure: str) -> str:
    return "per repetition " + ", ".join(f"x{r:.2f}" for r in f[f"{figure}_pairs"])


def _identical(f: dict) -> str:
    if f["reproducible_identical"]:
        return "yes"
    return f"no ({f['reproducible_differences']} differing fields)"


def targets(f: dict) -> list[tuple[str, bool]]:
    """The reproducible search's target, when the run measured it."""
    if "reproducible_scaling" not in f:
        return []
    scaling = f["reproducible_scaling"]
    return [
        (
            f"reproducible search: 2 workers >= {SCALING_TARGET} x trials/min of 1: "
            f"{scaling:.2f} x",
            scaling >= SCALING_TARGET,
        )
    ]


def page_rows(f: dict) -> list[str]:
    """Rows of docs/benchmarks.md's default-study table, from runs that measured them."""
    if "reproducible_scaling" not in f:
        return []
    n = f["reproducible_repetitions"]
    rate = {key(*c): f"{f[f'repro_trials_per_min_{key(*c)}']:.0f}" for c in ORDER}
    return [
        f"| reproducible search, 2 workers against 1 (median of {n} alternated repetitions) | "
        f"**x{f['reproducible_scaling']:.2f}** trials/min ({rate['reproducible_1']} and "
        f"{rate['reproducible_2']}; {_pairs(f, 'reproducible_scaling')}), "
        f"x{f['reproducible_scaling_epochs']:.2f} epochs/min; the same trials with 1 and 2 "
        f"workers: {_identical(f)} |",
        f"| reproducible against free search (free: {rate['free_1']} and {rate['free_2']} "
        f"trials/min) | x{f['reproducible_price_1_worker']:.2f} trials/min with 1 worker, "
        f"x{f['reproducible_price_2_workers']:.2f} with 2; "
        f"x{f['reproducible_price_1_worker_epochs']:.2f} and "
        f"x{f['reproducible_price_2_workers_epochs']:.2f} epochs/min |",
    ]
