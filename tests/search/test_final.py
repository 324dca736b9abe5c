"""`final`: the chosen configuration retrained on several seeds, the test mean with its
interval, every look at the test split kept, and an ensemble of the retrainings."""

import contextlib
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpsearch.cli import main
from hpsearch.errors import StudyError
from hpsearch.nn.net import judge_probabilities
from hpsearch.search.final import final
from hpsearch.search.runner import run
from hpsearch.train import Diverged
from hpsearch.trials import network
from tests.support import tiny_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "af28084"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny study, copied afresh for each test (its test split unread)."""
    folder = tmp_path_factory.mktemp("finished")
    spec = tiny_spec(folder, n_trials=4)
    run(spec)
    return folder / "studies.db", spec


@pytest.fixture
def study(finished, tmp_path):
    db, spec = finished
    source = contextlib.closing(sqlite3.connect(db))  # with what its WAL holds
    with source as original, contextlib.closing(sqlite3.connect(tmp_path / "studies.db")) as copy:
        original.backup(copy)
    return spec.name, f"sqlite:///{tmp_path / 'studies.db'}"


def test_several_seeds_give_a_mean_an_interval_and_each_value(study):
    name, db = study
    result = final(name, db, seeds=3)
    runs = result.test_runs["val_accuracy"]
    assert result.seeds == 3 and len(set(runs)) > 1  # other draws, other nets
    assert result.test_value == pytest.approx(np.mean(runs))
    low, high = result.interval("val_accuracy")
    assert low < result.test_value < high
    stored = optuna.load_study(study_name=name, storage=db).user_attrs
    assert stored["test_accuracy"] == result.test_value
    assert stored["final"]["test_runs"]["val_accuracy"] == runs
    assert stored["final"]["interval"]["val_accuracy"] == [low, high]
    # The first seed is the trial's own draws: what one retraining always gave.
    again = final(name, db, seeds=1, again=True)
    assert again.test_runs["val_accuracy"] == runs[:1]
    assert again.interval("val_accuracy") is None


def test_a_second_look_at_the_test_split_needs_again_and_keeps_every_result(
    study, capsys, tmp_path
):
    name, db = study
    args = ["final", "--study", name, "--storage", db, "--seeds", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    shown = re.search(r"test accuracy (\S+) \+- (\S+) \(2 seeds; (\S+)\.\.(\S+)\)", out)
    assert shown, out
    mean, _, low, high = map(float, shown.groups())
    assert low <= mean <= high
    assert "evaluated once" in out
    assert main(["report", "--study", name, "--storage", db, "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert f"(`hpsearch final`): {mean:.4f} (mean of 2 retrainings; 95% interval " in text
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"hpsearch: error: the test split of study {name!r} has been evaluated once already "
        f"(trial {_final_attr(name, db)['trial']}, test accuracy {mean:.4f}); each look makes "
        "its score a more optimistic estimate. Add --again to look once more (every result "
        "is kept)"
    ]
    assert main([*args, "--again", "--seeds", "1"]) == 0
    assert "evaluated 2 times, this look included" in capsys.readouterr().out
    kept = optuna.load_study(study_name=name, storage=db).user_attrs["finals"]
    assert [(k["look"], k["seeds"]) for k in kept] == [(1, 2), (2, 1)]
    assert _final_attr(name, db) == kept[-1]


def test_the_ensemble_scores_the_averaged_probabilities(study, monkeypatch):
    name, db = study
    kept = []
    measure = network.retrain_and_measure

    def keeping(*args, **kwargs):
        kept.append(measure(*args, **kwargs))
        return kept[-1]

    monkeypatch.setattr(network, "retrain_and_measure", keeping)
    result = final(name, db, seeds=3, ensemble=True)
    for one in kept:  # each retraining's probabilities give its own test accuracy
        _, accuracy = judge_probabilities(one.test_probabilities, one.test_labels)
        assert accuracy == pytest.approx(one.test_values["val_accuracy"])
    averaged = np.mean([one.test_probabilities for one in kept], axis=0)
    loss, accuracy = judge_probabilities(averaged, kept[0].test_labels)
    assert result.ensemble == {"test_accuracy": accuracy, "test_loss": loss, "seeds": 3}
    assert accuracy > 0.8  # digits: chance is 0.1
    assert _final_attr(name, db)["ensemble"]["test_accuracy"] == accuracy


def test_an_ensemble_of_a_python_entry_or_of_one_seed_is_refused_before_training(tmp_path):
    copy = tmp_path / "studies.db"
    shutil.copy(FIXTURES / "studies.db", copy)
    with pytest.raises(StudyError, match="--ensemble needs class probabilities"):
        final("digits-f1", f"sqlite:///{copy}", code=(str(FIXTURES),), again=True, ensemble=True)
    with pytest.raises(StudyError, match="give --seeds 2 or more"):
        final("digits-f1", f"sqlite:///{copy}", seeds=1, ensemble=True)


def test_a_retraining_that_diverges_is_left_out_and_said(study, monkeypatch):
    name, db = study
    fit = network.fit
    calls = []

    def second_diverges(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Diverged(1, 2, float("nan"))
        return fit(*args, **kwargs)

    monkeypatch.setattr(network, "fit", second_diverges)
    said = []
    result = final(name, db, seeds=3, on_seed=lambda i, n, values: said.append(values))
    assert result.diverged == 1 and result.seeds == 2
    assert said[1] is None and all(said[i] for i in (0, 2))
    assert _final_attr(name, db)["diverged"] == 1


def _final_attr(name: str, db: str) -> dict:
    return optuna.load_study(study_name=name, storage=db).user_attrs["final"]


def test_two_finals_at_once_each_keep_their_look(study):
    """Each reads the kept results again and adds its own under the study's lock."""
    import threading

    name, db = study
    final(name, db, seeds=1)
    threads = [
        threading.Thread(target=final, args=(name, db), kwargs={"seeds": 1, "again": True})
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    kept = optuna.load_study(study_name=name, storage=db).user_attrs["finals"]
    assert [k["look"] for k in kept] == [1, 2, 3]
