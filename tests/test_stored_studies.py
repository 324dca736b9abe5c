"""What was recorded before the code was reorganised still holds: the default spec at
3 epochs gives the same trials, to the last digit, and a database written by that code
(tests/fixtures/af28084: a network study with its final, a python entry's study that
reports a macro F1 with its final, a narrowed round, a reproducible study) opens with
`trials`, `report`, `narrow` and `final`, every attribute it holds named by the record
schema."""

import json
import math
import re
import shutil
from pathlib import Path

import optuna
import pytest

from hpsearch import records
from hpsearch import spec as spec_module
from hpsearch.cli import main
from hpsearch.spec import SEARCHABLE, Confirm

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "af28084"
STUDIES = ("digits-net", "digits-f1", "digits-net-r2", "digits-net-reproducible")
NEXT_ROUND = {
    "digits-net": "digits-net-r2",
    "digits-f1": "digits-f1-r2",
    "digits-net-r2": "digits-net-r3",
    "digits-net-reproducible": "digits-net-reproducible-r2",
}


def trials_table(storage: str, name: str) -> list[dict]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [
        {
            "number": t.number,
            "state": t.state.name,
            "params": t.params,
            "value": t.value,
            "intermediate_values": {str(k): v for k, v in sorted(t.intermediate_values.items())},
        }
        for t in study.get_trials(deepcopy=False)
    ]


@pytest.fixture
def old_database(tmp_path) -> str:
    """A copy of the database written by the earlier code (the original stays as it is)."""
    copy = tmp_path / "studies.db"
    shutil.copy(FIXTURES / "studies.db", copy)
    return f"sqlite:///{copy}"


def test_the_default_spec_at_three_epochs_gives_the_recorded_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'default.db'}"
    spec = str(ROOT / "studies" / "mnist_lr_wd_init.toml")
    argv = ["run", spec, "--epochs", "3", "--workers", "1", "--no-progress", "--storage", storage]
    assert main(argv) == 0
    recorded = json.loads((FIXTURES / "default_3_epochs.json").read_text())
    now = json.loads(json.dumps(trials_table(storage, "mnist-lr-wd-init")))
    # The search is the recorded one; the budget's last tenth now re-evaluates the leaders
    # (the confirm stage), which the recording's code did not have.
    searched = 100 - Confirm().reserve(100)
    assert len(recorded) == 100 and len(now) > searched
    differing = [
        old["number"] for old, new in zip(recorded[:searched], now, strict=False) if old != new
    ]
    assert not differing, f"trials that differ from the recorded ones: {differing[:10]}"
    again = optuna.load_study(study_name="mnist-lr-wd-init", storage=storage).trials[searched:]
    assert again and all(records.is_confirmation(t) for t in again)


@pytest.mark.parametrize("name", STUDIES)
def test_an_older_database_opens_with_trials_report_narrow_and_final(
    name, old_database, tmp_path, capsys
):
    before = trials_table(old_database, name)
    common = ["--storage", old_database, "--study", name]
    assert main(["trials", *common]) == 0
    listed = capsys.readouterr().out
    assert str(max(t["number"] for t in before)) in listed
    assert main(["report", *common, "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.md").read_text().startswith(f"# Study `{name}`")
    assert main(["narrow", *common, "--out", str(tmp_path / "specs")]) == 0
    assert_narrowed(name, old_database, tmp_path / "specs", capsys.readouterr().out)
    # A test split the older code evaluated: a second look needs --again, and keeps the
    # first result.
    earlier = optuna.load_study(study_name=name, storage=old_database).user_attrs.get("final")
    final = ["final", *common, "--code", str(FIXTURES), "--seeds", "2"]
    if earlier is not None:
        assert main(final) == 2
        assert "has been evaluated once already" in capsys.readouterr().err
        final.append("--again")
    assert main(final) == 0
    assert "test " in capsys.readouterr().out
    finals = optuna.load_study(study_name=name, storage=old_database).user_attrs["finals"]
    assert finals[:-1] == ([earlier] if earlier else []) and finals[-1]["seeds"] == 2
    assert trials_table(old_database, name) == before  # read, never rewritten


def assert_narrowed(name: str, storage: str, folder: Path, out: str) -> None:
    """`narrow` wrote the next round's spec, which loads as a spec and searches the
    study's own ranges, each kept, narrowed or extended as the narrowing documents, and
    its output named each parameter and the file."""
    stored = optuna.load_study(study_name=name, storage=storage).user_attrs["spec"]
    original = stored["search"]["params"]
    path = folder / f"{NEXT_ROUND[name]}.toml"
    assert sorted(folder.iterdir()) == [path], out
    assert f"next round: {path}" in out.splitlines(), out
    following = spec_module.load(path)
    assert (following.name, following.parent) == (NEXT_ROUND[name], name)
    assert following.round == stored.get("round", 1) + 1
    assert following.model.entry == stored["model"].get("entry")
    assert set(following.search.params) == set(original), out
    for param, new in following.search.params.items():
        assert re.search(rf"^ *{re.escape(param)} +(log|linear) ", out, re.MULTILINE), out
        old = original[param]
        assert new.log == old.get("log", False), param
        within_or_extended(
            param, (old["low"], old["high"]), (new.low, new.high), new.log, out, stored
        )


def within_or_extended(
    param: str,
    old: tuple[float, float],
    new: tuple[float, float],
    log: bool,
    out: str,
    stored: dict,
) -> None:
    """A new range lies inside the old one, except on a side the output says it extended:
    there by at most a decade (log) or a quarter of the old width, within the setting's
    sensible limits, and never for a parameter of the user's own function."""
    scale = math.log10 if log else float
    (old_lo, old_hi), (new_lo, new_hi) = (tuple(map(scale, r)) for r in (old, new))
    assert new_lo < new_hi, (param, new)
    step = 1.0 if log else 0.25 * (old_hi - old_lo)
    own = stored["model"].get("kind") == "python"
    for side, beyond in (("low", old_lo - new_lo), ("high", new_hi - old_hi)):
        if beyond <= 1e-12 * max(1.0, abs(old_lo), abs(old_hi)):
            continue
        assert not own, f"{param}: the user's own parameter left its range: {old} -> {new}"
        assert beyond <= step * (1 + 1e-9), f"{param} extended too far: {old} -> {new}"
        sensible_lo, sensible_hi = SEARCHABLE[param].sensible
        assert sensible_lo <= new[0] and new[1] <= sensible_hi, (param, new)
        assert f"{param}: the good region touches the old range's" in out, out
        assert side in out.split(f"{param}: the good region touches", 1)[1].splitlines()[0]


def test_every_attribute_an_older_database_holds_is_in_the_record_schema(old_database):
    study_names = {a.name for a in records.STUDY_ATTRIBUTES}
    trial_names = {a.name for a in records.TRIAL_ATTRIBUTES}
    for name in STUDIES:
        study = optuna.load_study(study_name=name, storage=old_database)
        assert set(study.user_attrs) <= study_names, name
        for trial in study.get_trials(deepcopy=False):
            assert set(trial.user_attrs) <= trial_names, (name, trial.number)
    f1 = optuna.load_study(study_name="digits-f1", storage=old_database)
    assert records.metric_of(f1) is records.VAL_SCORE
    net = optuna.load_study(study_name="digits-net", storage=old_database)
    assert records.metric_of(net) is records.VAL_ACCURACY
