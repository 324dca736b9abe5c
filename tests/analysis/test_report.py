"""The report follows the study's objectives: a minimized study's best is its lowest
trial, a two-objective study's front is Optuna's `best_trials` (constraints included),
trials outside the constraints are marked and never the best, and the importance section
is there when it can be computed and says why when it cannot. A study of plain Optuna
gets a report too."""

import dataclasses
import re

import optuna
import pytest
from matplotlib.collections import PathCollection

from hpsearch import spec as specs
from hpsearch.analysis import plots
from hpsearch.analysis.report import write_report
from hpsearch.search.runner import run
from hpsearch.trials.entry import trusted

ENTRY = """
import math


def objective(config, report, data, rng):
    lr, weight_decay = config["lr"], config["weight_decay"]
    return {"score": math.log10(lr), "cost": lr + weight_decay}
"""

# A larger lr scores better and costs more; above 0.5 it is outside the constraints,
# where the best scores are.
SPEC = """
name = "two"
seed = 0
[model]
kind = "python"
entry = "{module}:objective"
[search]
n_trials = 24
sampler = "random"
pruner = "none"
objectives = [
    {{ name = "score", direction = "maximize" }},
    {{ name = "cost", direction = "minimize" }},
]
[search.constraints]
cost = {{ max = 0.5 }}
[search.params.lr]
low = 1e-4
high = 1.0
log = true
[search.params.weight_decay]
low = 1e-6
high = 1e-1
log = true
"""


@pytest.fixture
def figures(monkeypatch):
    """Every figure the report saves, by file name (and still saved)."""
    saved = {}
    save = plots.save

    def keep(figure, path):
        saved[path.name] = figure
        save(figure, path)

    monkeypatch.setattr(plots, "save", keep)
    return saved


