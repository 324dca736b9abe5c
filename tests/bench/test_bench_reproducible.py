"""The benchmarks' figures of the reproducible search: `make bench`'s (free against
reproducible, 1 and 2 workers) and bench-search's `reproducible` strategy, from
made-up runs (nothing here times or trains)."""

import dataclasses
import json

import pytest

from bench import ROOT
from bench.search import schedule, strategies, summary
from bench.speed import page, record, reproducible
from bench.speed.studies import StudyRun


def _runs(scaling: float) -> dict[str, list[StudyRun]]:
    """Two repetitions: free runs of 10 s (1 worker) and 6 s (2), reproducible ones of
    12 s with 1 worker and 12 / `scaling` s with 2; 100 trials each."""
    seconds = {"free_1": 10.0, "free_2": 6.0, "reproducible_1": 12.0}
    seconds["reproducible_2"] = 12.0 / scaling
    return {
        name: [StudyRun(100, 400, s), StudyRun(100, 400, s * 1.1)] for name, s in seconds.items()
    }


def test_the_reproducible_figures_are_ratios_of_neighbouring_runs_with_their_medians():
    f = reproducible.figures_of(_runs(1.7), differing=0)
    assert f["reproducible_scaling"] == pytest.approx(1.7)
    assert f["reproducible_scaling_pairs"] == pytest.approx([1.7, 1.7])
    assert f["reproducible_price_1_worker"] == pytest.approx(10 / 12)
    assert f["reproducible_price_2_workers_epochs"] == pytest.approx(6 / (12 / 1.7))
    assert f["repro_trials_per_min_free_1"] == pytest.approx((600 + 600 / 1.1) / 2)
    assert f["reproducible_identical"] is True
    (target,) = reproducible.targets(f)
    assert target[1] and "1.70 x" in target[0]
    printed = "\n".join(reproducible.lines(f))
    assert "x1.70" in printed and "identical trials (1 and 2 workers" in printed
    assert "yes" in printed


def test_the_target_fails_below_x1_6_and_differing_trials_say_no():
    f = reproducible.figures_of(_runs(1.5), differing=3)
    ((text, ok),) = reproducible.targets(f)
    assert not ok and ">= 1.6 x" in text
    assert "no (3 differing fields)" in "\n".join(reproducible.lines(f))
    assert json.loads(json.dumps(f)) == f  # the results JSON keeps them as they are


def test_the_page_shows_the_reproducible_rows_only_from_runs_that_measured_them():
    source = record.newest_sufficient()
    measured = record.load(source)
    # A run from before the reproducible search was measured: the same file without its
    # figures (they all start with "repro") and its target.
    figures = {k: v for k, v in measured["figures"].items() if not k.startswith("repro")}
    targets = [t for t in measured["targets"] if "reproducible" not in t["target"]]
    older = dict(measured, figures=figures, targets=targets)
    assert record.sufficient(older)
    assert "reproducible" not in page.figures_section(older, source)
    newer = dict(older, figures=figures | reproducible.figures_of(_runs(1.7), 0))
    rendered = page.figures_section(newer, source)
    assert "| reproducible search, 2 workers against 1" in rendered
    assert "**x1.70** trials/min" in rendered and "workers: yes |" in rendered
    assert "| reproducible against free search" in rendered


def test_the_reproducible_strategy_is_the_default_with_reproducible_on():
    task = ROOT / "bench" / "tasks" / "book.toml"
    by_name = strategies.BY_NAME
    default = strategies.strategy_spec(task, by_name["default"], 100, "sqlite:///a.db")
    lagged = strategies.strategy_spec(task, by_name["reproducible"], 100, "sqlite:///a.db")
    assert lagged.search.reproducible and not default.search.reproducible
    same = dataclasses.replace(lagged.search, reproducible=False)
    assert same == default.search  # sampler, pruner, start points, space, budget
    assert by_name["reproducible"].epoch_share == by_name["default"].epoch_share


def _row(strategy: str, tests: list[float]) -> dict:
    mean, std = summary._mean_std(tests)
    by_seed = {str(100 + i): t for i, t in enumerate(tests)}
    return {"task": "book", "strategy": strategy, "test": (mean, std), "test_by_seed": by_seed}


def test_the_reproducible_default_may_trail_the_free_one_by_its_seed_to_seed_spread():
    free = _row("default", [0.84, 0.86, 0.88])  # std 0.02
    inside, outside = (
        summary._reproducible_target([free, _row("reproducible", tests)], "book")[0]
        for tests in ([0.83, 0.85, 0.86], [0.81, 0.83, 0.85])
    )
    assert inside.endswith("PASS") and "spread, 2.0 points" in inside
    assert outside.endswith("FAIL")
    assert summary._reproducible_target([free], "book") == []  # no reproducible row


def test_caps_from_reads_what_random_100_spent_per_task_and_seed(tmp_path):
    results = tmp_path / "r.json"
    runs = [
        {"task": "book", "strategy": "random-100", "seed": 100, "epochs": 4156},
        {"task": "book", "strategy": "default", "seed": 100, "epochs": 1300},
    ]
    results.write_text(json.dumps({"runs": runs}))
    assert schedule.baseline_spent(results) == {("book", 100): 4156}
