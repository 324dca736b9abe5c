"""examples/regression/: a user's function whose objective is an RMSE, declared in its
spec with direction "minimize". Every command follows that direction: run and final
choose the lowest val_rmse, the median pruner stops only trials above the median,
narrowing keeps the spec's ranges, and nothing calls the value an accuracy."""

import re
import tomllib
from pathlib import Path

import numpy as np
import optuna
import pytest
from matplotlib.text import Text
from optuna.trial import TrialState

from hpsearch.analysis import plots
from hpsearch.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "regression"
SPEC = EXAMPLE / "diabetes.toml"
NAME = "diabetes-mlp"
ACCURACY = re.compile(r"accura|val acc", re.IGNORECASE)
# Predicting the training mean misses diabetes progression by about 77 (its std).
MEAN_PREDICTOR_RMSE = 70.0


def said(text: str, where: str) -> None:
    found = ACCURACY.search(text)
    assert found is None, f"{where} says {found.group(0)!r}:\n{text}"


def printed(capsys: pytest.CaptureFixture[str], where: str) -> str:
    captured = capsys.readouterr()
    said(captured.out + captured.err, where)
    return captured.out


def lr_range(spec: Path) -> tuple[float, float]:
    lr = tomllib.loads(spec.read_text())["search"]["params"]["lr"]
    return lr["low"], lr["high"]


def test_the_regression_example_minimizes_val_rmse_everywhere(tmp_path, capsys, monkeypatch):
    storage = f"sqlite:///{tmp_path / 'diabetes.db'}"
    study_args = ["--storage", storage, "--study", NAME]
    code = ["--code", str(EXAMPLE)]

    run = ["run", str(SPEC), "--storage", storage, "--workers", "1", "--trials", "20"]
    assert main([*run, "--no-progress"]) == 0
    out = printed(capsys, "run")
    assert "val_rmse" in out and "lower is better" in out

    study = optuna.load_study(study_name=NAME, storage=storage)
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE]
    assert study.metric_names == ["val_rmse"]
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value)
    assert study.best_trial.number == best.number
    chosen = re.search(r"best val_rmse ([\d.]+) \(trial (\d+)", out)
    assert chosen is not None, out
    assert int(chosen.group(2)) == best.number
    assert float(chosen.group(1)) == pytest.approx(best.value, abs=1e-4)

    # With one worker the median pruner judges a trial's best value so far against the
    # trials completed before it, at the step it stopped: pruned means worse (higher).
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "a median pruner over 20 trials stopped none"
    for trial in pruned:
        step = max(trial.intermediate_values)
        earlier = [
            t.intermediate_values[step]
            for t in complete
            if t.datetime_complete < trial.datetime_complete and step in t.intermediate_values
        ]
        own_best = min(trial.intermediate_values.values())
        assert own_best > np.median(earlier), f"trial {trial.number} was pruned for being low"
        assert trial.intermediate_values[step] > best.intermediate_values[step]

    assert main(["trials", *study_args]) == 0
    out = printed(capsys, "trials")
    assert "val_rmse" in out and "lower is better" in out

    assert main(["final", *study_args, *code]) == 0
    out = printed(capsys, "final")
    assert f"best trial {best.number}:" in out
    tested = re.search(r"test val_rmse ([\d.]+)", out)
    assert tested is not None, out
    test_rmse = optuna.load_study(study_name=NAME, storage=storage).user_attrs["test_val_rmse"]
    assert float(tested.group(1)) == pytest.approx(test_rmse, abs=1e-4)
    assert test_rmse < MEAN_PREDICTOR_RMSE

    figures = []
    save = plots.save

    def keep(figure, path):
        figures.append((figure, path))
        save(figure, path)

    monkeypatch.setattr(plots, "save", keep)
    assert main(["report", *study_args, "--out", str(tmp_path / "report")]) == 0
    printed(capsys, "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    said(markdown, "report.md")
    assert f"Best val_rmse {best.value:.4f} (trial {best.number}" in markdown, markdown
    assert figures
    for figure, path in figures:
        texts = "\n".join(t.get_text() for t in figure.findobj(Text))
        said(texts, f"figure {path.name}")
        said(path.name, "a figure's file name")
        if path.name == "best_curves.png":
            assert f"Best-1 (trial {best.number})" in texts, texts

    narrowed = tmp_path / "narrowed"
    narrow = ["narrow", *study_args, "--out", str(narrowed), "--launch", "--trials", "10"]
    assert main([*narrow, *code, "--no-progress"]) == 0
    printed(capsys, "narrow --launch")
    (written,) = narrowed.glob("*.toml")
    said(written.read_text(), "narrow's spec")
    low, high = lr_range(written)
    assert 1e-4 <= low < high <= 1.0


def test_two_rounds_of_the_regression_example_keep_its_ranges(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'rounds.db'}"
    rounds = tmp_path / "rounds"
    run = ["run", str(SPEC), "--storage", storage, "--workers", "1", "--trials", "12"]
    assert main([*run, "--rounds", "2", "--spec-folder", str(rounds), "--no-progress"]) == 0
    out = printed(capsys, "run --rounds 2")
    assert "round 2" in out and "val_rmse" in out
    (written,) = rounds.glob("*.toml")
    said(written.read_text(), "the round's spec")
    low, high = lr_range(written)
    assert 1e-4 <= low < high <= 1.0
    second = optuna.load_study(study_name=f"{NAME}-r2", storage=storage)
    assert second.directions == [optuna.study.StudyDirection.MINIMIZE]
    assert any(t.state == TrialState.COMPLETE for t in second.trials)