def plain_study(url: str, values: list[float], feasible: dict[int, bool] | None = None):
    """A minimized study of plain Optuna: trial i reports values[i] twice and ends there."""
    study = optuna.create_study(
        study_name="plain",
        storage=url,
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    for number, value in enumerate(values):
        trial = study.ask()
        trial.suggest_float("lr", 1e-4, 1.0, log=True)
        trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
        trial.report(value + 0.5, 0)
        trial.report(value, 1)
        if feasible is not None and number in feasible:
            trial.set_user_attr("feasible", feasible[number])
        study.tell(trial, value)
    return study


def collection(ax, label: str) -> PathCollection:
    (found,) = [c for c in ax.collections if c.get_label() == label]
    return found


def points(collection: PathCollection) -> set[tuple[float, float]]:
    return {(round(float(x), 12), round(float(y), 12)) for x, y in collection.get_offsets()}


def test_a_minimized_studys_best_is_its_lowest_trial(tmp_path, figures):
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    values = [0.8, 0.3, 0.9, 0.1, 0.5, 0.7]
    plain_study(url, values)
    report = write_report("plain", url, tmp_path / "report")
    text = report.markdown.read_text()
    assert "Best value 0.1000 (trial 3; lower is better)." in text
    assert "No stored spec: narrowing needs an hpsearch study." in text

    first = figures["best_curves.png"].axes[0]
    assert first.get_title() == "Best-1 (trial 3): 0.100"
    (curve,) = first.get_lines()
    assert list(curve.get_ydata()) == [0.6, 0.1]
    titles = [ax.get_title() for ax in figures["best_curves.png"].axes if ax.get_visible()]
    ranked = sorted(range(len(values)), key=values.__getitem__)
    assert [int(re.search(r"trial (\d+)", t).group(1)) for t in titles] == ranked

    value_map = figures["value_lr_weight_decay.png"]
    ax, bar = value_map.axes
    assert bar.get_ylabel() == "value (lower is better)"
    complete = collection(ax, "complete")
    assert complete.get_cmap().name == "viridis_r"  # the lowest value is yellow
    assert "pareto_front.png" not in figures


def test_infeasible_trials_are_marked_and_never_the_best(tmp_path, figures):
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    study = plain_study(url, [0.8, 0.3, 0.05, 0.1, 0.5, 0.01], {2: False, 5: False, 3: True})
    report = write_report("plain", url, tmp_path / "report")
    text = report.markdown.read_text()
    assert "Best value 0.1000 (trial 3; lower is better)." in text
    assert "2 completed trials outside the constraints, never among the best." in text

    ax = figures["value_lr_weight_decay.png"].axes[0]
    position = {t.number: (t.params["lr"], t.params["weight_decay"]) for t in study.trials}

    def at(numbers):
        return {tuple(round(v, 12) for v in position[n]) for n in numbers}

    assert points(collection(ax, "outside the constraints")) == at([2, 5])
    assert points(collection(ax, "complete")) == at([0, 1, 3, 4])
    assert "outside the constraints" in [t.get_text() for t in ax.get_legend().get_texts()]
    titles = [ax.get_title() for ax in figures["best_curves.png"].axes if ax.get_visible()]
    assert titles[0].startswith("Best-1 (trial 3)") and len(titles) == 4


def test_a_two_objective_studys_front_is_optunas_best_trials(tmp_path, request, figures):
    module = "report_" + re.sub(r"\W", "_", request.node.name)
    (tmp_path / f"{module}.py").write_text(ENTRY)
    spec = specs.with_overrides(
        specs.loads(SPEC.format(module=module)), storage=f"sqlite:///{tmp_path / 'two.db'}"
    )
    study = run(dataclasses.replace(spec, code=trusted([tmp_path]))).study
    outside = [t.number for t in study.trials if t.user_attrs["feasible"] is False]
    assert outside, "no trial outside the constraints: the test checks nothing"
    best = {t.number for t in study.best_trials}
    assert not best & set(outside)

    report = write_report("two", spec.storage, tmp_path / "report")
    assert (tmp_path / "report" / "pareto_front.png").read_bytes().startswith(b"\x89PNG")
    (ax,) = figures["pareto_front.png"].axes
    n_inside = len(study.trials) - len(outside)
    suptitle = figures["pareto_front.png"].get_suptitle()
    assert (
        suptitle
        == f"Pareto front: {len(best)} of {n_inside} completed trials inside the constraints"
    )
    assert ax.get_xlabel() == "score (higher is better)"
    assert ax.get_ylabel() == "cost (lower is better)"
    front = collection(ax, f"Pareto front ({len(best)} trials)")
    values = {t.number: tuple(round(v, 12) for v in t.values) for t in study.trials}
    assert points(front) == {values[n] for n in best}
    assert {int(text.get_text()) for text in ax.texts} == best
    assert points(collection(ax, "outside the constraints")) == {values[n] for n in outside}
    (staircase,) = ax.get_lines()
    assert list(staircase.get_xdata()) == sorted(staircase.get_xdata(), reverse=True)

    text = report.markdown.read_text()
    assert (
        f"Pareto front: {len(best)} of {n_inside} completed trials "
        "inside the constraints, listed by score (score: higher is better; cost: lower is "
        "better)." in text
    )
    rows = re.findall(r"^\| (\d+) \| (-?\d+\.\d{4}) \| (\d+\.\d{4}) \|", text, re.MULTILINE)
    assert {int(number) for number, _, _ in rows} == best
    scores = [float(score) for _, score, _ in rows]
    assert scores == sorted(scores, reverse=True)  # listed by score, best first
    assert "| trial | score | cost | lr | weight_decay |" in text
    title = figures["score_lr_weight_decay.png"].axes[0].get_title()
    assert title == "Score (the first of 2 objectives) over lr and weight_decay"

    # Importance: a table per objective and the figure.
    section = text.split("## Which parameters matter\n")[1].split("## Figures")[0]
    assert f"Importance by ped-anova over {n_inside} completed trials inside" in section
    assert "### score (higher is better)" in section and "### cost (lower is better)" in section
    assert section.count("| param | importance |") == 2
    assert (tmp_path / "report" / "importance.png").is_file()
    assert "![importance](importance.png)" in text


def test_one_trial_gets_a_report_that_says_why_importance_is_missing(tmp_path, figures):
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    plain_study(url, [0.4])
    report = write_report("plain", url, tmp_path / "report")
    text = report.markdown.read_text()
    section = text.split("## Which parameters matter\n")[1].split("## Figures")[0]
    (line,) = section.strip().splitlines()
    assert line.startswith("Not computed: ") and "needs at least 2" in line
    assert not (tmp_path / "report" / "importance.png").exists()
    assert "importance.png" not in figures and "importance" not in text.split("## Figures")[1]
    assert "Best value 0.4000 (trial 0; lower is better)." in text
