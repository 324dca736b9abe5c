"""What a bench-search leaves behind: the results record (JSON) with its Markdown report
and figure in the output folder, one record merged from several, and docs/search-quality.md
with the README's block rendered from a results file."""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from readme_blocks import shown_path, write_block

from searchbench import ROOT, report, summary
from searchbench.schedule import Outcome, Plan
from searchbench.strategies import catalogue_order
from searchbench.tasks import oracle_path

OUT = ROOT / "bench" / "results" / "search-quality"
DOC = ROOT / "docs" / "search-quality.md"
README = ROOT / "README.md"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def new_record(plan: Plan, outcome: Outcome) -> dict:
    """The results record of the runs of `plan`: when, at which commit, on what, and the
    runs and oracles themselves (the oracles not searched are left out)."""
    return {
        "when": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "commit": _commit(),
        "seeds": plan.seeds,
        "development_seeds": "0-9",
        "python": sys.version.split()[0],
        "machine": platform.processor() or platform.machine(),
        "tasks": [shown_path(t, ROOT) for t in plan.tasks],
        "strategies": [asdict(s) for s in plan.strategies],
        "oracles": {k: v for k, v in outcome.oracles.items() if v.get("top")},
        "runs": outcome.runs,
        "wall_seconds": outcome.seconds,
    }


def merge(paths: list[Path], out: Path, docs: bool) -> Path:
    """One results file from several runs of the same seeds, published as `publish`
    does: the first file's run of a (task, strategy, seed) wins, so a re-run of some
    strategies replaces the old rows."""
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
    return publish(record, out, docs)


def publish(record: dict, out: Path, docs: bool) -> Path:
    """Order the record's runs and strategies as the catalogue does, derive its table and
    targets, print them, and write the results JSON, its Markdown and figure in `out`
    (and docs/search-quality.md and the README's block with `docs`). Returns the JSON's
    path."""
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
    path = out / f"search-quality-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(record, indent=1))
    figure = path.with_suffix(".png")
    summary.plot(record["summary"], figure)
    path.with_suffix(".md").write_text(report.page(record, figure.name))
    print(f"\nresults: {path}\nreport: {path.with_suffix('.md')}")
    if docs:
        write_docs(record, figure, path)
    return path


def render(source: Path) -> None:
    """docs/search-quality.md, its figure and the README's block from the results file
    `source`, without running anything."""
    record = summary.derived(json.loads(source.read_text()))
    with tempfile.TemporaryDirectory() as folder:
        figure = Path(folder) / "search-quality.png"
        summary.plot(record["summary"], figure)
        write_docs(record, figure, source)


def write_docs(record: dict, figure: Path, source: Path) -> None:
    """docs/search-quality.md (with a copy of the figure at `figure`) and the README's
    block, rendered from `record`, read from the results file `source`. A README without
    the block is left alone."""
    DOC.parent.mkdir(exist_ok=True)
    (DOC.parent / "search-quality.png").write_bytes(figure.read_bytes())
    DOC.write_text(report.page(record, "search-quality.png"))
    block = report.readme_block(record, source)
    with contextlib.suppress(ValueError):  # no block to replace: a README of one's own
        write_block(README, report.BLOCK, block)
