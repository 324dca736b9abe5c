"""A database outage under running workers: a real PostgreSQL server of the test's own,
stopped while two `hpsearch worker` processes train and started again once both have
retried past the heartbeat grace. The workers ride it out: exit 0, no traceback, the
budget exact, nothing left RUNNING, every finished trial stored with its curve."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from tests.support import EPOCHS, HEARTBEAT, ROOT, SPEC, trials, wait_for
from tests.support import N_TRIALS as KILL_TRIALS

N_TRIALS = 10


def _as_owner() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _pg_ctl(folder: Path, *args: str, check: bool = True) -> None:
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    subprocess.run(
        [*_as_owner(), str(bins[-1] / "pg_ctl"), "-D", str(folder / "data"), *args],
        check=check,
        capture_output=True,
        timeout=60,
    )


def _submitted(tmp_path: Path, url: str, n_trials: int) -> list[str]:
    """Submit the tiny study of `n_trials` to `url`; the hpsearch command to go on with."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC.replace(f"n_trials = {KILL_TRIALS}", f"n_trials = {n_trials}"))
    command = [sys.executable, "-m", "hpsearch.cli"]
    submit = [*command, "submit", str(spec), "--storage", url]
    subprocess.run(submit, check=True, cwd=ROOT, capture_output=True, timeout=120)
    return command


def _start_again(folder: Path, url: str) -> None:
    """Start the stopped server on its old port (.ci/postgres's settings)."""
    options = f"-h 127.0.0.1 -p {make_url(url).port} -k {folder} -c fsync=off"
    _pg_ctl(folder, "-l", str(folder / "log"), "-w", "-o", options, "start")


def longest_pause(log: Path) -> float:
    pauses = re.findall(r"retrying in ([0-9.]+) s", log.read_text())
    return max(map(float, pauses), default=0.0)


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own (it is stopped and started mid-test), in a
    folder of /tmp the server's own user can enter (pytest's is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-outage-"))
    started = subprocess.run(
        [str(ROOT / ".ci" / "postgres"), str(folder)], capture_output=True, text=True
    )
    if started.returncode != 0:
        if os.environ.get("HPSEARCH_REQUIRE_POSTGRES"):
            pytest.fail(f"cannot start PostgreSQL: {started.stderr.strip()}")
        pytest.skip(f"cannot start PostgreSQL here: {started.stderr.strip()[-200:]}")
    url = started.stdout.strip()
    yield folder, url
    _pg_ctl(folder, "-m", "immediate", "stop", check=False)  # may be down already
    shutil.rmtree(folder, ignore_errors=True)


def test_workers_ride_out_a_postgres_outage(tmp_path, own_postgres):
    folder, url = own_postgres
    command = _submitted(tmp_path, url, N_TRIALS)
    logs = [tmp_path / f"worker{i}.err" for i in range(2)]
    workers = [
        subprocess.Popen(
            [
                *command,
                "worker",
                "--storage",
                url,
                "--study",
                "tiny",
                "--heartbeat",
                str(HEARTBEAT),
                "--retry-for",
                "120",
                "--no-progress",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        for log in logs
    ]
    try:
        wait_for(
            lambda: sum(t.state == TrialState.COMPLETE for t in trials(url)) >= 3,
            timeout=120,
            what="3 complete trials",
        )
        before = {t.number for t in trials(url) if t.state == TrialState.COMPLETE}
        _pg_ctl(folder, "-m", "fast", "stop")
        # Down until both workers have been retrying for longer than the heartbeat grace
        # (pauses of 0.5, 1, 2, then 4 s or more): their trials' heartbeats are stale.
        wait_for(
            lambda: all(longest_pause(log) >= 4.0 for log in logs),
            timeout=120,
            what="both workers retrying past the heartbeat grace",
        )
        _start_again(folder, url)
        codes = [worker.wait(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    errors = [log.read_text() for log in logs]
    assert codes == [0, 0], errors
    assert not any("Traceback" in err for err in errors), errors
    assert all("database reachable again" in err for err in errors), errors
    final = trials(url)
    states = [t.state for t in final]
    assert states.count(TrialState.COMPLETE) == N_TRIALS, states
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    # No live worker's trial was taken for dead when the heartbeats resumed: a FAIL can
    # only be a surplus trial refused by the budget check.
    for trial in final:
        if trial.state == TrialState.FAIL:
            assert "taken by other workers" in trial.user_attrs.get("stop_reason", ""), trial
    assert len({t.number for t in final}) == len(final)
    for trial in final:
        if trial.number in before or trial.state == TrialState.COMPLETE:
            assert len(trial.intermediate_values) == EPOCHS and "val_accuracy" in trial.user_attrs


def test_past_the_retry_limit_one_line_then_the_next_worker_completes_the_budget(
    tmp_path, own_postgres
):
    folder, url = own_postgres
    command = _submitted(tmp_path, url, 8)
    worker_args = ["worker", "--storage", url, "--study", "tiny", "--heartbeat", str(HEARTBEAT)]
    given_up = subprocess.Popen(
        [*command, *worker_args, "--workers", "2", "--retry-for", "3s", "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: sum(t.state == TrialState.COMPLETE for t in trials(url)) >= 2,
            timeout=120,
            what="2 complete trials",
        )
        _pg_ctl(folder, "-m", "fast", "stop")
        _, err = given_up.communicate(timeout=120)
    finally:
        if given_up.poll() is None:
            given_up.kill()
    assert given_up.returncode == 2, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if not line.startswith("WARNING")]
    assert len(errors) == 1 and errors[0].startswith("hpsearch: error: worker(s) "), err
    assert "for longer than the retry limit of 3 s" in errors[0], err
    assert "run the same command again to continue" in errors[0], err

    _start_again(folder, url)
    after = subprocess.run(
        [*command, *worker_args, "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert after.returncode == 0, after.stderr
    states = [t.state for t in trials(url)]
    assert states.count(TrialState.COMPLETE) == 8, states
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
