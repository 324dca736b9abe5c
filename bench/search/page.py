"""The Markdown page a search-quality results record is rendered to: each results file's
.md beside it, and docs/search-quality.md from the newest results file. The page names
the file, the commit and the date measured, and every figure on it comes from the record;
tests/bench/test_rendered_docs.py renders docs/search-quality.md again and compares."""

from __future__ import annotations

from pathlib import Path

from bench import newest
from bench.search import summary
from bench.search.runs import ORACLE_RETRAINS, ORACLE_TOP
from bench.search.strategies import BASELINE, describe, from_record

# What each part of the default adds, in the summary: (with it, without it)
STEPS = [
    ("tpe", "random-100"),
    ("tpe+median", "tpe"),
    ("default", "tpe+median"),
    ("rounds-3", "default"),
    ("random-100", "book-ranges-random-100"),
]


def _day(record: dict) -> str:
    when = record["when"]
    return f"{when[:4]}-{when[4:6]}-{when[6:8]}"


def _retrained(seeds: int) -> str:
    if seeds == 1:
        return (
            "The test accuracy is that of each run's chosen configuration retrained on train +\n"
            "validation and evaluated once on the task's held-out test split (`hpsearch final`)."
        )
    return (
        "The test accuracy is that of each run's chosen configuration retrained\n"
        f"{seeds} times on train + validation and evaluated on the task's held-out test\n"
        f"split (`hpsearch final --seeds {seeds}`): the mean of those retrainings, so that\n"
        "one retraining's luck does not decide a comparison."
    )


def _confirm_note(record: dict) -> str:
    if not any(r["strategy"] == summary.CONFIRM for r in record["runs"]):
        return ""
    return (
        "\nThe confirm stage's settings (3 configurations, up to 3 repeats each) were set "
        "before any\nmeasurement; on the development seeds they were compared with 5 "
        "configurations of up to 2\nrepeats (`bench/results/search-quality-dev/`), neither "
        "was ahead beyond the noise, and\nthey were kept. No report seed tuned them."
    )


def _merged(record: dict) -> str:
    if not record.get("merged_from"):
        return ""
    if not record.get("sources"):
        return (
            "\nMerged from "
            + ", ".join(f"`{name}`" for name in record["merged_from"])
            + " (newest "
            "first; a newer run of a strategy replaces an older one's rows)."
        )
    parts = [
        f"`{source['file']}` (commit {source['commit']}: "
        + (", ".join(f"`{name}`" for name in source["strategies"]) or "no rows")
        + ")"
        for source in record["sources"]
    ]
    return (
        "\nMerged from "
        + "; ".join(parts)
        + ": a newer run of a strategy replaces an older one's rows."
    )


def page(record: dict, figure: str, source: Path) -> str:
    """The page of `record` (with its summary and targets derived), read from the results
    file `source`, showing the image file `figure` (a path relative to the page)."""
    seeds = record["seeds"]
    notes = _confirm_note(record) + _merged(record)
    return f"""# Search quality on several tasks

<!-- Rendered by `python -m bench search` from the results file named below: edit
bench/search/page.py or measure again, not this file. -->

Written by `python -m bench search` on {_day(record)} (commit {record["commit"]},
{record["machine"]}, {record["wall_seconds"] / 60:.0f} min on 2 cores) from
`{newest.shown(source)}`. Report seeds
{seeds[0]} to {seeds[-1]}: they chose nothing. hpsearch's defaults were chosen on the
development seeds 0 to 9 of the book protocol (earlier `make bench-search` runs).{notes}

{_retrained(record.get("final_seeds", 1))}
The oracle of a task is the best test accuracy its search space allows, estimated once
per task and seed: {record["oracles"] and next(iter(record["oracles"].values()))["trials"]}
random trials at full epochs, and the {ORACLE_TOP} best by validation
accuracy retrained {ORACLE_RETRAINS} times on each seed's data. The first half
of the retrainings chooses the best configuration by its mean test accuracy (the oracle
may look at the test split: it is the reference, not a strategy); the other half measures
it, so that the luck which made it look best is not counted twice. The best mean over
all retrainings ("optimistic") is shown beside it: where configurations tie within
retraining noise it is higher, by that luck. Gaps are in points of test accuracy, mean ±
std over seeds, worst seed in brackets.

Strategies (every one but the random baseline is held to a third of the epochs the
random baseline spent on the same task and seed):

{describe(from_record(record["strategies"]))}

## Summary

{summary_section(record)}

## Oracles

{summary.oracle_table(record["oracles"], seeds)}

## Results

{summary.table(record["summary"])}

{chr(10).join("- " + line for line in record["targets"])}

![gap to the oracle per task]({figure})

## Tasks

{chr(10).join("- `" + t + "`" for t in record["tasks"])}

## Running it

`make bench-search` runs every strategy on every task in bench/tasks with the report seeds
and renders this page from the results. On a task of your own: `python -m bench search
--tasks my.toml --strategies default,random-100 --seeds 3 --out DIR` (JSON, Markdown and
figure in DIR, progress while it runs; the oracle is searched once and kept in DIR).
`--caps-from RESULTS` holds capped strategies to what random-100 spent in an earlier
results file, so that some strategies can run again without it; `--merge NEWEST.json
OLDER.json...` combines runs into one results file; `--render [RESULTS]` renders this
page again (from the newest results file when none is named). After a run, commit the
results file and its figure with this page and `git rm` the ones they replace.
"""


