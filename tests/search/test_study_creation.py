"""Study creation is all or nothing: a command stopped at any write of it (SIGKILL,
Ctrl-C) leaves nothing the next command cannot finish, two commands creating one study
or one database at once both succeed, and a study that hpsearch did not make is never
touched.

The stopped commands are real processes: forks of this one (its imports already done,
so one takes a fraction of a second) that run hpsearch's command line and stop
themselves with a real signal just before their k-th database write commits, for every
k in turn."""

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

import optuna
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from hpsearch.cli import main
from hpsearch.errors import StudyError
from hpsearch.search.study import open_study
from hpsearch.storage import open_storage
from hpsearch.storage.creation import creation_lock
from tests.support import TINY, hpsearch, wait_for

WRITES = ("insert", "update", "delete")


def _stop_before_write(k: int, signum: int) -> None:
    """Send this process `signum` as its k-th writing transaction is about to commit,
    so the writes before it are stored and the k-th and later ones are not."""
    seen = {"writes": 0}

    @event.listens_for(Engine, "before_cursor_execute")
    def note(connection, cursor, statement, *args) -> None:
        if statement.lstrip().lower().startswith(WRITES):
            connection.info["wrote"] = True

    @event.listens_for(Engine, "commit")
    def count(connection) -> None:
        if connection.info.pop("wrote", False):
            seen["writes"] += 1
            if seen["writes"] == k:
                os.kill(os.getpid(), signum)


