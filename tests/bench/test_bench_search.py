"""`python -m bench search` on a task file of a user's own, outside the repository."""

import json
import subprocess
import sys

import pytest

from bench import ROOT
from bench.search.runs import oracle_for_seed

SEARCH = [sys.executable, "-m", "bench", "search"]

TASK = """
name = "my-digits"
[data]
name = "digits"
[model]
hidden_sizes = [16]
[training]
epochs = 2
batch_size = 100
[search.params.lr]
low = 1e-3
high = 1.0
log = true
"""


def test_bench_search_runs_a_users_task_and_reports_the_gap_to_its_oracle(tmp_path):
    task = tmp_path / "elsewhere" / "my-digits.toml"
    task.parent.mkdir()
    task.write_text(TASK)
    out = tmp_path / "out"
    command = [
        *SEARCH,
        "--tasks",
        str(task),
        "--strategies",
        "default,random-100",
        "--seeds",
        "2",
        "--oracle-trials",
        "12",
        "--final-seeds",
        "1",
        "--jobs",
        "1",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[1/" in done.stdout  # progress while it runs
    (results,) = out.glob("search-quality-*.json")
    record = json.loads(results.read_text())
    runs = record["runs"]
    assert {(r["strategy"], r["seed"]) for r in runs} == {
        (s, seed) for s in ("default", "random-100") for seed in (100, 101)
    }
    assert all(0.0 <= r["test"] <= 1.0 for r in runs)
    assert record["final_seeds"] == 1 and all(len(r["test_runs"]) == 1 for r in runs)
    by_name = {r["strategy"]: r for r in record["summary"]}
    # The default is held to a third of what random-100 spent on the same seed.
    assert by_name["random-100"]["epochs"][0] <= 200  # 100 trials of at most 2 epochs
    for seed in (100, 101):
        mine = {r["strategy"]: r for r in runs if r["seed"] == seed}
        assert mine["default"]["epoch_cap"] == pytest.approx(mine["random-100"]["epochs"] / 3)
        assert 0 < mine["default"]["epochs"] <= mine["default"]["epoch_cap"]
    oracle = record["oracles"]["my-digits"]
    assert oracle["trials"] == 12 and len(oracle["top"]) == 10
    for row in record["summary"]:
        assert row["gap"] is not None and row["oracle"] > 0.5  # digits is learnable
        seeds = [str(s) for s in row["seeds"]]
        expected = [
            r["test"] - oracle["by_seed"][s]["test"]
            for r in runs
            if r["strategy"] == row["strategy"]
            for s in seeds
            if int(s) == r["seed"]
        ]
        assert abs(row["gap"][0] - sum(expected) / len(expected)) < 1e-12
    assert any(
        "default" in line and ("PASS" in line or "FAIL" in line) for line in record["targets"]
    )
    markdown = results.with_suffix(".md").read_text()
    assert "| my-digits | default |" in markdown and "## Oracles" in markdown
    # A second run reuses the stored oracle instead of searching again.
    again = subprocess.run(
        [*command[:-4], "--strategies", "default", "--seeds", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert " runs, 0 oracle searches," in again.stdout


def test_bench_search_refuses_a_bad_task_in_one_line(tmp_path):
    task = tmp_path / "bad.toml"
    task.write_text("[model]\nactivation = 'swish'\n")
    done = subprocess.run(
        [*SEARCH, "--tasks", str(task)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "bad.toml" in done.stderr and "Traceback" not in done.stderr


def test_the_oracle_measures_its_choice_on_retrainings_that_did_not_choose_it():
    lucky = [0.95, 0.95, 0.95, 0.85, 0.85, 0.85]  # looked best, then regressed
    steady = [0.90] * 6
    diverged = [0.99, None, 0.99, 0.99, 0.99, 0.99]
    oracle = oracle_for_seed([steady, lucky, diverged])
    assert oracle["config"] == 1 and oracle["test"] == pytest.approx(0.85)
    assert oracle["optimistic"] == pytest.approx(0.90)  # the best mean of all retrainings
    assert oracle_for_seed([diverged])["test"] is None


def test_the_spread_is_read_over_report_seeds_and_over_retrainings():
    """Confirmation's steadier choice, in both readings: a configuration whose
    retrainings scatter counts against it even when the seeds' means agree."""
    from bench.search.summary import summarise, targets

    def run(strategy: str, seed: int, test_runs: list[float]) -> dict:
        return {
            "task": "t",
            "strategy": strategy,
            "seed": seed,
            "test": sum(test_runs) / len(test_runs),
            "test_runs": test_runs,
            "best_val": 0.9,
            "epochs": 10,
            "trials": 5,
        }

    runs = [
        run("default", 0, [0.80, 0.90]),  # means 0.85 and 0.86: steady over seeds,
        run("default", 1, [0.82, 0.90]),  # scattered over retrainings
        run("default+confirm", 0, [0.84, 0.84]),  # means 0.84 and 0.88: the reverse
        run("default+confirm", 1, [0.88, 0.88]),
    ]
    rows = summarise(runs, {})
    confirmed = next(r for r in rows if r["strategy"] == "default+confirm")
    default = next(r for r in rows if r["strategy"] == "default")
    assert confirmed["retrain_spread"] == pytest.approx(0.0)
    assert default["retrain_spread"] == pytest.approx((0.0707107 + 0.0565685) / 2)
    lines = [line for line in targets(rows) if line.startswith("spread")]
    assert lines[0].startswith("spread over the report seeds") and lines[0].endswith("FAIL")
    assert "retraining seeds" in lines[1] and "on 1 of 1 tasks" in lines[1]
    assert lines[1].endswith("PASS")


def test_a_run_that_fails_names_itself(tmp_path):
    """A run that raises ends the benchmark with which run it was and why, at once."""
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    from bench.search.schedule import Plan, Progress, RunFailed, _Pool

    plan = Plan(tasks=[], strategies=[], seeds=[3], out=tmp_path, jobs=1, oracle_trials=1)
    with ProcessPoolExecutor(1) as executor:
        work = _Pool(plan, {}, executor, str(tmp_path), Progress({"run": 1}))
        work.submit(("run", Path("book.toml"), "default", 3), int, "not a number")
        with pytest.raises(RunFailed, match=r"^run book default seed 3 failed: invalid literal"):
            work.drain()