def summary_section(record: dict) -> str:
    """The default against the oracle and random search per task, and what each part of
    the default adds, as Markdown tables (rows only where the strategies ran)."""
    rows = record["summary"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lines = [
        "| task | oracle | default | gap (worst seed) | random-100 | default's epochs |",
        "|---|---|---|---|---|---|",
    ]
    for task in tasks:
        default, base = summary.row_of(rows, task, "default"), summary.row_of(rows, task, BASELINE)
        if default is None or base is None or default["gap"] is None:
            continue
        lines.append(
            f"| {task} | {default['oracle']:.3f} | {default['test'][0]:.3f} ± "
            f"{default['test'][1]:.3f} | {default['gap'][0] * 100:+.1f} "
            f"({default['worst_gap'] * 100:+.1f}) | {base['test'][0]:.3f} ± {base['test'][1]:.3f} "
            f"| {default['epochs'][0] / base['epochs'][0]:.2f}x |"
        )
    confirmed = confirm_section(rows, tasks)
    lines += ["", *confirmed] if confirmed else []
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
    for task in tasks:
        mean = {r["strategy"]: r["test"][0] for r in rows if r["task"] == task}
        cells = [
            f"{(mean[a] - mean[b]) * 100:+.1f}" if a in mean and b in mean else "-"
            for a, b in STEPS
        ]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def confirm_section(rows: list[dict], tasks: list[str]) -> list[str]:
    """The confirm stage per task: the default with it against the oracle, against the
    default without it and against random-100 (paired over seeds, with the standard
    error), and the chosen configuration's seed-to-seed spread with and without it."""
    lines = [
        f"With the confirm stage (`{summary.CONFIRM}`, at the epochs `default` spent on the "
        "same task and seed): differences are paired over seeds, ± their standard error. "
        "Two spreads, in points, with / without confirmation: over seeds, the standard "
        "deviation of the chosen configuration's test accuracy over the report seeds (each "
        "seed chooses its own configuration on its own data); over retrainings, that of "
        "the chosen configuration's test accuracy over its retraining seeds, averaged over "
        "the report seeds.",
        "",
        f"| task | oracle | {summary.CONFIRM} | gap (worst seed) | minus default | minus "
        "random-100 | spread over seeds | spread over retrainings | re-evaluations |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    shown = False
    for task in tasks:
        confirmed = summary.row_of(rows, task, summary.CONFIRM)
        default = summary.row_of(rows, task, "default")
        if confirmed is None or default is None:
            continue
        shown = True
        base = summary.row_of(rows, task, BASELINE)

        def versus(other: dict | None, confirmed: dict = confirmed) -> str:
            found = None if other is None else summary.paired_difference(confirmed, other)
            return "-" if found is None else f"{found[0] * 100:+.1f} ± {found[1] * 100:.1f}"

        gap = (
            "-"
            if confirmed["gap"] is None
            else f"{confirmed['gap'][0] * 100:+.1f} ({confirmed['worst_gap'] * 100:+.1f})"
        )
        oracle = "-" if confirmed["oracle"] is None else f"{confirmed['oracle']:.3f}"
        lines.append(
            f"| {task} | {oracle} | {confirmed['test'][0]:.3f} ± {confirmed['test'][1]:.3f} "
            f"| {gap} | {versus(default)} | {versus(base)} | {confirmed['test'][1] * 100:.2f} / "
            f"{default['test'][1] * 100:.2f} | {_retraining(confirmed, default)} "
            f"| {confirmed['reevaluations']:.1f} |"
        )
    return lines if shown else []


def _retraining(confirmed: dict, default: dict) -> str:
    spreads = (confirmed.get("retrain_spread"), default.get("retrain_spread"))
    if None in spreads:
        return "-"
    return f"{spreads[0] * 100:.2f} / {spreads[1] * 100:.2f}"