def _forked(argv: list[str], log: Path, stop_at: int | None = None, signum=signal.SIGKILL) -> int:
    """Run `hpsearch ARGV` in a fork of this process, its output in `log`; its exit code
    (minus the signal's number when a signal ended it)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            out = log.open("a", buffering=1)
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            sys.stdout = sys.stderr = out  # pytest's capture replaced both
            if stop_at is not None:
                _stop_before_write(stop_at, signum)
            code = main(argv)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _snapshot(url: str, name: str) -> dict:
    """Everything a study holds but its name: attributes, directions and trials."""
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        spec = dict(study.user_attrs["spec"], name=None)
        return {
            "user": dict(study.user_attrs, spec=spec),
            "system": storage.get_study_system_attrs(storage.get_study_id_from_name(name)),
            "directions": study.directions,
            "trials": [
                (t.number, t.state, t.params, t.user_attrs, t.system_attrs, t.distributions)
                for t in study.get_trials(deepcopy=False)
            ],
        }
    finally:
        storage.engine.dispose()


def _spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    text_ = TINY.format(n_trials=4, sampler="tpe", pruner="none")
    path.write_text(text_.replace("[search]\n", "[search]\nreproducible = true\n"))
    return path


@pytest.mark.parametrize(
    ("database", "signum"),
    [("sqlite", signal.SIGKILL), ("sqlite", signal.SIGINT), ("postgresql", signal.SIGKILL)],
    ids=["sqlite-SIGKILL", "sqlite-SIGINT", "postgresql-SIGKILL"],
)
def test_a_creation_stopped_at_any_write_is_finished_by_the_next_command(
    tmp_path, request, database, signum
):
    """`submit` stopped just before each write of study creation in turn: the same
    command then succeeds, and the study equals one made undisturbed (attributes,
    directions and the queued start points, to the last field). Ctrl-C deletes what
    it wrote on its way out; SIGKILL leaves it for the next command to roll back."""
    database_url = (
        request.getfixturevalue("postgres_url")
        if database == "postgresql"
        else f"sqlite:///{tmp_path / 'db.sqlite'}"
    )
    spec = _spec_file(tmp_path)
    log = tmp_path / "log"

    def submit(name: str, **stop) -> int:
        return _forked(
            ["submit", str(spec), "--storage", database_url, "--study", name], log, **stop
        )

    # Undisturbed, and in this process: its imports and data make each fork quick.
    assert main(["submit", str(spec), "--storage", database_url, "--study", "undisturbed"]) == 0
    expected = _snapshot(database_url, "undisturbed")
    stopped = -signum if signum == signal.SIGKILL else 130
    k = 0
    while True:
        k += 1
        name = f"stopped-{k}"
        log.write_text("")
        code = submit(name, stop_at=k, signum=signum)
        if code == 0:  # k is past the command's last write
            break
        assert code == stopped, log.read_text()
        assert "Traceback" not in log.read_text()
        if signum == signal.SIGINT:  # all or nothing, at once
            assert name not in optuna.get_all_study_names(database_url), f"write {k}"
        assert submit(name) == 0, log.read_text()
        assert "Traceback" not in log.read_text()
        assert _snapshot(database_url, name) == expected, f"stopped before write {k}"
    # The study, its version, metric names, 5 more attributes, 3 start points, its spec.
    assert k > 11, f"submit made only {k - 1} writes"


def test_a_stopped_search_rerun_compares_equal_to_an_undisturbed_one(tmp_path):
    """The whole reproducible search, stopped by Ctrl-C while creating its study and
    run again, finds the trials an undisturbed search finds."""
    spec = _spec_file(tmp_path)
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    log = tmp_path / "log"

    def run(name: str, **stop) -> int:
        return _forked(["run", str(spec), "--storage", db, "--study", name], log, **stop)

    assert run("undisturbed") == 0
    assert run("stopped", stop_at=4, signum=signal.SIGINT) == 130
    assert run("stopped") == 0, log.read_text()
    compared = hpsearch("trials", "--storage", db, "--study", "stopped", "--compare", "undisturbed")
    out, err = compared.communicate(timeout=60)
    assert compared.returncode == 0, err
    assert "agree: 4 trials" in out


@pytest.mark.parametrize("mark", ["user attr", "metric names"])
def test_a_study_hpsearch_did_not_make_is_refused_and_left_as_it_was(tmp_path, mark):
    """Anything in it (an attribute of either kind, a trial) says it is someone's."""
    spec = _spec_file(tmp_path)
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    theirs = optuna.create_study(study_name="theirs", storage=db)
    if mark == "user attr":
        theirs.set_user_attr("owner", "someone")
    else:
        theirs.set_metric_names(["my_loss"])
    before = (theirs.user_attrs, theirs.metric_names)
    log = tmp_path / "log"
    assert _forked(["submit", str(spec), "--storage", db, "--study", "theirs"], log) == 2
    assert log.read_text().strip().splitlines()[-1] == (
        "hpsearch: error: study 'theirs' exists but was not created by hpsearch; "
        "choose another name with --study"
    )
    after = optuna.load_study(study_name="theirs", storage=db)
    assert (after.user_attrs, after.metric_names) == before


def test_a_command_waits_for_a_creator_at_work_and_joins_its_study(tmp_path):
    """A study without its spec whose creator still holds the creation lock is being
    made, not left half-made: the second command waits and continues it, deleting
    nothing."""
    spec_path = _spec_file(tmp_path)
    from hpsearch.spec import load, with_overrides

    spec = with_overrides(load(spec_path), storage=f"sqlite:///{tmp_path / 'studies.db'}")
    storage = open_storage(spec.storage)
    holding = threading.Event()
    joined: list[optuna.Study] = []

    def creator() -> None:
        with creation_lock(spec.storage, storage, spec.name):
            half = optuna.create_study(study_name=spec.name, storage=storage)
            holding.set()
            wait_for(lambda: joiner.is_alive(), 10, "the second command")
            half.set_user_attr("version", "creator")
            from hpsearch.search.study import stored_form

            half.set_user_attr("spec", stored_form(spec))

    first = threading.Thread(target=creator)
    joiner = threading.Thread(target=lambda: joined.append(open_study(spec, storage)))
    first.start()
    holding.wait(10)
    joiner.start()
    first.join(20)
    joiner.join(20)
    assert joined and joined[0].user_attrs["version"] == "creator"


