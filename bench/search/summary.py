"""Per task and strategy: the rows of the summary, the targets as PASS/FAIL
lines, the Markdown tables and the figure, all from the runs' plain data."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.search.strategies import BASELINE

GAP_MEAN = 0.015  # the default's mean test accuracy at most this far below the oracle
GAP_WORST = 0.04  # and no seed further than this
ROUNDS_LOSS = 0.005  # rounds-3 at most this far below the single study
# The reproducible default at most the free default's seed-to-seed spread (the standard
# deviation of its test accuracy over seeds) below it.
REPRODUCIBLE = "reproducible"
# The default with its confirm stage, at the default's epochs: near the oracle, not
# below random search, and a steadier choice than the default's on most tasks.
CONFIRM = "default+confirm"
CONFIRM_GAP_MEAN = 0.010
CONFIRM_GAP_WORST = 0.025
CONFIRM_BELOW_RANDOM = 0.005  # a paired difference to random-100 of at least minus this
CONFIRM_STEADIER = 4  # tasks of 5 where its spread is below the default's (both readings)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(runs: list[dict], oracles: dict[str, dict]) -> list[dict]:
    """One row per task and strategy, seeds in common with the oracle's."""
    rows = []
    for task in dict.fromkeys(r["task"] for r in runs):
        by_seed = oracles.get(task, {}).get("by_seed", {})
        for name in dict.fromkeys(r["strategy"] for r in runs if r["task"] == task):
            mine = [r for r in runs if r["task"] == task and r["strategy"] == name]
            gaps = [
                r["test"] - by_seed[str(r["seed"])]["test"]
                for r in mine
                if str(r["seed"]) in by_seed and by_seed[str(r["seed"])]["test"] is not None
            ]
            optimistic = [
                r["test"] - by_seed[str(r["seed"])]["optimistic"]
                for r in mine
                if by_seed.get(str(r["seed"]), {}).get("optimistic") is not None
            ]
            baseline = {
                r["seed"]: r["epochs"]
                for r in runs
                if r["task"] == task and r["strategy"] == BASELINE and r["epochs"]
            }
            rows.append(
                {
                    "task": task,
                    "strategy": name,
                    "epoch_shares": [
                        r["epochs"] / baseline[r["seed"]] for r in mine if r["seed"] in baseline
                    ],
                    "seeds": sorted(r["seed"] for r in mine),
                    "test": _mean_std([r["test"] for r in mine]),
                    "test_by_seed": {str(r["seed"]): r["test"] for r in mine},
                    "worst_test": min(r["test"] for r in mine),
                    "best_val": _mean_std([r["best_val"] for r in mine]),
                    "epochs": _mean_std([r["epochs"] for r in mine]),
                    "trials": statistics.mean(r["trials"] for r in mine),
                    "reevaluations": statistics.mean(r.get("reevaluations", 0) for r in mine),
                    "retrain_spread": _retrain_spread(mine),
                    # A confirm run's epochs over those its own `default` search spent.
                    "most_of_default": max(
                        (
                            r["epochs"] / r["default_epochs"]
                            for r in mine
                            if r.get("default_epochs")
                        ),
                        default=None,
                    ),
                    "gap": _mean_std(gaps) if len(gaps) == len(mine) else None,
                    "worst_gap": min(gaps) if len(gaps) == len(mine) else None,
                    "optimistic_gap": (
                        (statistics.mean(optimistic), min(optimistic))
                        if len(optimistic) == len(mine)
                        else None
                    ),
                    "oracle": statistics.mean(by_seed[str(r["seed"])]["test"] for r in mine)
                    if len(gaps) == len(mine)
                    else None,
                }
            )
    return rows


def _retrain_spread(runs: list[dict]) -> float | None:
    """The spread of each chosen configuration's test accuracy over its retraining
    seeds (the standard deviation of `final --seeds`'s runs), averaged over the report
    seeds: how much one answer depends on the seed it is trained with."""
    spreads = [
        statistics.stdev(values)
        for r in runs
        if len(values := [v for v in r.get("test_runs") or [] if v is not None]) > 1
    ]
    return statistics.mean(spreads) if len(spreads) == len(runs) else None


