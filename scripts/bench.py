"""`make bench`: hpsearch's training step and study throughput, measured side by side.

Prints one table, a PASS/FAIL line per target of issue 6, and writes the figures as
JSON under bench/results/ with the machine's CPU and library versions. Every ratio
is measured in this one run, on this machine; nothing here is a timed assert.

    python scripts/bench.py [--steps 300] [--trials 100] [--quick]

The work is done by the modules of scripts/benchkit/; this file only reads the options.
"""

from __future__ import annotations

import argparse

from benchkit import ROOT, measure, record, report


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    parser.add_argument("--quick", action="store_true", help="fewer steps and trials")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    steps, trials = (100, 20) if args.quick else (args.steps, args.trials)
    pairs = 1 if args.quick else max(1, args.pairs)
    measured = measure.run(steps, trials, pairs, args.quick)
    report.print_figures(measured)
    targets = report.targets(measured.figures)
    report.print_targets(measured.figures, targets)
    path = record.write(record.new_record(measured.figures, targets))
    print(f"written: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