def test_without_a_creation_lock_a_study_that_stays_half_made_is_refused(tmp_path, monkeypatch):
    """Where a storage has no creation lock, a creator at work cannot be told from a
    stopped one: nothing is deleted, and the message says what to do."""
    import hpsearch.search.study as study_module
    from hpsearch.spec import load, with_overrides

    monkeypatch.setattr(study_module, "CREATION_SECONDS", 0.2)
    monkeypatch.setattr(study_module, "creation_lock", lambda *args: contextlib.nullcontext(False))
    spec = with_overrides(load(_spec_file(tmp_path)), storage=f"sqlite:///{tmp_path / 's.db'}")
    storage = open_storage(spec.storage)
    optuna.create_study(study_name=spec.name, storage=storage)
    with pytest.raises(StudyError, match="or its creation stopped half-way"):
        open_study(spec, storage)
    assert optuna.get_all_study_names(storage) == [spec.name]


def test_commands_opening_a_brand_new_database_at_once_all_succeed(tmp_path, database_url):
    """Three commands at once on a database without tables: each makes the tables or
    finds them made (Optuna alone fails one on a UNIQUE or duplicate-key error)."""
    for attempt in range(3):
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / f'new-{attempt}.db'}"
        else:
            url = database_url
            _empty(url)
        barrier = threading.Barrier(3)
        errors: list[Exception] = []
        threads = [
            threading.Thread(target=_open_at_once, args=(url, barrier, errors)) for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors


def _open_at_once(url: str, barrier: threading.Barrier, errors: list[Exception]) -> None:
    barrier.wait()
    try:
        open_storage(url).engine.dispose()
    except Exception as exc:
        errors.append(exc)


def _empty(url: str) -> None:
    """Make the PostgreSQL database of `url` brand new: no tables, no types."""
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def test_a_worker_on_a_half_made_study_says_which_command_finishes_it(tmp_path):
    spec = _spec_file(tmp_path)
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    log = tmp_path / "log"
    open_storage(db).engine.dispose()  # its tables: the writes counted are the study's
    submit = ["submit", str(spec), "--storage", db]
    assert _forked(submit, log, stop_at=3) == -signal.SIGKILL  # after hpsearch's version
    log.write_text("")
    assert _forked(["worker", "--storage", db, "--study", "tiny"], log) == 2
    assert log.read_text().splitlines() == [
        "hpsearch: error: study 'tiny' is being created, or its creation was stopped "
        "half-way; the command that creates it (run or submit with its spec) finishes it"
    ]
    assert _forked(submit, log) == 0
    assert len(optuna.load_study(study_name="tiny", storage=db).get_trials()) == 3


@pytest.mark.postgres
def test_two_submits_on_a_brand_new_database_at_once_share_one_study(tmp_path, postgres_url):
    """Two people submit the same study to a server database that has no tables yet,
    at the same moment: both succeed, and the study is made once. (On SQLite the
    threads above race the tables, and the creation lock is the same flock.)"""
    spec = _spec_file(tmp_path)
    submits = [hpsearch("submit", str(spec), "--storage", postgres_url) for _ in range(2)]
    for process in submits:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "Traceback" not in err
    study = optuna.load_study(study_name="tiny", storage=postgres_url)
    assert len(study.get_trials()) == 3  # the start points, queued once


def test_a_folder_that_cannot_be_locked_gives_a_lock_that_is_not_exclusive(
    tmp_path, monkeypatch, caplog
):
    """Some network file systems have no flock: creation then goes on, and nothing
    half-made is rolled back (see the test without a creation lock)."""
    import errno

    import hpsearch.storage.creation as creation

    def no_locks(descriptor, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(creation.fcntl, "flock", no_locks)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with creation_lock(url, open_storage(url), "tiny") as exclusive:
        assert exclusive is False
    assert f"cannot lock {tmp_path} (No locks available)" in caplog.text
