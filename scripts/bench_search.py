"""`make bench-search`: search strategies on several tasks, over seeds, against an oracle.

A task is an ordinary study spec (bench/tasks/*.toml: data, model, training, search
space). Each strategy (scripts/searchbench/strategies.py) searches each task once per
seed; a run records its best validation accuracy, the test accuracy of the chosen
configuration (`hpsearch final`), and the epochs and trials it spent. Each task has an
oracle: the best test accuracy its space allows, from one long random search whose best
configurations are retrained on every seed's data (scripts/searchbench/runs.py); it is
computed once and kept in the output folder. Every strategy is reported as its gap to
the oracle.

Seeds: 0 to 9 are development seeds (they chose hpsearch's defaults); the report uses
seeds from 100 on, which chose nothing.

    python scripts/bench_search.py [--tasks PATH...] [--strategies default,random-100]
        [--seeds 5] [--first-seed 100] [--out DIR] [--jobs 2] [--docs]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from searchbench import runs as runs_module
from searchbench import schedule, summary
from searchbench.strategies import (
    BASELINE,
    STRATEGIES,
    Strategy,
    catalogue_order,
    choose,
    describe,
)
from searchbench.tasks import find, oracle_path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "search-quality"
DOC = ROOT / "docs" / "search-quality.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- search-quality:begin -->", "<!-- search-quality:end -->"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", type=Path, help="task specs (default: bench/tasks)")
    parser.add_argument("--strategies", help="comma-separated strategy names (default: all)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per strategy (default 5)")
    parser.add_argument("--first-seed", type=int, default=100, help="report seeds from here")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for JSON and Markdown")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one core each)")
    parser.add_argument("--oracle-trials", type=int, default=runs_module.ORACLE_TRIALS)
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle")
    parser.add_argument(
        "--oracle-only", action="store_true", help="only search and retrain the oracles"
    )
    parser.add_argument(
        "--docs", action="store_true", help="also render docs/search-quality.md and the README"
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="no runs: one results file from several (newest first: its runs win)",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="no runs: render docs/search-quality.md and the README from a results file",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs must be at least 1")
    try:
        args.tasks = find(args.tasks)
        args.strategies = [] if args.oracle_only else choose(args.strategies)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.merge:
        return merge(args.merge, args.out, args.docs)
    if args.render is not None:
        record = derived(json.loads(args.render.read_text()))
        figure = Path(tempfile.mkdtemp()) / "search-quality.png"
        summary.plot(record["summary"], figure)
        write_docs(record, figure, args.render)
        print(f"rendered {DOC.relative_to(ROOT)} and the README from {args.render}")
        return 0
    plan = schedule.Plan(
        tasks=args.tasks,
        strategies=args.strategies,
        seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
        out=args.out,
        jobs=args.jobs,
        oracle_trials=args.oracle_trials,
        oracles=not args.no_oracle,
    )
    outcome = schedule.run(plan)
    if args.oracle_only:
        print(f"oracles kept in {args.out}")
        return 0
    record = {
        "when": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "commit": _commit(),
        "seeds": plan.seeds,
        "development_seeds": "0-9",
        "python": sys.version.split()[0],
        "machine": platform.processor() or platform.machine(),
        "tasks": [
            str(t.relative_to(ROOT)) if t.is_relative_to(ROOT) else str(t) for t in plan.tasks
        ],
        "strategies": [asdict(s) for s in plan.strategies],
        "oracles": {k: v for k, v in outcome.oracles.items() if v.get("top")},
        "runs": outcome.runs,
        "wall_seconds": outcome.seconds,
    }
    publish(record, args.out, args.docs)
    (args.out / schedule.PARTIAL).unlink(missing_ok=True)
    return 0


def merge(paths: list[Path], out: Path, docs: bool) -> int:
    """One results file from several runs of the same seeds: the first file's run of a
    (task, strategy, seed) wins, so a re-run of some strategies replaces the old rows."""
    records = [json.loads(path.read_text()) for path in paths]
    seen: dict[tuple[str, str, int], dict] = {}
    for record in records:
        for run in record["runs"]:
            seen.setdefault((run["task"], run["strategy"], run["seed"]), run)
    strategies: dict[str, dict] = {}
    for record in records:
        for strategy in record["strategies"]:
            strategies.setdefault(strategy["name"], strategy)
    oracles: dict[str, dict] = {}
    for task in {t for record in records for t in record["tasks"]}:
        # the oracle files of the output folder are the newest
        path = oracle_path(out, ROOT / task)
        if path.exists():
            oracles[Path(task).stem] = json.loads(path.read_text())
    for record in records:
        for task, oracle in record["oracles"].items():
            oracles.setdefault(task, oracle)
    record = records[0] | {
        "merged_from": [path.name for path in paths],
        "commit": ", ".join(dict.fromkeys(r["commit"] for r in records)),
        "when": max(r["when"] for r in records),
        "tasks": sorted({t for record in records for t in record["tasks"]}),
        "strategies": list(strategies.values()),
        "oracles": oracles,
        "runs": list(seen.values()),
        "wall_seconds": sum(r["wall_seconds"] for r in records),
    }
    publish(record, out, docs)
    return 0


def publish(record: dict, out: Path, docs: bool) -> Path:
    """Order the record's runs and strategies as the catalogue does, derive its table and
    targets, print them, and write the results JSON, its Markdown and figure in `out`
    (and docs/search-quality.md and the README's block with `docs`)."""
    tasks = {Path(t).stem: i for i, t in enumerate(record["tasks"])}
    record["strategies"].sort(key=lambda s: catalogue_order(s["name"]))
    record["runs"].sort(
        key=lambda r: (tasks.get(r["task"], len(tasks)), catalogue_order(r["strategy"]), r["seed"])
    )
    derived(record)
    print()
    print(summary.table(record["summary"]))
    print()
    print("\n".join(record["targets"]))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"search-quality-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(record, indent=1))
    figure = path.with_suffix(".png")
    summary.plot(record["summary"], figure)
    path.with_suffix(".md").write_text(render(record, figure.name))
    print(f"\nresults: {path}\nreport: {path.with_suffix('.md')}")
    if docs:
        write_docs(record, figure, path)
    return path


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def render(record: dict, figure: str) -> str:
    known = {s.name: s for s in STRATEGIES}  # today's descriptions of known strategies
    fields = {f.name for f in dataclasses.fields(Strategy)}
    strategies = [
        known.get(s["name"])
        or Strategy(**{k: v for k, v in s.items() if k in fields} | {"tasks": tuple(s["tasks"])})
        for s in record["strategies"]
    ]
    seeds = record["seeds"]
    return f"""# Search quality on several tasks

Written by `scripts/bench_search.py` on {_day(record)} (commit {record["commit"]},
{record["machine"]}, {record["wall_seconds"] / 60:.0f} min on 2 cores). Report seeds
{seeds[0]} to {seeds[-1]}: they chose nothing. hpsearch's defaults were chosen on the
development seeds 0 to 9 of the book protocol (earlier `make bench-search` runs).{merged(record)}

The test accuracy is that of each run's chosen configuration retrained on train +
validation and evaluated once on the task's held-out test split (`hpsearch final`).
The oracle of a task is the best test accuracy its search space allows, estimated once
per task and seed: {record["oracles"] and next(iter(record["oracles"].values()))["trials"]}
random trials at full epochs, and the {runs_module.ORACLE_TOP} best by validation
accuracy retrained {runs_module.ORACLE_RETRAINS} times on each seed's data. The first half
of the retrainings chooses the best configuration by its mean test accuracy (the oracle
may look at the test split: it is the reference, not a strategy); the other half measures
it, so that the luck which made it look best is not counted twice. The best mean over
all retrainings ("optimistic") is shown beside it: where configurations tie within
retraining noise it is higher, by that luck. Gaps are in points of test accuracy, mean ±
std over seeds, worst seed in brackets.

Strategies (every one but the random baseline is held to a third of the epochs the
random baseline spent on the same task and seed):

{describe(strategies)}

## Oracles

{summary.oracle_table(record["oracles"], seeds)}

## Results

{summary.table(record["summary"])}

{chr(10).join("- " + line for line in record["targets"])}

![gap to the oracle per task]({figure})

## Tasks

{chr(10).join("- `" + t + "`" for t in record["tasks"])}
"""


def _day(record: dict) -> str:
    when = record["when"]
    return f"{when[:4]}-{when[4:6]}-{when[6:8]}"


def merged(record: dict) -> str:
    if not record.get("merged_from"):
        return ""
    return (
        "\nMerged from " + ", ".join(f"`{name}`" for name in record["merged_from"]) + " (newest "
        "first; a newer run of a strategy replaces an older one's rows)."
    )


def derived(record: dict) -> dict:
    """The record with its table and targets recomputed from its runs and oracles (they
    are derived data, so a results file renders the same with today's rules)."""
    record["summary"] = summary.summarise(record["runs"], record["oracles"])
    record["targets"] = summary.targets(record["summary"])
    return record


def write_docs(record: dict, figure: Path, source: Path) -> None:
    """docs/search-quality.md and the README's block, rendered from the results file
    `source` (tests/test_bench_search.py renders them again and compares)."""
    DOC.parent.mkdir(exist_ok=True)
    (DOC.parent / "search-quality.png").write_bytes(figure.read_bytes())
    DOC.write_text(render(record, "search-quality.png"))
    text = README.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        block = readme_block(record, source)
        README.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def readme_block(record: dict, source: Path) -> str:
    rows = record["summary"]
    shown = source.resolve().relative_to(ROOT) if source.resolve().is_relative_to(ROOT) else source
    lines = [
        f"Measured by `make bench-search` on {_day(record)} (commit {record['commit']}), "
        f"report seeds {record['seeds'][0]} to {record['seeds'][-1]}, "
        f"{record['wall_seconds'] / 60:.0f} min of runs on 2 cores (results: {shown}); "
        "docs/search-quality.md has every row.",
        "",
        "| task | oracle | default | gap (worst seed) | random-100 | default's epochs |",
        "|---|---|---|---|---|---|",
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        default, base = summary.row_of(rows, task, "default"), summary.row_of(rows, task, BASELINE)
        if default is None or base is None or default["gap"] is None:
            continue
        lines.append(
            f"| {task} | {default['oracle']:.3f} | {default['test'][0]:.3f} ± "
            f"{default['test'][1]:.3f} | {default['gap'][0] * 100:+.1f} "
            f"({default['worst_gap'] * 100:+.1f}) | {base['test'][0]:.3f} ± {base['test'][1]:.3f} "
            f"| {default['epochs'][0] / base['epochs'][0]:.2f}x |"
        )
    lines += [
        "",
        "What each part of the default adds, in points of mean test accuracy, each measured "
        "against the row without it on the same space (`tpe` - `random-100` is the sampler "
        "at a third of the epochs, then the pruner, the start points, and narrowing rounds "
        "at the same trial budget); the book's own ranges against hpsearch's wider space is "
        "the space:",
        "",
        "| task | sampler | pruner | start points | narrowing (3 rounds) | space (random-100) |",
        "|---|---|---|---|---|---|",
    ]
    steps = [
        ("tpe", "random-100"),
        ("tpe+median", "tpe"),
        ("default", "tpe+median"),
        ("rounds-3", "default"),
        ("random-100", "book-ranges-random-100"),
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        mean = {r["strategy"]: r["test"][0] for r in rows if r["task"] == task}
        cells = [
            f"{(mean[a] - mean[b]) * 100:+.1f}" if a in mean and b in mean else "-"
            for a, b in steps
        ]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += ["", *("- " + line for line in record["targets"])]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
