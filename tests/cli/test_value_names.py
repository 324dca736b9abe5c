"""A study of a user's function that reports a macro F1 score is never said to hold
"validation accuracy": not by run, rounds, narrow, report (its markdown and every text
in its figures), trials, final, nor in the dashboard's metric name and notes."""

import re
import shutil
from pathlib import Path

import optuna
import pytest
from matplotlib.text import Text
from optuna_dashboard import get_note

from hpsearch.analysis import plots
from hpsearch.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "af28084"
ACCURACY = re.compile(r"accura|val acc", re.IGNORECASE)

SPEC = """
name = "f1"
seed = 0
[data]
name = "digits"
[model]
kind = "python"
entry = "f1_entry:objective"
settings = { l2 = 1e-4 }
[training]
epochs = 4
batch_size = 50
[search]
n_trials = 6
sampler = "tpe"
pruner = "median"
[search.params.lr]
low = 1e-2
high = 10.0
log = true
[search.params.l2]
low = 1e-6
high = 1e-2
log = true
"""


def said(text: str, where: str) -> None:
    found = ACCURACY.search(text)
    assert found is None, f"{where} says {found.group(0)!r}:\n{text}"


def printed(capfd, where: str) -> str:
    """What the last command wrote to stdout, after checking that neither stdout nor
    stderr (this process's or a worker's) says accuracy."""
    out, err = capfd.readouterr()
    said(out, f"{where} (stdout)")
    said(err, f"{where} (stderr)")
    return out


def test_a_python_entrys_f1_study_never_says_validation_accuracy(tmp_path, capfd, monkeypatch):
    shutil.copy(FIXTURES / "f1_entry.py", tmp_path)
    spec = tmp_path / "f1.toml"
    spec.write_text(SPEC)
    storage = f"sqlite:///{tmp_path / 'f1.db'}"
    common = ["--storage", storage, "--code", str(tmp_path)]
    # Progress on: stderr is no terminal here, so each round prints progress lines.
    run = ["run", str(spec), "--workers", "1", "--rounds", "2", "--top", "0.5"]
    assert main([*run, *common, "--spec-folder", str(tmp_path / "rounds")]) == 0
    out, err = capfd.readouterr()
    said(out, "run --rounds (stdout)")
    said(err, "run --rounds' progress (stderr)")
    progress = re.findall(r"^(f1|round 2): (\d+)/6 trials finished(.*)$", err, re.MULTILINE)
    assert {(name, done) for name, done, _ in progress} >= {("f1", "6"), ("round 2", "6")}, err
    for _, _, rest in progress:  # the study's own metric, as its tables call it
        assert re.match(r", best val score 0\.\d{4} \(", rest), err
    for written in (tmp_path / "rounds").glob("*.toml"):
        said(written.read_text(), f"the round's spec {written.name}")

    study = ["--storage", storage, "--study", "f1"]
    assert main(["narrow", *study, "--out", str(tmp_path / "next")]) == 0
    printed(capfd, "narrow")
    said(next((tmp_path / "next").glob("*.toml")).read_text(), "narrow's spec")

    assert main(["trials", *study]) == 0
    printed(capfd, "trials")

    assert main(["final", *study, "--code", str(tmp_path)]) == 0
    out = printed(capfd, "final")
    assert "validation score" in out and "test score" in out

    figures = []
    monkeypatch.setattr(plots, "save", lambda figure, path: figures.append((figure, path)))
    assert main(["report", *study, "--out", str(tmp_path / "report")]) == 0
    printed(capfd, "report")
    said((tmp_path / "report" / "report.md").read_text(), "report.md")
    assert len(figures) >= 3
    for figure, path in figures:
        texts = [t.get_text() for t in figure.findobj(Text)]
        said("\n".join(texts), f"figure {path.name}")
        said(path.name, "a figure's file name")

    loaded = optuna.load_study(study_name="f1", storage=storage)
    assert loaded.metric_names == ["val_score"]  # optuna-dashboard's name for the value
    said(str(loaded.user_attrs.get("final")), "the stored final result")
    note = get_note(optuna.load_study(study_name="f1-r2", storage=storage))
    assert "Range narrowing" in note, "the narrowed round left no dashboard note"
    said(note, "the dashboard's note")


@pytest.mark.parametrize("name", ["digits-net"])
def test_the_networks_study_still_says_validation_accuracy(name, tmp_path, capsys):
    """The check above is no check if nothing ever says it: the network's study does."""
    copy = tmp_path / "studies.db"
    shutil.copy(FIXTURES / "studies.db", copy)
    assert main(["trials", "--storage", f"sqlite:///{copy}", "--study", name]) == 0
    assert ACCURACY.search(capsys.readouterr().out)
