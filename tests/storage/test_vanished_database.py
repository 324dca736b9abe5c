"""A database file deleted, its folder deleted, or the file replaced by another while
`hpsearch run` writes to it: SQLite writes on into the unlinked file without an error,
so the run itself must notice. It stops soon after (not at the end of its budget), says
what happened in one line and exits 1, instead of reporting trials that are lost."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.support import SPEC, hpsearch, trials, wait_for

# Far more trials than the run could get through in the test's time: it must stop
# because the file went away, and the test never waits for a whole study.
N_TRIALS = 1000
STOPS_WITHIN = 15  # seconds after the change; the run notices within about one
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _delete_file(db: Path) -> None:
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.unlink(missing_ok=True)


def _delete_folder(db: Path) -> None:
    shutil.rmtree(db.parent)


def _replace_file(db: Path) -> None:
    """Move the database (and its WAL files) away and put another database in its place,
    as a user restoring or swapping files by hand would."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{db}{suffix}", db.parent.parent / f"moved.db{suffix}")
    other = db.parent / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.commit()
    os.replace(other, db)


@dataclass
class Ended:
    code: int
    out: str
    err: str
    seconds: float  # from the change to the end of the run


def _run_until_three_then(
    tmp_path: Path, change: Callable[[Path], None], workers: int, journal: bool = False
) -> Ended:
    """`hpsearch run` on a new database (studies/x.db, or the journal studies/x.log),
    and `change(path)` once 3 of its trials are finished."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        SPEC.replace("n_trials = 8", f"n_trials = {N_TRIALS}").replace("epochs = 10", "epochs = 4")
    )
    path = tmp_path / "studies" / ("x.log" if journal else "x.db")
    path.parent.mkdir()
    storage = f"journal:{path}" if journal else f"sqlite:///{path}"
    run = hpsearch(
        "run", str(spec), "--storage", storage, "--workers", str(workers), "--no-progress"
    )
    try:
        wait_for(lambda: _finished(storage, path) >= 3, 60, "three finished trials")
        change(path)
        changed = time.monotonic()
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    return Ended(run.returncode, out, err, time.monotonic() - changed)


def _finished(storage: str, path: Path) -> int:
    if not storage.startswith("journal:"):
        return sum(t.state in FINISHED for t in trials(storage))
    # A journal read as text (op 6 sets a trial's state): a JournalStorage would make the
    # file if it was not there yet.
    if not path.exists():
        return 0
    done = 0
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            op = json.loads(line)
            done += op.get("op_code") == 6 and op.get("state") in [s.value for s in FINISHED]
    return done


def _assert_stopped_in_one_line(ended: Ended, *words: str) -> str:
    """Exit 1 soon after the change, one line on stderr that says `words`, and no
    summary of trials that are not there."""
    assert ended.code == 1, ended.err
    assert "Traceback" not in ended.err, ended.err
    lines = ended.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpsearch: error: the database "), ended.err
    assert all(word in lines[0] for word in words), ended.err
    assert "finished trials" not in ended.out, ended.out
    assert ended.seconds < STOPS_WITHIN, f"the run went on for {ended.seconds:.0f} s"
    return lines[0]


def test_a_deleted_database_file_stops_the_run_with_exit_1(tmp_path):
    """With worker processes (one process is the folder's test below)."""
    ended = _run_until_three_then(tmp_path, _delete_file, workers=2)
    # A worker's next connection may have made an empty file at the path meanwhile
    # (SQLite creates one): the message then says so; either way, deleted.
    line = _assert_stopped_in_one_line(ended, "was deleted during the run (")
    assert str(tmp_path / "studies" / "x.db") in line, line


def test_a_deleted_database_folder_stops_the_run_with_exit_1(tmp_path):
    ended = _run_until_three_then(tmp_path, _delete_folder, workers=1)
    _assert_stopped_in_one_line(ended, "was deleted during the run (its folder is gone)")


def test_a_replaced_database_file_stops_the_run_with_exit_1(tmp_path):
    ended = _run_until_three_then(tmp_path, _replace_file, workers=2)
    _assert_stopped_in_one_line(ended, "was replaced by another file during the run")
    with contextlib.closing(sqlite3.connect(tmp_path / "studies" / "x.db")) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert tables == {"notes"}, "the run wrote into the file put in the database's place"


def test_a_deleted_journal_file_stops_the_run_with_exit_1(tmp_path):
    """Optuna writes the journal again at the path; the running trial, reading it back,
    may make Optuna warn first, but the error is the last line and the only one."""
    ended = _run_until_three_then(tmp_path, _delete_file, workers=1, journal=True)
    assert ended.code == 1 and "Traceback" not in ended.err, ended.err
    errors = [line for line in ended.err.splitlines() if line.startswith("hpsearch: error:")]
    assert len(errors) == 1 and ended.err.strip().endswith(errors[0]), ended.err
    # Gone, or already written again by Optuna at the path: either is a deletion.
    assert "x.log was deleted" in errors[0], ended.err
    assert "finished trials" not in ended.out, ended.out
    assert ended.seconds < STOPS_WITHIN, f"the run went on for {ended.seconds:.0f} s"


def _study_with(db: Path, complete: int) -> str:
    import optuna

    url = f"sqlite:///{db}"
    study = optuna.create_study(study_name="tiny", storage=url)
    for _ in range(complete):
        study.add_trial(optuna.trial.create_trial(value=0.5))
    return url


def test_the_check_passes_on_the_file_opened_with_its_trials(tmp_path):
    from hpsearch.storage import DatabaseFile

    watch = DatabaseFile.opened(_study_with(tmp_path / "x.db", 2), "tiny")
    watch.check(2)
    assert watch.in_place(2)
    assert DatabaseFile.opened("sqlite://", "tiny") is None  # memory: nothing to delete
    assert DatabaseFile.opened("postgresql+psycopg://u@host/db", "tiny") is None


@pytest.mark.parametrize(
    ("study", "finished", "said"),
    [
        ("other", 0, "no longer holds study 'other': it was changed during the run"),
        ("tiny", 3, "holds 2 of study 'tiny''s 3 finished trials"),
    ],
)
def test_a_file_without_the_runs_trials_fails_the_check(tmp_path, study, finished, said):
    from hpsearch.storage import DatabaseFile, DatabaseVanished

    watch = DatabaseFile.opened(_study_with(tmp_path / "x.db", 2), study)
    with pytest.raises(DatabaseVanished, match=said) as raised:
        watch.check(finished)
    assert raised.value.exit_code == 1


def test_the_trials_lost_are_those_finished_since_the_file_was_last_seen(tmp_path):
    from hpsearch.storage import DatabaseFile, DatabaseVanished

    db = tmp_path / "x.db"
    watch = DatabaseFile.opened(_study_with(db, 2), "tiny")
    assert watch.in_place(3)
    db.unlink()
    assert not watch.in_place(20)
    with pytest.raises(DatabaseVanished) as raised:
        watch.check(20)
    assert str(raised.value) == (
        f"the database {db} was deleted during the run (its file is gone); the 17 trials "
        "that finished since it was last seen are lost with it; restore it from a copy, "
        "or use another --storage"
    )


@pytest.mark.parametrize("left", [0.0, 0.5])
def test_a_file_damaged_in_place_is_damaged_not_vanished(tmp_path, left):
    """Emptied or cut short where it is (the same file): what every other part of a
    run says of a damaged file, exit 2, not that it went away."""
    from hpsearch.storage import DatabaseFile
    from hpsearch.storage.retry import DatabaseDamaged

    db = tmp_path / "x.db"
    watch = DatabaseFile.opened(_study_with(db, 2), "tiny")
    size = db.stat().st_size
    with db.open("r+b") as file:  # in place: the same inode
        file.truncate(int(size * left))
    with pytest.raises(DatabaseDamaged, match="damaged, emptied or replaced while in use"):
        watch.check(2)
