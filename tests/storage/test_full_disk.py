"""SQLite on a file system that fills up under two workers: one line that names the
disk and its free space, exit 2, no traceback; after space is freed, the same command
completes the budget and the database is intact. And a study on a file system that has
become read-only: one line that says so, the database untouched."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from hpsearch.cli import main
from tests.support import ROOT, TINY, dump

N_TRIALS = 20


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KB tmpfs (root only: mounting needs it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_line_and_the_same_command_continues(tmp_path, small_disk):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY.format(n_trials=N_TRIALS, sampler="random", pruner="none"))
    db = small_disk / "studies.db"
    command = [
        sys.executable,
        "scripts/run_study.py",
        str(spec),
        "--storage",
        f"sqlite:///{db}",
        "--workers",
        "2",
        "--heartbeat",
        "1",
        "--no-progress",
    ]
    full = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert full.returncode == 2, full.stderr
    lines = full.stderr.strip().splitlines()
    assert len(lines) <= 3 and "Traceback" not in full.stderr, full.stderr
    assert lines[-1].startswith("hpsearch: error: worker(s) "), full.stderr
    assert f"disk full: {db} (" in lines[-1] and "bytes free)" in lines[-1], full.stderr
    assert "free space and run the same command to continue" in lines[-1]

    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        states = dict(connection.execute("SELECT state, COUNT(*) FROM trials GROUP BY state"))
    connection.close()
    assert states.get("COMPLETE") == N_TRIALS and "RUNNING" not in states, states


def test_a_read_only_file_system_is_one_line_and_the_database_is_untouched(
    tmp_path, small_disk, capsys
):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY.format(n_trials=3, sampler="random", pruner="none"))
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    db = small_disk / "studies.db"
    command = ["run", str(spec), "--storage", f"sqlite:///{db}", "--no-progress"]
    # In a process of its own: a read-only remount needs every writer of the disk gone.
    first = subprocess.run(
        [sys.executable, "-m", "hpsearch.cli", *command], cwd=ROOT, capture_output=True
    )
    assert first.returncode == 0, first.stderr
    before = dump(db)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    capsys.readouterr()

    assert main([*command, "--trials", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"hpsearch: error: read-only file system: {db} ("), err
    assert "make it writable and run the same command to continue" in err
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert dump(db) == before
    assert main([*command, "--trials", "5"]) == 0
    with sqlite3.connect(db) as connection:
        states = dict(connection.execute("SELECT state, COUNT(*) FROM trials GROUP BY state"))
    connection.close()
    assert states == {"COMPLETE": 5}, states


@pytest.mark.parametrize("left", [0.0, 0.5])
def test_a_database_file_damaged_mid_run_is_one_line_and_exit_2(tmp_path, left):
    """The SQLite file emptied, or cut in half, while two workers write to it: not an
    outage to wait out, but one line and exit 2, from every part of the run."""
    from optuna.trial import TrialState

    from tests.support import SPEC, hpsearch, trials, wait_for

    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC.replace("n_trials = 8", "n_trials = 40"))
    db = tmp_path / "studies.db"
    storage = f"sqlite:///{db}"
    run = hpsearch("run", str(spec), "--storage", storage, "--workers", "2", "--no-progress")
    try:
        wait_for(
            lambda: sum(t.state == TrialState.COMPLETE for t in trials(storage)) >= 2,
            120,
            "two complete trials",
        )
        os.truncate(db, int(db.stat().st_size * left))
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 2, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("hpsearch: error:")]
    assert len(errors) == 1 and "damaged, emptied or replaced while in use" in errors[0], err
