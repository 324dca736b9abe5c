"""Objectives people bring: a minimized metric, two objectives with a Pareto front,
constraints, the contract a user's function is held to, and specs that ask for what
cannot be done."""

import math
import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.cli import main
from hpsearch.search.rounds import next_round
from tests.support import TINY, hpsearch

# Width and batch size trade accuracy for time, at an lr that trains every one of them:
# a front of more than one trial even when the clock is noisy (a loaded machine, any seed).
PARETO_SPEC = """
name = "two"
seed = 0
[data]
name = "mnist-5k"
[model]
hidden_sizes = [32]
[training]
epochs = 3
batch_size = 50
lr = 0.1
[search]
n_trials = 45
sampler = "tpe"
objectives = [{ name = "val_accuracy" }, { name = "train_seconds" }]
[search.params.hidden_width]
low = 8
high = 256
log = true
[search.params.batch_size]
low = 16
high = 256
log = true
"""


def load(db: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=db)


def test_two_objectives_of_the_network_give_a_front_that_final_picks_from(tmp_path, capsys):
    spec = tmp_path / "two.toml"
    spec.write_text(PARETO_SPEC)
    db = f"sqlite:///{tmp_path / 'two.db'}"
    assert main(["run", str(spec), "--storage", db, "--workers", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of" in out and "train_seconds (minimized)" in out
    study = load(db, "two")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_accuracy", "train_seconds"]
    front = {t.number for t in study.best_trials}
    # Its size follows the clock (a loaded machine times trials unevenly); what follows
    # needs a front with no single best.
    assert len(front) >= 2

    assert main(["trials", "--storage", db, "--pareto"]) == 0
    listed = capsys.readouterr().out
    rows = [line.split() for line in listed.splitlines() if re.match(r"\s*\d+\s+COMPLETE", line)]
    assert {int(row[0]) for row in rows} == front

    # No single best: final asks, in one line, and stores nothing.
    assert main(["final", "--storage", db]) == 2
    assert "--pick" in capsys.readouterr().err
    assert "final" not in load(db, "two").user_attrs

    rule = "val_accuracy>=0.8, then min train_seconds"
    assert main(["final", "--storage", db, "--pick", rule]) == 0
    chosen = load(db, "two").user_attrs["final"]["trial"]
    passing = [t for t in study.best_trials if t.values[0] >= 0.8]
    assert chosen == min(passing, key=lambda t: t.values[1]).number
    assert load(db, "two").user_attrs["test_accuracy"] > 0.5  # mnist: chance is 0.1

    report = tmp_path / "report"
    assert main(["report", "--storage", db, "--out", str(report)]) == 0
    assert (report / "pareto_front.png").stat().st_size > 0


def constrained_spec(tmp_path: Path) -> Path:
    """Digits through one hidden layer of 8 to 64 units: about 75 parameters per unit, so
    at most 2700 parameters keeps the narrower half of the widths."""
    text = TINY.format(n_trials=16, sampler="tpe", pruner="none").replace(
        "hidden_sizes = [32, 32]", "hidden_sizes = [32]"
    )
    text += "[search.params.hidden_width]\nlow = 8\nhigh = 64\n"
    text += "[search.constraints]\nn_params = { max = 2700 }\n"
    spec = tmp_path / "tiny.toml"
    spec.write_text(text)
    return spec


def test_a_constrained_study_never_reports_or_finalizes_an_infeasible_trial(tmp_path, capsys):
    spec = constrained_spec(tmp_path)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["run", str(spec), "--storage", db, "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    study = load(db, "tiny")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    infeasible = [t for t in complete if t.user_attrs["metrics"]["n_params"] > 2700]
    feasible = [t for t in complete if t.user_attrs["metrics"]["n_params"] <= 2700]
    assert infeasible and feasible
    assert all(t.user_attrs["feasible"] is False for t in infeasible)
    assert all(t.constraints["n_params.max"] > 0 for t in infeasible)  # what samplers read
    best_feasible = max(feasible, key=lambda t: t.value)
    assert study.best_trial.number == best_feasible.number
    assert f"(trial {best_feasible.number};" in out
    table = out[out.index("completed trials:") :]
    shown = {int(line.split()[0]) for line in table.splitlines()[2:] if line.strip()[:1].isdigit()}
    assert shown and not shown & {t.number for t in infeasible}

    following = next_round("tiny", db)
    assert following.narrowing.best_value == best_feasible.value

    assert main(["final", "--storage", db]) == 0
    assert load(db, "tiny").user_attrs["final"]["trial"] == best_feasible.number
    infeasible_final = ["final", "--storage", db, "--trial", str(infeasible[0].number), "--again"]
    assert main(infeasible_final) == 2
    assert "outside the study's constraints" in capsys.readouterr().err

    assert main(["trials", "--storage", db, "--csv", str(tmp_path / "t.csv")]) == 0
    import pandas as pd

    frame = pd.read_csv(tmp_path / "t.csv")
    assert set(frame.loc[~frame["feasible"], "number"]) >= {t.number for t in infeasible}


def test_a_minimized_loss_picks_its_lowest_trial_and_prunes_only_the_worse(tmp_path, capsys):
    text = TINY.format(n_trials=20, sampler="random", pruner="median")
    text = text.replace('pruner = "median"', 'pruner = "median"\nobjective = "val_loss"')
    text = text.replace("epochs = 4", "epochs = 5")
    text += "[search.pruner_options]\nn_startup_trials = 4\nn_warmup_steps = 1\n"
    spec = tmp_path / "tiny.toml"
    spec.write_text(text)
    db = f"sqlite:///{tmp_path / 'l.db'}"
    assert main(["run", str(spec), "--storage", db, "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "lower is better" in out and not re.search(r"accura|val acc", out, re.I)
    study = load(db, "tiny")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    lowest = min(complete, key=lambda t: t.value)
    assert study.best_trial.number == lowest.number
    assert f"validation loss {lowest.value:.4f} (trial {lowest.number}; lower is better)" in out
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    for trial in pruned:
        step, value = max(trial.intermediate_values.items())
        if not math.isfinite(value):
            continue
        others = [t.intermediate_values[step] for t in complete if step in t.intermediate_values]
        others.sort()
        median = (
            others[len(others) // 2]
            if len(others) % 2
            else sum(others[len(others) // 2 - 1 : len(others) // 2 + 1]) / 2
        )
        assert value >= median, (trial.number, step, value, median)

    assert main(["final", "--storage", db]) == 0
    out = capsys.readouterr().out
    assert "test loss" in out and "test_val_loss" in out
    stored = load(db, "tiny").user_attrs
    assert stored["final"]["trial"] == lowest.number and stored["test_val_loss"] > 0


LR_AT_THE_EDGE = """
def objective(config, report, data, rng):
    value = 1.0 - (config["lr"] - 1.0) ** 2 + 0.001 * rng.normal()
    report(1, value)
    return value
"""


def test_a_users_parameter_is_never_narrowed_past_its_range_whatever_its_name(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "edge_entry.py").write_text(LR_AT_THE_EDGE)
    spec = folder / "edge.toml"
    spec.write_text(
        'name = "edge"\n[model]\nkind = "python"\nentry = "edge_entry:objective"\n'
        '[training]\nepochs = 1\n[search]\nn_trials = 40\nsampler = "random"\n'
        "[search.params.lr]\nlow = 1e-4\nhigh = 1.0\nlog = true\n"
    )
    db = f"sqlite:///{tmp_path / 'e.db'}"
    out = tmp_path / "specs"
    argv = ["run", str(spec), "--storage", db, "--workers", "1", "--no-progress"]
    assert main([*argv, "--rounds", "2", "--spec-folder", str(out), "--tolerance", "-1"]) == 0
    following = next_round("edge", db)  # the good region touches lr = 1
    change = following.narrowing.changes["lr"]
    assert change.best[1] > 0.5 and change.new[1] <= 1.0
    second = load(db, "edge-r2")
    assert max(t.params["lr"] for t in second.get_trials()) <= 1.0
    assert second.user_attrs["ranges"]["lr"]["high"] <= 1.0


CONTRACT = {
    "tuple": "return (0.5, 1.0)",
    "none": "pass",
    "raises": "raise ValueError('bad shape')",
}


def contract_project(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "broken_entry.py").write_text(
        f"def objective(config, report, data, rng):\n    report(1, 0.5)\n    {body}\n"
    )
    spec = folder / "broken.toml"
    spec.write_text(
        'name = "broken"\n[model]\nkind = "python"\nentry = "broken_entry:objective"\n'
        "[training]\nepochs = 1\n[search]\nn_trials = 8\n"
        'objectives = [{ name = "val_rmse", direction = "minimize" }]\n'
        "[search.params.lr]\nlow = 1e-4\nhigh = 1.0\nlog = true\n"
    )
    return spec


@pytest.mark.parametrize("case", sorted(CONTRACT))
def test_a_function_breaking_its_contract_stops_the_run_in_one_line(tmp_path, case):
    spec = contract_project(tmp_path, CONTRACT[case])
    db = f"sqlite:///{tmp_path / 'b.db'}"
    run = hpsearch("run", str(spec), "--storage", db, "--workers", "2", "--no-progress")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 2, err
    assert err.startswith("hpsearch: error: ") and err.count("\n") == 1, err
    expected = {
        "tuple": "returned a tuple; return one number (val_rmse), or a dict with val_rmse",
        "none": "returned None; return one number",
        "raises": "raised ValueError: bad shape",
    }[case]
    assert expected in err
    trials = load(db, "broken").get_trials()
    assert len([t for t in trials if t.state != TrialState.WAITING]) <= 2  # one per worker
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and not [t for t in trials if t.state == TrialState.PRUNED]
    if case != "raises":
        assert expected.split(";")[0] in failed[0].user_attrs["stop_reason"]


RETURNS = {
    "a string": ("0.5", "returned a str; return one number (val_rmse), or a dict with val_rmse"),
    "a bool": (True, "returned a bool; return one number"),
    "a name not declared": (
        {"val_rmse": 0.5, "other": 1.0},
        "returned 'other', which the spec does not declare",
    ),
    "a missing name": ({"score": 0.5}, "returned 'score', which the spec does not declare"),
    "a dict of text": ({"val_rmse": "low"}, "returned val_rmse = 'low'"),
}


@pytest.mark.parametrize("case", sorted(RETURNS))
def test_every_return_outside_the_contract_is_named(case):
    from hpsearch import spec as spec_module
    from hpsearch.trials.python import ContractError, returned

    value, message = RETURNS[case]
    declared = spec_module.loads(
        '[model]\nkind = "python"\nentry = "m:f"\n[search]\n'
        'objectives = [{ name = "val_rmse", direction = "minimize" }]\n'
        "[search.params.lr]\nlow = 0.1\nhigh = 1.0\n"
    )
    with pytest.raises(ContractError, match=re.escape(message)):
        returned(value, declared, "trial 0: m:f")
    assert returned({"val_rmse": 2}, declared, "") == {"val_rmse": 2.0}
    assert returned(0.25, declared, "") == {"val_rmse": 0.25}


HOSTILE = {
    "unknown metric": ('objective = "val_f1"', "unknown metric 'val_f1'"),
    "direction": (
        'objectives = [{ name = "val_loss", direction = "down" }]',
        "direction must be minimize or maximize",
    ),
    "pruner with two objectives": (
        'objectives = ["val_accuracy", "n_params"]\npruner = "median"',
        "Optuna prunes single-objective studies only",
    ),
    "unknown constraint": ("[search.constraints]\nlatency = { max = 2 }", "unknown metric"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_spec_asking_for_what_cannot_be_done_is_refused_before_anything_is_stored(
    tmp_path, capsys, case
):
    line, message = HOSTILE[case]
    text = TINY.format(n_trials=4, sampler="tpe", pruner="none").replace('pruner = "none"\n', "")
    search_end = text.index("[search.params.lr]")
    text = text[:search_end] + line + "\n" + text[search_end:]
    spec = tmp_path / "tiny.toml"
    spec.write_text(text)
    db = tmp_path / "h.db"
    assert main(["run", str(spec), "--storage", f"sqlite:///{db}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not db.exists()


def test_a_minimized_reproducible_search_repeats_with_submitted_workers(tmp_path, capsys):
    """The stored spec carries the objective to workers started anywhere, and a
    reproducible search of a loss prunes and numbers its trials alike with any workers."""
    text = TINY.format(n_trials=12, sampler="tpe", pruner="median").replace(
        "start_at_defaults = true",
        'start_at_defaults = true\nreproducible = true\nlag = 4\nobjective = "val_loss"',
    )
    text += "[search.pruner_options]\nn_startup_trials = 3\nn_warmup_steps = 1\n"
    spec = tmp_path / "tiny.toml"
    spec.write_text(text)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    run = ["run", str(spec), "--storage", db, "--no-progress"]
    assert main([*run, "--study", "one", "--workers", "1"]) == 0
    assert main(["submit", str(spec), "--storage", db, "--study", "submitted"]) == 0
    workers = [
        hpsearch("worker", "--storage", db, "--study", "submitted", "--no-progress")
        for _ in range(2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    capsys.readouterr()
    assert main(["trials", "--study", "one", "--storage", db, "--compare", "submitted"]) == 0
    assert "agree: 12 trials" in capsys.readouterr().out
    one = load(db, "one")
    assert one.direction == load(db, "submitted").direction == optuna.study.StudyDirection.MINIMIZE
    assert any(t.state == TrialState.PRUNED for t in one.trials)


def test_a_report_of_a_study_without_a_feasible_trial_says_so(tmp_path, capsys):
    spec = constrained_spec(tmp_path)
    spec.write_text(spec.read_text().replace("max = 2700", "max = 10"))
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["submit", str(spec), "--storage", db]) == 0
    assert main(["report", "--storage", db, "--out", str(tmp_path / "empty")]) == 0
    run = ["run", str(spec), "--storage", db, "--workers", "1", "--no-progress", "--trials", "3"]
    assert main(run) == 0
    assert "no completed feasible trial yet" in capsys.readouterr().out
    assert main(["report", "--storage", db, "--out", str(tmp_path / "none")]) == 0
    assert "none is the best" in (tmp_path / "none" / "report.md").read_text()
    assert main(["final", "--storage", db]) == 2


def test_a_pick_tied_on_its_objective_takes_the_trial_better_in_the_others():
    from hpsearch.records import N_PARAMS, VAL_ACCURACY
    from hpsearch.search.pick import parse_pick

    distributions = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trials = [
        optuna.trial.create_trial(values=values, params={"x": 0.5}, distributions=distributions)
        for values in ([0.19, 310.0], [0.25, 310.0], [0.9, 5000.0])
    ]
    for number, trial in enumerate(trials):
        trial.number = number
    picked = parse_pick("min n_params").choose(trials, (VAL_ACCURACY, N_PARAMS))
    assert picked.number == 1  # trial 0 has as few parameters and is less accurate


def test_optunas_own_constraints_keep_a_plain_studys_infeasible_trial_from_the_top(tmp_path):
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_constraint("x_at_most_half", x - 0.5)
        return x

    db = f"sqlite:///{tmp_path / 'plain.db'}"
    study = optuna.create_study(
        study_name="plain",
        storage=db,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(0),
    )
    study.optimize(objective, n_trials=12)
    from hpsearch.cli.common import best_text

    assert f"(trial {study.best_trial.number};" in best_text(study)
    assert study.best_value <= 0.5
    assert any(t.value > 0.5 for t in study.trials)


def test_a_reproducible_sampler_is_shown_each_trials_distance_from_the_constraints():
    from hpsearch.search.reproducible.slots import as_shown

    trial = optuna.trial.create_trial(
        value=0.5,
        params={"x": 0.5},
        distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
    )
    trial.set_constraint("n_params.max", 5.0)
    assert as_shown(trial).constraints == {"n_params.max": 5.0}