def derived(record: dict) -> dict:
    """The record with its table and targets recomputed from its runs and oracles (they
    are derived data, so a results file renders the same with today's rules)."""
    record["summary"] = summarise(record["runs"], record["oracles"])
    record["targets"] = targets(record["summary"])
    return record


def _optimistic(row: dict) -> str:
    if row.get("optimistic_gap") is None:
        return ""
    mean, worst = row["optimistic_gap"]
    return f"; against the optimistic oracle {-mean * 100:.1f} and {-worst * 100:.1f}"


def row_of(rows: list[dict], task: str, strategy: str) -> dict | None:
    """The row of `strategy` on `task`, or None when it did not run there."""
    return next((r for r in rows if r["task"] == task and r["strategy"] == strategy), None)


def _differences(one: dict, other: dict) -> list[float]:
    """Per-seed differences of test accuracy, one minus other, on their common seeds."""
    common = sorted(set(one["test_by_seed"]) & set(other["test_by_seed"]))
    return [one["test_by_seed"][s] - other["test_by_seed"][s] for s in common]


def paired_difference(one: dict, other: dict) -> tuple[float, float] | None:
    """The mean per-seed difference of test accuracy, one minus other, on their common
    seeds, and its standard error (None with fewer than two seeds in common)."""
    differences = _differences(one, other)
    if len(differences) < 2:
        return None
    mean, std = _mean_std(differences)
    return mean, std / len(differences) ** 0.5


def paired(one: dict, other: dict) -> str:
    """The per-seed differences of test accuracy, one minus other, on their common seeds:
    how far the difference stands out of the seed-to-seed noise."""
    differences = _differences(one, other)
    found = paired_difference(one, other)
    if found is None:
        return "one seed"
    mean, error = found
    std = _mean_std(differences)[1]
    return (
        f"per seed {mean * 100:+.1f} ± {std * 100:.1f} points, standard error "
        f"{error * 100:.1f}{'' if abs(mean) > 2 * error else ': inside the noise'}"
    )


def targets(rows: list[dict]) -> list[str]:
    """The targets, per task, as PASS/FAIL lines: the default near the oracle and not below
    random search at a third of its epochs, narrowing rounds not below a single study, and
    the reproducible search within the default's seed-to-seed spread."""
    lines = []
    for task in dict.fromkeys(r["task"] for r in rows):
        default, base = row_of(rows, task, "default"), row_of(rows, task, BASELINE)
        if default is not None and default["gap"] is not None:
            ok = -default["gap"][0] <= GAP_MEAN and -default["worst_gap"] <= GAP_WORST
            lines.append(
                f"{task}: default {default['test'][0]:.4f} vs oracle {default['oracle']:.4f}: "
                f"gap {-default['gap'][0] * 100:.1f} points (target <= {GAP_MEAN * 100:.1f}), "
                f"worst seed {-default['worst_gap'] * 100:.1f} (target <= {GAP_WORST * 100:.0f})"
                + _optimistic(default)
                + f": {'PASS' if ok else 'FAIL'}"
            )
        if default is not None and base is not None:
            share = max(default["epoch_shares"]) if default["epoch_shares"] else float("nan")
            ok = default["test"][0] >= base["test"][0] and share <= 1 / 3 + 1e-9
            lines.append(
                f"{task}: default {default['test'][0]:.4f} vs {BASELINE} {base['test'][0]:.4f} "
                f"with {default['epochs'][0] / base['epochs'][0]:.2f}x its epochs (at most "
                f"{share:.3f}x on a seed, against {BASELINE} on the same seed; target: not "
                f"below, <= 1/3; {paired(default, base)}): {'PASS' if ok else 'FAIL'}"
            )
        for single, rounds in (
            ("default", "rounds-3"),
            ("book-ranges-default", "book-ranges-rounds-3"),
        ):
            one, three = row_of(rows, task, single), row_of(rows, task, rounds)
            if one is None or three is None:
                continue
            change = three["test"][0] - one["test"][0]
            at_edge = rounds.startswith("book-ranges")
            ok = change > 0 if at_edge else change >= -ROUNDS_LOSS
            goal = "better" if at_edge else f"not below by more than {ROUNDS_LOSS * 100:.1f} points"
            lines.append(
                f"{task}: {rounds} {three['test'][0]:.4f} vs {single} {one['test'][0]:.4f} "
                f"({change * 100:+.1f} points, {paired(three, one)}; target: {goal}): "
                f"{'PASS' if ok else 'FAIL'}"
            )
        lines += _reproducible_target(rows, task)
        lines += _confirm_targets(rows, task)
    lines += _steadier_target(rows)
    return lines


