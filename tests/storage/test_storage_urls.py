"""The three storage URL kinds, through `hpsearch submit` and `hpsearch worker`; and
passwords that never reach the screen or the database."""

import sqlite3
import threading
from urllib.parse import quote

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from hpsearch.cli import main
from hpsearch.storage import display_url, open_storage
from hpsearch.storage.sqlite_files import prepare_sqlite
from tests.support import TINY

QUICK_SPEC = TINY.format(n_trials=3, sampler="random", pruner="none")


def test_display_url_masks_passwords():
    url = "postgresql+psycopg://alice:s3cr%40t@db.example.org:5432/hpsearch"
    assert display_url(url) == "postgresql+psycopg://alice:***@db.example.org:5432/hpsearch"
    assert display_url("sqlite:///studies/x.db") == "sqlite:///studies/x.db"
    assert "s3cr" not in display_url("not a url with alice:s3cr@t inside")


def submit_and_work(tmp_path, storage: str, capsys) -> str:
    spec = tmp_path / "tiny.toml"
    spec.write_text(QUICK_SPEC)
    capsys.readouterr()
    assert main(["submit", str(spec), "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert "0 of 3 trials finished" in out
    assert main(["worker", "--storage", storage, "--no-progress"]) == 0
    out += capsys.readouterr().out
    assert "tiny: 3 finished trials" in out
    study = optuna.load_study(study_name="tiny", storage=open_storage(storage))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    # A second worker finds nothing left to do.
    assert main(["worker", "--storage", storage, "--study", "tiny", "--no-progress"]) == 0
    assert "nothing to do: study 'tiny' has used its trial budget" in capsys.readouterr().out
    return out


@pytest.mark.postgres
def test_postgres_submit_and_worker_never_show_or_store_the_password(
    tmp_path,
    capsys,
    postgres_url,
):
    password = make_url(postgres_url).password
    assert password
    out = submit_and_work(tmp_path, postgres_url, capsys)
    assert password not in out and ":***@" in out
    study = optuna.load_study(study_name="tiny", storage=postgres_url)
    assert password not in repr(study.user_attrs)
    assert study.user_attrs["spec"]["storage"] == display_url(postgres_url)
    # plain postgresql:// means the same server through psycopg 3
    plain = make_url(postgres_url).set(drivername="postgresql")
    assert main(["trials", "--study", "tiny", "--storage", plain.render_as_string(False)]) == 0


@pytest.mark.postgres
def test_a_wrong_postgres_password_is_one_masked_line(capsys, postgres_url):
    wrong = make_url(postgres_url).set(password="not-the-password")
    assert main(["trials", "--study", "x", "--storage", wrong.render_as_string(False)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not-the-password" not in err
    assert "password authentication failed" in err


def test_journal_storage_submit_and_worker(tmp_path, capsys):
    submit_and_work(tmp_path, f"journal:{tmp_path / 'journal.log'}", capsys)


def test_a_file_that_is_not_a_journal_is_refused_and_kept(tmp_path, capsys):
    target = tmp_path / "notes.log"
    target.write_text("my notes\n")
    spec = tmp_path / "tiny.toml"
    spec.write_text(QUICK_SPEC)
    assert main(["submit", str(spec), "--storage", f"journal:{target}"]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"hpsearch: error: {target} is not an Optuna journal; name a new file or a journal\n"
    )
    assert target.read_text() == "my notes\n"


def test_worker_on_a_study_that_is_not_there(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = tmp_path / "tiny.toml"
    spec.write_text(QUICK_SPEC)
    assert main(["submit", str(spec), "--storage", storage]) == 0
    assert main(["worker", "--storage", storage, "--study", "other"]) == 2
    err = capsys.readouterr().err
    assert "no study named 'other'" in err and "'tiny'" in err


@pytest.mark.parametrize("idle_seconds", [0.0, 3600.0])
def test_a_server_connection_dropped_while_idle_is_replaced_before_use(
    postgres_url, caplog, monkeypatch, idle_seconds
):
    """Pooled server connections are pinged before use once idle for IDLE_SECONDS
    (hpsearch.storage.pool): one the server dropped meanwhile is replaced, with no error
    and no retry line. Not yet idle long enough, it is used, fails, and the retry layer
    runs the call again: one retry line."""
    from sqlalchemy import text

    from hpsearch.storage import open_storage, pool

    monkeypatch.setattr(pool, "IDLE_SECONDS", idle_seconds)
    storage = open_storage(postgres_url)
    study = optuna.create_study(storage=storage)
    assert storage.engine.pool.checkedin() >= 1  # idle in the pool
    admin = optuna.storages.RDBStorage(postgres_url).engine
    with admin.connect() as connection:  # the test's own database: every other connection
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    admin.dispose()
    caplog.set_level("WARNING")
    assert study.trials == []  # read on a connection that answers
    retried = "retrying" in caplog.text
    assert retried == (idle_seconds > 0), caplog.text


@pytest.mark.parametrize("secret", ["S3cr@tPass", "p@ss:w/rd#1%?", "with space@x", "a:b@c/d"])
def test_any_password_is_masked_whole_and_left_out_of_written_urls(secret):
    from hpsearch.storage import url_without_password

    url = f"postgresql+psycopg://alice:{secret}@127.0.0.1:5432/hpsearch"
    assert display_url(url) == "postgresql+psycopg://alice:***@127.0.0.1:5432/hpsearch"
    assert url_without_password(url) == "postgresql+psycopg://alice@127.0.0.1:5432/hpsearch"
    encoded = f"postgresql+psycopg://alice:{quote(secret, safe='')}@127.0.0.1:5432/hpsearch"
    assert display_url(encoded) == display_url(url)
    for fragment in (secret, quote(secret, safe=""), secret.split("@")[-1]):
        assert fragment not in url_without_password(encoded) + display_url(url)


def test_ctrl_c_while_interrupts_are_held_is_raised_when_the_work_is_done():
    """Work that Python would let an interrupt vanish from (a weakref callback, a
    finalizer) runs whole, and the interrupt still stops the command after it."""
    import os
    import signal

    from hpsearch.stop import interrupt_held

    done = []
    with pytest.raises(KeyboardInterrupt), interrupt_held():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("the rest of the work")
    assert done == ["the rest of the work"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_connections_preparing_one_new_sqlite_file_at_once_all_succeed(tmp_path):
    """Switching a new file to WAL from several connections at once makes SQLite refuse
    one of them without waiting (about one race in twelve); each must still succeed."""
    for attempt in range(60):
        path = tmp_path / f"new-{attempt}.db"
        barrier = threading.Barrier(3)
        errors: list[Exception] = []

        def prepare(path=path, barrier=barrier, errors=errors) -> None:
            barrier.wait()
            try:
                prepare_sqlite(path)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=prepare) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
