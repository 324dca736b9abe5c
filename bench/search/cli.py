"""The options of `python -m bench search` (`make bench-search`): search strategies on
several tasks, over seeds, against an oracle.

A task is an ordinary study spec (bench/tasks/*.toml: data, model, training, search
space). Each strategy (bench/search/strategies.py) searches each task once per
seed; a run records its best validation accuracy, the test accuracy of the chosen
configuration (`hpsearch final`), and the epochs and trials it spent. Each task has an
oracle: the best test accuracy its space allows, from one long random search whose best
configurations are retrained on every seed's data (bench/search/runs.py); it is
computed once and kept in the output folder. Every strategy is reported as its gap to
the oracle.

Seeds: 0 to 9 are development seeds (they chose hpsearch's defaults); the report uses
seeds from 100 on, which chose nothing.

    python -m bench search [--tasks PATH...] [--strategies default,random-100]
        [--seeds 5] [--first-seed 100] [--out DIR] [--jobs 2] [--caps-from JSON] [--docs]
    python -m bench search --merge NEWEST.json OLDER.json... [--docs]
    python -m bench search --render [bench/results/search-quality/search-quality-STAMP.json]

With --docs (what `make bench-search` passes when given no ARGS) docs/search-quality.md
is rendered from the results file written; --render renders it without running anything
(from the newest results file in bench/results/search-quality when none is named). This
module parses the options; the work is done by the other modules of this package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import newest
from bench.search import publish, schedule, tasks
from bench.search.runs import FINAL_SEEDS, ORACLE_TRIALS
from bench.search.strategies import choose


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench search",
        description="search strategies on several tasks, over seeds, against each task's oracle",
    )
    parser.add_argument("--tasks", nargs="+", type=Path, help="task specs (default: bench/tasks)")
    parser.add_argument("--strategies", help="comma-separated strategy names (default: all)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per strategy (default 5)")
    parser.add_argument("--first-seed", type=int, default=100, help="report seeds from here")
    parser.add_argument(
        "--out", type=Path, default=publish.OUT, help="folder for JSON and Markdown"
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one core each)")
    parser.add_argument(
        "--caps-from",
        type=Path,
        metavar="JSON",
        help="without random-100 among the strategies: hold the others to their share of "
        "what it spent on each task and seed in this results file",
    )
    parser.add_argument("--oracle-trials", type=int, default=ORACLE_TRIALS)
    parser.add_argument(
        "--final-seeds",
        type=int,
        default=FINAL_SEEDS,
        help=f"retrainings of each chosen configuration, averaged (default {FINAL_SEEDS})",
    )
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle")
    parser.add_argument(
        "--oracle-only", action="store_true", help="only search and retrain the oracles"
    )
    parser.add_argument("--docs", action="store_true", help="also render docs/search-quality.md")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="no runs: one results file from several (newest first: its runs win)",
    )
    parser.add_argument(
        "--render",
        nargs="?",
        const="",
        metavar="JSON",
        help="no runs: render docs/search-quality.md from a results file (without one, the "
        "newest in bench/results/search-quality)",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1 or args.final_seeds < 1:
        parser.error("--seeds, --jobs and --final-seeds must be at least 1")
    if args.caps_from is not None and not args.caps_from.is_file():
        parser.error(f"--caps-from: no results file {args.caps_from}")
    try:
        args.tasks = tasks.find(args.tasks)
        args.strategies = [] if args.oracle_only else choose(args.strategies)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.merge:
        publish.merge(args.merge, args.out, args.docs)
        return 0
    if args.render is not None:
        source = Path(args.render) if args.render else publish.newest_results()
        if source is None or not source.is_file():
            print(f"bench: no results file {source or publish.OUT}", file=sys.stderr)
            return 2
        publish.render(source)
        print(f"rendered {newest.shown(publish.DOC)} from {newest.shown(source)}")
        return 0
    plan = schedule.Plan(
        tasks=args.tasks,
        strategies=args.strategies,
        seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
        out=args.out,
        jobs=args.jobs,
        oracle_trials=args.oracle_trials,
        oracles=not args.no_oracle,
        spent={} if args.caps_from is None else schedule.baseline_spent(args.caps_from),
        final_seeds=args.final_seeds,
    )
    measured = publish.commit()  # before the runs: later commits did not run them
    try:
        outcome = schedule.run(plan)
    except schedule.RunFailed as exc:
        print(f"bench: {exc} (the runs so far: {args.out / schedule.PARTIAL})", file=sys.stderr)
        return 1
    if args.oracle_only:
        print(f"oracles kept in {args.out}")
        return 0
    publish.publish(publish.new_record(plan, outcome, measured), args.out, args.docs)
    (args.out / schedule.PARTIAL).unlink(missing_ok=True)
    return 0