def _confirm_targets(rows: list[dict], task: str) -> list[str]:
    """The default with its confirm stage on `task`: within CONFIRM_GAP_MEAN of the
    oracle on average and CONFIRM_GAP_WORST on every seed, not below random-100 by more
    than CONFIRM_BELOW_RANDOM (paired), and within the default's epochs on every seed."""
    confirmed, default = row_of(rows, task, CONFIRM), row_of(rows, task, "default")
    base = row_of(rows, task, BASELINE)
    if confirmed is None:
        return []
    lines = []
    if confirmed["gap"] is not None:
        ok = (
            -confirmed["gap"][0] <= CONFIRM_GAP_MEAN
            and -confirmed["worst_gap"] <= CONFIRM_GAP_WORST
        )
        lines.append(
            f"{task}: {CONFIRM} {confirmed['test'][0]:.4f} vs oracle {confirmed['oracle']:.4f}: "
            f"gap {-confirmed['gap'][0] * 100:.1f} points "
            f"(target <= {CONFIRM_GAP_MEAN * 100:.1f}), "
            f"worst seed {-confirmed['worst_gap'] * 100:.1f} (target <= "
            f"{CONFIRM_GAP_WORST * 100:.1f}): {'PASS' if ok else 'FAIL'}"
        )
    if base is not None and (difference := paired_difference(confirmed, base)) is not None:
        ok = difference[0] >= -CONFIRM_BELOW_RANDOM
        lines.append(
            f"{task}: {CONFIRM} vs {BASELINE}: {paired(confirmed, base)} (target: at least "
            f"{-CONFIRM_BELOW_RANDOM * 100:.1f}): {'PASS' if ok else 'FAIL'}"
        )
    if default is not None:
        lines.append(
            f"{task}: {CONFIRM} vs default: {paired(confirmed, default)}; seed-to-seed spread "
            f"{confirmed['test'][1] * 100:.2f} vs {default['test'][1] * 100:.2f} points; "
            f"epochs {confirmed['epochs'][0]:.0f} vs {default['epochs'][0]:.0f}"
            + (
                ""
                if confirmed["most_of_default"] is None
                else f" (at most {confirmed['most_of_default']:.3f}x the default's on a seed)"
            )
        )
    return lines


def _steadier_target(rows: list[dict]) -> list[str]:
    """Whether confirmation makes the chosen configuration's test accuracy steadier, on
    most tasks, in each of two readings of "seed-to-seed spread": over the report seeds
    (each seed's search chooses its own configuration, and each seed's data differ), and
    over the retraining seeds of the configuration a search chose."""
    pairs = [
        (row_of(rows, task, CONFIRM), row_of(rows, task, "default"))
        for task in dict.fromkeys(r["task"] for r in rows)
    ]
    pairs = [(c, d) for c, d in pairs if c is not None and d is not None]
    if not pairs:
        return []
    needed = min(CONFIRM_STEADIER, len(pairs))
    readings = [("over the report seeds", lambda row: row["test"][1])]
    if all(c.get("retrain_spread") is not None for pair in pairs for c in pair):
        readings.append(
            ("over each chosen configuration's retraining seeds", lambda row: row["retrain_spread"])
        )
    lines = []
    for reading, spread in readings:
        steadier = [c["task"] for c, d in pairs if spread(c) < spread(d)]
        lines.append(
            f"spread {reading} lower with confirmation than without on {len(steadier)} of "
            f"{len(pairs)} tasks ({', '.join(steadier) or 'none'}; target: at least {needed}): "
            f"{'PASS' if len(steadier) >= needed else 'FAIL'}"
        )
    return lines


