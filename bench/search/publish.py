"""What a bench-search leaves behind: the results record (JSON) with its figure and its
Markdown page in the output folder, one record merged from several, and
docs/search-quality.md with its figure rendered from a results file (the newest in
bench/results/search-quality unless named)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench import DOCS, RESULTS, ROOT, newest
from bench.search import page, summary
from bench.search.schedule import Outcome, Plan
from bench.search.strategies import catalogue_order
from bench.search.tasks import oracle_path

OUT = RESULTS / "search-quality"
DOC = DOCS / "search-quality.md"
PATTERN = "search-quality-*.json"


def commit() -> str:
    """The commit checked out now."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def new_record(plan: Plan, outcome: Outcome, commit: str) -> dict:
    """The results record of the runs of `plan`: when, at which commit (the one checked
    out when the runs began: the code they ran), on what, and the runs and oracles
    themselves (the oracles not searched are left out)."""
    return {
        "when": newest.stamp(),
        "commit": commit,
        "seeds": plan.seeds,
        "development_seeds": "0-9",
        "python": sys.version.split()[0],
        "machine": platform.processor() or platform.machine(),
        "tasks": [newest.shown(t) for t in plan.tasks],
        "strategies": [asdict(s) for s in plan.strategies],
        "oracles": {k: v for k, v in outcome.oracles.items() if v.get("top")},
        "runs": outcome.runs,
        "final_seeds": plan.final_seeds,  # retrainings behind each run's test accuracy
        "wall_seconds": outcome.seconds,
    }


def merge(paths: list[Path], out: Path, docs: bool) -> Path:
    """One results file from several runs of the same seeds, published as `publish`
    does: the first file's run of a (task, strategy, seed) wins, so a re-run of some
    strategies replaces the old rows."""
    records = [json.loads(path.read_text()) for path in paths]
    seen: dict[tuple[str, str, int], dict] = {}
    sources = []  # which file, measured at which commit, gave which strategies' rows
    for path, record in zip(paths, records, strict=True):
        won = set()
        for run in record["runs"]:
            if seen.setdefault((run["task"], run["strategy"], run["seed"]), run) is run:
                won.add(run["strategy"])
        sources.append(
            {
                "file": path.name,
                "commit": record["commit"],
                "strategies": sorted(won, key=catalogue_order),
            }
        )
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
        "sources": sources,
        "commit": ", ".join(dict.fromkeys(r["commit"] for r in records)),
        "when": max(r["when"] for r in records),
        "tasks": sorted({t for record in records for t in record["tasks"]}),
        "strategies": list(strategies.values()),
        "oracles": oracles,
        "runs": list(seen.values()),
        "wall_seconds": sum(r["wall_seconds"] for r in records),
    }
    return publish(record, out, docs)


def publish(record: dict, out: Path, docs: bool) -> Path:
    """Order the record's runs and strategies as the catalogue does, derive its table and
    targets, print them, and write the results JSON and its figure in `out`, with its
    Markdown page beside them or, with `docs`, as docs/search-quality.md. Returns the
    JSON's path."""
    tasks = {Path(t).stem: i for i, t in enumerate(record["tasks"])}
    record["strategies"].sort(key=lambda s: catalogue_order(s["name"]))
    record["runs"].sort(
        key=lambda r: (tasks.get(r["task"], len(tasks)), catalogue_order(r["strategy"]), r["seed"])
    )
    summary.derived(record)
    print()
    print(summary.table(record["summary"]))
    print()
    print("\n".join(record["targets"]))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"search-quality-{newest.stamp()}.json"
    path.write_text(json.dumps(record, indent=1))
    figure = path.with_suffix(".png")
    summary.plot(record["summary"], figure)
    print(f"\nresults: {path}")
    if docs:  # the page is docs/search-quality.md: a copy beside the results is not kept
        write_docs(record, figure, path)
        print(f"rendered {newest.shown(DOC)}")
    else:
        path.with_suffix(".md").write_text(page.page(record, figure.name, path))
        print(f"report: {path.with_suffix('.md')}")
    return path


def newest_results(folder: Path = OUT) -> Path | None:
    """The newest results file in `folder`: the one docs/search-quality.md is rendered
    from (a merge is written after the runs it merges, so it is the newest)."""
    return newest.newest(folder.glob(PATTERN))


def render(source: Path) -> None:
    """docs/search-quality.md and its figure from the results file `source`, without
    running anything."""
    record = summary.derived(json.loads(source.read_text()))
    with tempfile.TemporaryDirectory() as folder:
        figure = Path(folder) / "search-quality.png"
        summary.plot(record["summary"], figure)
        write_docs(record, figure, source)


def write_docs(record: dict, figure: Path, source: Path) -> None:
    """docs/search-quality.md (with a copy of the figure at `figure`), rendered from
    `record`, read from the results file `source`."""
    DOC.parent.mkdir(exist_ok=True)
    DOC.with_suffix(".png").write_bytes(figure.read_bytes())
    DOC.write_text(page.page(record, DOC.with_suffix(".png").name, source))
