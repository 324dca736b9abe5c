import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

from hpsearch import spec as spec_module
from hpsearch.analysis.frames import trials_frame
from hpsearch.analysis.narrowing import NarrowingError
from hpsearch.cli import main
from hpsearch.search.budget import finished_trials
from hpsearch.search.rounds import next_round, round_name, run_rounds
from hpsearch.search.runner import run
from hpsearch.spec import SEARCHABLE, with_overrides
from tests.support import tiny_spec

ROOT = Path(__file__).resolve().parents[2]


def lineage(storage: str) -> dict[int, optuna.Study]:
    """Every study of the database by round, read from the database alone."""
    studies = [
        optuna.load_study(study_name=n, storage=storage)
        for n in optuna.get_all_study_names(storage)
    ]
    return {s.user_attrs["round"]: s for s in studies}


def test_round_names():
    assert round_name("mnist", 2) == "mnist-r2"
    assert round_name("mnist-r2", 3) == "mnist-r3"


def test_three_rounds_of_the_default_spec_are_three_linked_studies(tmp_path):
    storage = f"sqlite:///{tmp_path / 'rounds.db'}"
    code = main(
        [
            "run",
            str(ROOT / "studies" / "mnist_lr_wd_init.toml"),
            "--rounds",
            "3",
            "--trials",
            "20",
            "--epochs",
            "2",
            "--storage",
            storage,
            "--tolerance",
            "-1",
            "--spec-folder",
            str(tmp_path / "specs"),
            "--workers",
            "1",  # one worker: which trials the median pruner stops is then reproducible
            "--no-progress",
        ]
    )
    assert code == 0
    by_round = lineage(storage)
    assert sorted(by_round) == [1, 2, 3]
    assert by_round[1].user_attrs["parent"] is None
    for child_round in (2, 3):
        child, parent = by_round[child_round], by_round[child_round - 1]
        assert child.user_attrs["parent"] == parent.study_name
        assert child.study_name == f"mnist-lr-wd-init-r{child_round}"
        assert len(finished_trials(child)) == 20  # copies do not eat the budget
        copied = [t for t in child.trials if "copied_from" in t.user_attrs]
        assert copied and all(
            t.user_attrs["copied_from"].startswith(parent.study_name) for t in copied
        )
        new, old = child.user_attrs["ranges"], parent.user_attrs["ranges"]
        for name in ("lr", "weight_decay", "init_scale"):
            lo, hi = math.log10(new[name]["low"]), math.log10(new[name]["high"])
            old_lo, old_hi = math.log10(old[name]["low"]), math.log10(old[name]["high"])
            # Each side either stays inside the old range or, at an edge, moves out by
            # at most one decade, never past the setting's sensible limits.
            assert old_lo - 1 - 1e-9 <= lo and hi <= old_hi + 1 + 1e-9
            limit_lo, limit_hi = SEARCHABLE[name].sensible
            assert lo >= min(old_lo, math.log10(limit_lo)) - 1e-9
            assert hi <= max(old_hi, math.log10(limit_hi)) + 1e-9
        keys = child._storage.get_study_system_attrs(child._study_id)
        assert any(key.startswith("dashboard:note") for key in keys)
        spec_file = tmp_path / "specs" / f"{child.study_name}.toml"
        assert spec_module.load(spec_file).parent == parent.study_name

    out = tmp_path / "report"
    assert (
        main(["report", "--study", "mnist-lr-wd-init-r3", "--storage", storage, "--out", str(out)])
        == 0
    )
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "accuracy_init_scale.png",
        "accuracy_lr_weight_decay.png",
        "best_curves.png",
        "importance.png",
        "ranges_by_round.png",
    ]
    assert all((out / name).stat().st_size > 5_000 for name in pngs)
    markdown = (out / "report.md").read_text()
    assert "| lr | log |" in markdown and "| decision | why |" in markdown
    assert "![best_curves](best_curves.png)" in markdown
    assert "narrowed from `mnist-lr-wd-init-r2`" in markdown