def _reproducible_target(rows: list[dict], task: str) -> list[str]:
    """The reproducible default against the free one on `task`: not below it by more
    than the free default's seed-to-seed spread."""
    free, lagged = row_of(rows, task, "default"), row_of(rows, task, REPRODUCIBLE)
    if free is None or lagged is None:
        return []
    change, spread = lagged["test"][0] - free["test"][0], free["test"][1]
    return [
        f"{task}: {REPRODUCIBLE} {lagged['test'][0]:.4f} vs default {free['test'][0]:.4f} "
        f"({change * 100:+.1f} points, {paired(lagged, free)}; target: not below by more "
        f"than the default's seed-to-seed spread, {spread * 100:.1f} points): "
        f"{'PASS' if change >= -spread else 'FAIL'}"
    ]


def table(rows: list[dict]) -> str:
    """The Markdown table of the summary's rows: one per task and strategy."""
    lines = [
        "| task | strategy | seeds | test acc of chosen config | worst seed | gap to oracle "
        "(worst) | best val acc | epochs | trials |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gap = (
            f"{r['gap'][0] * 100:+.1f} ± {r['gap'][1] * 100:.1f} ({r['worst_gap'] * 100:+.1f})"
            if r["gap"] is not None
            else "-"
        )
        lines.append(
            f"| {r['task']} | {r['strategy']} | {len(r['seeds'])} "
            f"| {r['test'][0]:.4f} ± {r['test'][1]:.4f} | {r['worst_test']:.4f} | {gap} "
            f"| {r['best_val'][0]:.4f} ± {r['best_val'][1]:.4f} "
            f"| {r['epochs'][0]:.0f} ± {r['epochs'][1]:.0f} | {r['trials']:.0f} |"
        )
    return "\n".join(lines)


def oracle_table(oracles: dict[str, dict], seeds: list[int]) -> str:
    """The Markdown table of the oracles, over the report's `seeds`."""
    lines = [
        "| task | oracle test acc (mean over seeds) | optimistic | long search | most chosen "
        "configuration |",
        "|---|---|---|---|---|",
    ]
    for task, oracle in oracles.items():
        mine = [oracle["by_seed"][str(s)] for s in seeds if str(s) in oracle["by_seed"]]
        mine = [m for m in mine if m.get("test") is not None]
        if not mine:
            continue
        config = oracle["top"][statistics.mode(m["config"] for m in mine)]["params"]
        shown = ", ".join(f"{k} {v:.3g}" for k, v in config.items())
        optimistic = [m["optimistic"] for m in mine if m.get("optimistic") is not None]
        lines.append(
            f"| {task} | {statistics.mean(m['test'] for m in mine):.4f} "
            f"| {statistics.mean(optimistic):.4f} | {oracle['trials']} random trials, best "
            f"{len(oracle['top'])} retrained {len(mine[0]['retrained'][0])}x per seed | {shown} |"
            if optimistic
            else f"| {task} | {statistics.mean(m['test'] for m in mine):.4f} | - | - | {shown} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """The figure of each strategy's gap to the oracle per task, as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    figure, axis = plt.subplots(figsize=(10, 5))
    width = 0.8 / max(1, len(strategies))
    for index, name in enumerate(strategies):
        xs, ys, errors = [], [], []
        for position, task in enumerate(tasks):
            row = row_of(rows, task, name)
            if row is None or row["gap"] is None:
                continue
            xs.append(position + index * width)
            ys.append(row["gap"][0] * 100)
            errors.append(row["gap"][1] * 100)
        axis.bar(xs, ys, width, yerr=errors, label=name, capsize=2)
    axis.axhline(-GAP_MEAN * 100, color="k", linestyle="--", linewidth=1, label="target")
    axis.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks)
    axis.set_ylabel("test accuracy minus the oracle's (points)")
    axis.set_title("Gap to the oracle per task (mean ± std over report seeds)")
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
