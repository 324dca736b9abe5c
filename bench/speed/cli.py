"""The options of `python -m bench speed` (`make bench`): hpsearch's training step and study
throughput, measured side by side.

Prints one table and a PASS/FAIL line per target, and writes the figures as JSON under
bench/results/ with the machine's CPU and library versions. Every ratio is measured in
this one run, on this machine; nothing here is a timed assert.

    python -m bench speed [--steps 300] [--trials 100] [--pairs 5] [--scale-trials 10000]
                          [--repetitions 2] [--quick] [--docs]
    python -m bench speed --reproducible-only [--trials 100] [--repetitions 2] [--quick]
    python -m bench speed --render [bench/results/bench-STAMP.json]

With --docs (what `make bench` passes when given no ARGS) docs/benchmarks.md is rendered
from the results file just written; --render renders it from a results file without
measuring (the newest that suffices when none is named). --reproducible-only measures
only the reproducible search against the free one (a results file the page is never
rendered from). The work is done by the other modules of this package.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench import RESULTS, newest
from bench.speed import measure, page, record, report, reproducible
from bench.speed.workloads import LR, SIZES, WEIGHT_DECAY


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench speed",
        description="hpsearch's training step and study throughput, measured side by side",
    )
    parser.add_argument("--steps", type=int, default=300, help="timed steps per variant")
    parser.add_argument(
        "--trials", type=int, default=100, help="trials per study run (the default study's budget)"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=5,
        help="1-worker and 2-worker runs of the default study, alternated (median ratio)",
    )
    parser.add_argument(
        "--scale-trials",
        type=int,
        default=10_000,
        help="trials of the study at scale (a synthetic learning curve in place of training)",
    )
    parser.add_argument(
        "--repetitions",
        type=int,
        default=2,
        help="free and reproducible searches with 1 and 2 workers, alternated (median)",
    )
    parser.add_argument(
        "--reproducible-only",
        action="store_true",
        help="measure only the reproducible search against the free one",
    )
    parser.add_argument("--quick", action="store_true", help="fewer steps and trials")
    parser.add_argument(
        "--docs", action="store_true", help="also render docs/benchmarks.md from this run"
    )
    parser.add_argument(
        "--render",
        nargs="?",
        const="",
        metavar="RESULTS",
        help="no runs: render docs/benchmarks.md from a bench-*.json results file (without "
        "one, the newest in bench/results that suffices)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.render is not None:
        return render(Path(args.render) if args.render else None)
    steps, trials = (100, 20) if args.quick else (args.steps, args.trials)
    pairs = 1 if args.quick else max(1, args.pairs)
    scale_trials = 1_000 if args.quick else args.scale_trials
    repetitions = 1 if args.quick else max(1, args.repetitions)
    if args.reproducible_only:
        return reproducible_only(trials, repetitions, args.quick)
    measured = measure.run(steps, trials, pairs, args.quick, scale_trials, repetitions)
    report.print_figures(measured)
    targets = report.targets(measured.figures)
    report.print_targets(measured.figures, targets)
    settings = {
        "steps": steps,
        "trials": trials,
        "pairs": pairs,
        "scale_trials": scale_trials,
        "repetitions": repetitions,
        "lag": reproducible.lag(),
        "quick": args.quick,
        "net": SIZES,
        "lr": LR,
        "weight_decay": WEIGHT_DECAY,
    }
    path = record.write(record.new_record(measured.figures, targets, settings))
    print(f"written: {newest.shown(path)}")
    if args.docs and args.quick:
        print("docs/benchmarks.md is not rendered from a --quick run")
        return 0
    return render(path) if args.docs else 0


def reproducible_only(trials: int, repetitions: int, quick: bool) -> int:
    """The reproducible search's figures alone, printed and written as a results file
    (which docs/benchmarks.md is never rendered from: it lacks the rest)."""
    with tempfile.TemporaryDirectory() as tmp:
        figures = reproducible.reproducible_runs(trials, repetitions, Path(tmp))
    print(f"default study, {trials} trials")
    print("\n".join(reproducible.lines(figures)))
    targets = reproducible.targets(figures)
    report.print_target_lines(targets)
    settings = {
        "only": "reproducible",
        "trials": trials,
        "repetitions": repetitions,
        "lag": reproducible.lag(),
        "quick": quick,
    }
    path = record.write(record.new_record(figures, targets, settings))
    print(f"written: {newest.shown(path)}")
    return 0


def render(path: Path | None) -> int:
    """docs/benchmarks.md from the results file at `path` (None: the newest that
    suffices); exit status 2 with a one-line reason when it cannot be."""
    if path is None:
        found = record.newest_sufficient()
        if found is None:
            print(f"bench: no results file in {newest.shown(RESULTS)} suffices", file=sys.stderr)
            return 2
        path = found
    if not path.is_file():
        print(f"bench: no results file {path}", file=sys.stderr)
        return 2
    results = record.load(path)
    if not record.sufficient(results):
        print(f"bench: {path} lacks figures docs/benchmarks.md shows", file=sys.stderr)
        return 2
    page.write(results, path)
    print(f"rendered {newest.shown(page.DOC)} from {newest.shown(path)}")
    return 0
