"""Parameter importance: the one parameter a study's value depends on ranks first under
both evaluators, whichever way the study optimizes; each objective of a two-objective
study is judged in its own direction; infeasible trials are left out; too few trials
and a figure's texts say what they should."""

import dataclasses
import math
import re
import warnings

import numpy as np
import optuna
import pytest
from matplotlib.text import Text
from optuna.distributions import FloatDistribution
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.trial import TrialState, create_trial

from hpsearch import spec as specs
from hpsearch.analysis import plots
from hpsearch.analysis.importance import (
    EVALUATORS,
    importance_figure,
    importance_frame,
    importance_text,
)
from hpsearch.errors import StudyError
from hpsearch.search.runner import run
from hpsearch.trials.entry import trusted

N_TRIALS = 60


def score(lr: float, noise: float) -> float:
    """Best at lr = 10**-2.5, in the middle of [1e-5, 1] on a log scale."""
    return -((math.log10(lr) + 2.5) ** 2) + noise


def study_of(objective, directions: list[str], seed: int = 0) -> optuna.Study:
    study = optuna.create_study(
        directions=directions, sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    study.optimize(objective, n_trials=N_TRIALS)
    return study


def lr_study(direction: str, *, pit: bool = False) -> optuna.Study:
    """A value of lr alone (a and b do not matter), maximized, or negated and minimized.

    With `pit`, a < 0.15 costs 50: those trials are the worst, so `a` is what sets the
    worst tenth apart while lr is what sets the best tenth apart. PED-ANOVA told the
    wrong direction looks at the worst tenth and ranks `a` first."""
    rng = np.random.default_rng(0)
    sign = 1.0 if direction == "maximize" else -1.0

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
        a = trial.suggest_float("a", 0.0, 1.0)
        trial.suggest_float("b", 0.0, 1.0)
        value = score(lr, 1e-3 * rng.normal()) - (50.0 if pit and a < 0.15 else 0.0)
        return sign * value

    return study_of(objective, [direction])


def two_objective_study() -> optuna.Study:
    """`score` (maximized) set by lr among the best, by a's pit among the worst;
    `seconds` (minimized) set by b among the best (near 0.5), by lr among the worst
    (lr above 10**-0.5 costs 50)."""
    rng = np.random.default_rng(0)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
        a = trial.suggest_float("a", 0.0, 1.0)
        b = trial.suggest_float("b", 0.0, 1.0)
        value = score(lr, 1e-3 * rng.normal()) - (50.0 if a < 0.15 else 0.0)
        seconds = (b - 0.5) ** 2 + (50.0 if lr > 10**-0.5 else 0.0) + 1e-4 * rng.normal()
        return value, seconds

    study = study_of(objective, ["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["score", "seconds"])
    return study


def top(frame, objective: str) -> str:
    return frame[frame["objective"] == objective]["param"].iloc[0]


@pytest.mark.parametrize("evaluator", sorted(EVALUATORS))
@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_one_parameter_that_matters_ranks_first(direction, evaluator):
    frame = importance_frame(lr_study(direction), evaluator, seed=0)
    assert list(frame.columns) == ["objective", "direction", "param", "importance"]
    assert list(frame["param"]) == sorted(frame["param"], key=lambda p: p != "lr")
    assert frame["param"].iloc[0] == "lr" and frame["importance"].iloc[0] > 0.5
    assert set(frame["objective"]) == {"value"} and set(frame["direction"]) == {direction}
    assert frame["importance"].sum() == pytest.approx(1.0)
    assert list(frame["importance"]) == sorted(frame["importance"], reverse=True)
    assert frame.attrs == {"evaluator": evaluator, "n_trials": N_TRIALS, "left_out": 0}


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_ped_anova_judges_the_best_trials_in_the_studys_direction(direction):
    study = lr_study(direction, pit=True)
    frame = importance_frame(study, "ped-anova")
    assert top(frame, "value") == "lr"
    # The same evaluator told the opposite direction ranks the pit's parameter first:
    # the test above would catch a mix-up.
    wrong = 1.0 if direction == "maximize" else -1.0
    with pytest.warns(UserWarning, match="achieve low `target` values"):
        flipped = get_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator(), target=lambda t: wrong * t.values[0]
        )
    assert next(iter(flipped)) == "a"


def test_each_objective_is_its_own_block_in_its_own_direction():
    study = two_objective_study()
    frame = importance_frame(study, "ped-anova")
    assert list(dict.fromkeys(frame["objective"])) == ["score", "seconds"]
    assert list(dict.fromkeys(frame["direction"])) == ["maximize", "minimize"]
    assert top(frame, "score") == "lr" and top(frame, "seconds") == "b"
    assert frame.groupby("objective")["importance"].sum().tolist() == pytest.approx([1.0, 1.0])
    text = importance_text(frame)
    headers = [line for line in text.splitlines() if line.startswith("parameter importance")]
    assert headers == [
        f"parameter importance for score (ped-anova, {N_TRIALS} trials)",
        f"parameter importance for seconds (ped-anova, {N_TRIALS} trials)",
    ]
    rows = [line for line in text.splitlines() if line.startswith("  ")]
    assert len(rows) == 6 and all(re.fullmatch(r"  (lr|a |b )   [01]\.\d{3}", r) for r in rows)
    # fANOVA answers another question, what moves each value over the whole space: the
    # pit and the cost of a large lr.
    fanova = importance_frame(study, "fanova", seed=0)
    assert top(fanova, "score") == "a" and top(fanova, "seconds") == "lr"


def test_infeasible_trials_are_left_out():
    """Infeasible trials with the best values, all at b < 0.2: counted, they would make
    b look like what the best trials share."""
    rng = np.random.default_rng(0)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
        trial.suggest_float("a", 0.0, 1.0)
        b = trial.suggest_float("b", 0.0, 1.0)
        trial.set_user_attr("feasible", b >= 0.2)
        return score(lr, 1e-3 * rng.normal()) + (100.0 if b < 0.2 else 0.0)

    study = study_of(objective, ["maximize"])
    feasible = [t for t in study.trials if t.user_attrs["feasible"]]
    assert 0 < len(feasible) < N_TRIALS
    assert next(iter(get_param_importances(study))) == "b"
    frame = importance_frame(study)
    assert frame.attrs["n_trials"] == len(feasible) and top(frame, "value") == "lr"


@pytest.mark.parametrize("evaluator", sorted(EVALUATORS))
def test_too_few_trials_is_one_clear_error(evaluator):
    study = optuna.create_study(direction="maximize")
    lr = FloatDistribution(1e-5, 1.0, log=True)

    def trial(value, state=TrialState.COMPLETE, **attrs):
        return create_trial(
            state=state,
            value=value,
            params={"lr": 0.01},
            distributions={"lr": lr},
            user_attrs=attrs,
        )

    study.add_trials(
        [
            trial(0.5),
            trial(0.9, feasible=False),
            trial(None, state=TrialState.FAIL),
            create_trial(value=0.7),  # no parameters
        ]
    )
    with pytest.raises(StudyError) as raised:
        importance_frame(study, evaluator)
    message = str(raised.value)
    assert "has 1 complete, feasible trial with parameters" in message
    assert "needs at least 2" in message


def test_fanova_on_values_that_never_change_and_an_unknown_evaluator():
    study = study_of(lambda t: 0.0 * t.suggest_float("x", 0.0, 1.0), ["minimize"])
    with pytest.raises(StudyError, match="every trial has the same value"):
        importance_frame(study, "fanova")
    with pytest.raises(StudyError, match="choose one of ped-anova, fanova"):
        importance_frame(study, "shap")


def test_the_figure_names_the_evaluator_the_trials_and_each_objective(tmp_path, monkeypatch):
    frame = importance_frame(two_objective_study(), "ped-anova")
    figures = []
    save = plots.save

    def keep(figure, path):
        figures.append(figure)
        save(figure, path)

    monkeypatch.setattr(plots, "save", keep)
    path = importance_figure(frame, tmp_path / "importance.png")
    assert path == tmp_path / "importance.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    texts = {text.get_text() for text in figures[0].findobj(Text)}
    assert f"Parameter importance by ped-anova over {N_TRIALS} trials" in texts
    assert {"score (higher is better)", "seconds (lower is better)"} <= texts
    assert "importance (ped-anova)" in texts
    assert {"lr", "a", "b"} <= texts  # the bars' tick labels


ENTRY = """
import math


def objective(config, report, data, rng):
    return -((math.log10(config["lr"]) + 2.5) ** 2) + 1e-3 * rng.normal()
"""

SPEC = """
name = "importance"
seed = 0
[model]
kind = "python"
entry = "{module}:objective"
[search]
n_trials = 40
sampler = "random"
pruner = "none"
[search.params.lr]
low = 1e-5
high = 1.0
log = true
[search.params.a]
low = 0.0
high = 1.0
[search.params.b]
low = 0.0
high = 1.0
"""


def test_a_python_entrys_study_ranks_its_one_parameter_first(tmp_path, request):
    module = "importance_" + re.sub(r"\W", "_", request.node.name)
    (tmp_path / f"{module}.py").write_text(ENTRY)
    spec = specs.with_overrides(
        specs.loads(SPEC.format(module=module)), storage=f"sqlite:///{tmp_path / 'i.db'}"
    )
    study = run(dataclasses.replace(spec, code=trusted([tmp_path]))).study
    frame = importance_frame(study)
    # 4 of the 40 trials re-evaluate the leaders (the confirm stage): their parameters
    # repeat other trials', and importance leaves them out.
    assert frame.attrs["n_trials"] == 36
    assert set(frame["direction"]) == {"maximize"}
    assert top(frame, frame["objective"].iloc[0]) == "lr"