def test_warm_start_copies_only_trials_inside_the_new_ranges(tmp_path):
    spec = tiny_spec(tmp_path, n_trials=15)
    run(spec)
    following = next_round(spec.name, spec.storage, top=0.3)
    child_spec = following.spec
    result = run(with_overrides(child_spec, n_trials=2))
    parent = optuna.load_study(study_name=spec.name, storage=spec.storage)
    params = child_spec.search.params
    inside = [
        t
        for t in parent.trials
        if t.state == optuna.trial.TrialState.COMPLETE
        and all(params[n].low <= t.params[n] <= params[n].high for n in params)
    ]
    copies = [t for t in result.study.trials if "copied_from" in t.user_attrs]
    assert len(copies) == len(inside) > 0
    assert {t.value for t in copies} == {t.value for t in inside}
    assert result.study.user_attrs["warm_start_trials"] == len(inside)
    assert result.finished_now == 2


def test_rounds_stop_early_without_improvement(tmp_path):
    spec = tiny_spec(tmp_path, n_trials=12)
    results = run_rounds(spec, 4, tolerance=1.0, spec_folder=tmp_path)
    assert len(results) == 2  # round 2 cannot gain a whole 1.0 of accuracy


def test_narrowing_a_study_with_too_few_trials_keeps_every_range(tmp_path, capsys):
    spec = tiny_spec(tmp_path, n_trials=4)
    run(spec)
    following = next_round(spec.name, spec.storage)
    assert following.spec.search.params == spec.search.params
    assert not following.narrowing.changed
    assert main(["narrow", "--study", spec.name, "--storage", spec.storage]) == 0
    printed = capsys.readouterr().out
    assert printed.count("kept: too few trials") == 3  # lr, weight decay, init scale
    assert "every range kept" in printed


def test_narrowing_a_study_without_completed_trials_is_a_clear_error(tmp_path, capsys):
    from hpsearch.search.distributed import submit

    spec = tiny_spec(tmp_path, n_trials=2)
    submit(spec)  # the study exists, with its start points queued and nothing finished
    with pytest.raises(NarrowingError):
        next_round(spec.name, spec.storage)
    assert main(["narrow", "--study", spec.name, "--storage", spec.storage]) == 2
    err = capsys.readouterr().err
    assert "no completed trials" in err and len(err.strip().splitlines()) == 1


def test_narrow_command_writes_the_next_spec_and_trials_command_writes_csv(tmp_path, capsys):
    spec = tiny_spec(tmp_path, n_trials=12)
    run(spec)
    out = tmp_path / "next"
    assert (
        main(
            [
                "narrow",
                "--study",
                spec.name,
                "--storage",
                spec.storage,
                "--out",
                str(out),
                "--bootstrap",
                "20",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "95% CI low" in printed and "next round:" in printed
    written = spec_module.load(out / "tiny-r2.toml")
    assert written.round == 2 and written.parent == "tiny"
    csv = tmp_path / "trials.csv"
    assert main(["trials", "--study", spec.name, "--storage", spec.storage, "--csv", str(csv)]) == 0
    frame = pd.read_csv(csv)
    assert len(frame) == 12 and "log10_lr" in frame.columns
    # One name for the value in hpsearch's tables (`trials`, its CSV, trials_frame): the
    # objective's own name is Optuna's metric name, which optuna-dashboard shows and
    # Optuna's trials_dataframe() puts in its column name.
    study = optuna.load_study(study_name=spec.name, storage=spec.storage)
    assert study.metric_names == ["val_accuracy"]
    assert "value" in frame.columns and "val_accuracy" not in frame.columns
    ours = trials_frame(spec.storage, spec.name)
    assert ours.attrs["metric"] == "val_accuracy"
    optunas = study.trials_dataframe()
    assert list(frame["value"].fillna(-1)) == list(ours["value"].fillna(-1))
    assert list(ours["value"].fillna(-1)) == list(optunas["value_val_accuracy"].fillna(-1))


def test_a_written_round_holds_no_password(tmp_path):
    """A round's spec file is for people to read and share: its storage URL has no
    password, whatever characters the password holds."""
    import dataclasses

    from hpsearch.search.rounds import write_spec

    spec = tiny_spec(tmp_path, n_trials=4)
    run(spec)
    following = next_round(spec.name, spec.storage)
    secret = "p@ss:w/rd #%?"
    url = f"postgresql+psycopg://alice:{secret}@db.example.org:5432/hpsearch"
    path = write_spec(
        dataclasses.replace(following.spec, storage=url), following.narrowing, tmp_path
    )
    text = path.read_text(encoding="utf-8")
    assert "p@ss" not in text and "rd #" not in text and "PGPASSWORD" in text
    assert (
        spec_module.load(path).storage == "postgresql+psycopg://alice@db.example.org:5432/hpsearch"
    )
