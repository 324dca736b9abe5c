"""Workers that die: `hpsearch worker` processes on one study, one SIGKILLed mid-trial,
on a real PostgreSQL server and on one SQLite file; and a SIGKILLed `run_study.py`
followed by the same command again. Nothing is lost, nothing is counted twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.cli import main
from tests.support import HEARTBEAT, N_TRIALS, ROOT, SPEC, hpsearch, trials, wait_for


def running_trial_pid(storage: str) -> tuple[int, int] | None:
    """(trial number, pid) of a trial that is RUNNING and has reported an epoch: mid-trial."""
    for trial in trials(storage):
        if (
            trial.state == TrialState.RUNNING
            and trial.intermediate_values
            and "worker" in trial.user_attrs
        ):
            return trial.number, int(trial.user_attrs["worker"].rsplit(":", 1)[1])
    return None


def frozen_mid_trial(workers: list[subprocess.Popen], storage: str) -> tuple[int, int]:
    """Freeze every worker (SIGSTOP) while one of them is mid-trial; (that trial's number,
    its worker's pid). The database stands still while it is read again, so the choice
    cannot go stale; the caller resumes the workers (SIGCONT) within the heartbeat grace."""
    while True:
        wait_for(lambda: mid_trial_or_none_left(storage), 60, "a trial that has reported an epoch")
        for worker in workers:
            os.kill(worker.pid, signal.SIGSTOP)
        wait_for(lambda: all(stopped(w.pid) for w in workers), 10, "the workers to stop")
        found = running_trial_pid(storage)
        if found:  # still running: the trial had epochs to go
            return found
        for worker in workers:
            os.kill(worker.pid, signal.SIGCONT)


def mid_trial_or_none_left(storage: str) -> tuple[int, int] | None:
    """`running_trial_pid`, failing at once if the study ended before one was seen."""
    found = running_trial_pid(storage)
    if found is None and all(t.state.is_finished() for t in trials(storage)):
        raise AssertionError("the study ended before a worker could be frozen mid-trial")
    return found


def stopped(pid: int) -> bool:
    """Whether SIGSTOP has taken effect (the kill returns before it does)."""
    return _proc_state(pid) in ("T", "t")


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, grandchildren, ...), read from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _proc_state(pid: int) -> str | None:
    """The process's state letter from /proc (R, S, T, Z, ...), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether the process still runs (a zombie waiting to be reaped does not)."""
    return _proc_state(pid) not in (None, "Z")


# Four waves of trials for four workers: after the first trial completes, three waves are
# left to freeze one mid-trial in, even when polling a loaded machine is slow.
KILL_TEST_TRIALS = 4 * 4


def four_workers_one_killed(tmp_path: Path, storage: str, capsys) -> None:
    """Submit a study, start 4 workers, SIGKILL one mid-trial once a trial is complete,
    and check the study ends whole."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC.replace(f"n_trials = {N_TRIALS}", f"n_trials = {KILL_TEST_TRIALS}"))
    assert main(["submit", str(spec), "--storage", storage]) == 0  # in this process: quick
    assert "start workers with: hpsearch worker" in capsys.readouterr().out
    workers = [
        hpsearch(
            "worker",
            "--storage",
            storage,
            "--study",
            "tiny",
            "--heartbeat",
            str(HEARTBEAT),
            "--no-progress",
        )
        for _ in range(4)
    ]
    try:
        wait_for(
            lambda: any(t.state == TrialState.COMPLETE for t in trials(storage)),
            timeout=180,
            what="a complete trial",
        )
        killed_trial, pid = frozen_mid_trial(workers, storage)
        victim = next(w for w in workers if w.pid == pid)
        victim.kill()
        victim.wait(timeout=10)
        survivors = [w for w in workers if w is not victim]
        for worker in survivors:
            os.kill(worker.pid, signal.SIGCONT)
        outputs = [w.communicate(timeout=600) for w in survivors]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (_, err) in zip(survivors, outputs, strict=True):
        assert worker.returncode == 0, err
        assert "database is locked" not in err and "Traceback" not in err, err
    assert victim.returncode == -signal.SIGKILL

    final = trials(storage)
    states = [t.state for t in final]
    assert states.count(TrialState.COMPLETE) == KILL_TEST_TRIALS
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    numbers = [t.number for t in final]
    assert len(numbers) == len(set(numbers)) == len(final)
    # The killed trial was failed by the heartbeat and re-queued once; the retry, with
    # the same parameters, completed on another worker and counts towards the budget.
    dead = final[killed_trial]
    assert dead.state == TrialState.FAIL
    retries = [t for t in final if t.system_attrs.get("failed_trial") == killed_trial]
    assert len(retries) == 1
    assert retries[0].state == TrialState.COMPLETE
    assert retries[0].params == dead.params
    assert retries[0].user_attrs["seed_trial"] == killed_trial
    assert retries[0].user_attrs["worker"] != dead.user_attrs["worker"]
    # Every FAIL is the killed trial or a surplus trial refused by the budget check.
    for trial in final:
        if trial.state == TrialState.FAIL and trial.number != killed_trial:
            assert "taken by other workers" in trial.user_attrs["stop_reason"]


@pytest.mark.postgres
def test_four_postgres_workers_one_killed_mid_trial_complete_the_study(
    tmp_path, postgres_url, capsys
):
    four_workers_one_killed(tmp_path, postgres_url, capsys)


def test_four_sqlite_workers_one_killed_mid_trial_complete_the_study(tmp_path, capsys):
    db = tmp_path / "studies.db"
    four_workers_one_killed(tmp_path, f"sqlite:///{db}", capsys)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_run_study_killed_mid_trial_then_rerun_completes_and_keeps_trials(tmp_path, workers):
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC.replace(f"n_trials = {N_TRIALS}", "n_trials = 12"))
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    command = [
        sys.executable,
        "scripts/run_study.py",
        str(spec),
        "--storage",
        storage,
        "--workers",
        str(workers),
        "--heartbeat",
        str(HEARTBEAT),
        "--no-progress",
    ]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(
            lambda: sum(t.state == TrialState.COMPLETE for t in trials(storage)) >= 3,
            timeout=120,
            what="3 complete trials",
        )
        wait_for(lambda: running_trial_pid(storage), 60, "a running trial")
        workers_of_first = descendants(first.pid)
        assert len(workers_of_first) >= (workers if workers > 1 else 0)
        first.kill()  # SIGKILL: no handler runs in this process
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    # Worker processes die with their parent (SIGTERM: trial FAIL); an in-process trial is
    # left RUNNING with a heartbeat that has stopped, for the next run to fail and retry.
    wait_for(
        lambda: not any(alive(pid) for pid in workers_of_first),
        30,
        "the killed run's workers to exit",
    )
    before = {
        t.number: (t.value, t.params, t.intermediate_values)
        for t in trials(storage)
        if t.state == TrialState.COMPLETE
    }
    assert 3 <= len(before) < 12

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    final = trials(storage)
    after = {
        t.number: (t.value, t.params, t.intermediate_values)
        for t in final
        if t.state == TrialState.COMPLETE
    }
    assert len(after) == 12
    assert {number: after[number] for number in before} == before
    assert not [t for t in final if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_a_worker_does_not_wait_for_a_running_trial_without_heartbeats(tmp_path):
    """A trial left RUNNING by a process without heartbeats (plain Optuna, an older
    hpsearch) can never be failed by them: a worker whose only free slot it holds
    reports it and returns instead of waiting for ever."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC.replace(f"n_trials = {N_TRIALS}", "n_trials = 1"))
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["submit", str(spec), "--storage", storage]) == 0
    plain = optuna.storages.RDBStorage(storage)  # no heartbeat
    orphan = optuna.load_study(study_name="tiny", storage=plain).ask()
    plain.engine.dispose()
    # Started a minute ago, long past the grace period (Optuna keeps naive local times).
    started = (datetime.now() - timedelta(seconds=60)).isoformat(sep=" ")
    with sqlite3.connect(tmp_path / "studies.db") as connection:
        connection.execute(
            "UPDATE trials SET datetime_start = ? WHERE number = ?", (started, orphan.number)
        )
    connection.close()
    start = time.time()
    worker = hpsearch("worker", "--storage", storage, "--heartbeat", str(HEARTBEAT))
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert time.time() - start < 30
    assert f"trial(s) {orphan.number} RUNNING without heartbeats" in err
    assert [t.state for t in trials(storage)] == [TrialState.RUNNING]


def test_a_reproducible_study_with_a_worker_killed_mid_trial_equals_the_uninterrupted_one(
    tmp_path, capsys
):
    """Two workers, one SIGKILLed mid-trial: its trial is failed by the heartbeat and run
    again in its slot by the other worker, which meanwhile waits for it (or gives way to
    it), so the finished study equals one run by a single worker without a kill."""
    from hpsearch.analysis.compare import differences

    spec = tmp_path / "tiny.toml"
    spec.write_text(
        SPEC.replace('sampler = "random"', 'sampler = "tpe"')
        .replace('pruner = "none"', 'pruner = "median"')
        .replace(
            "start_at_defaults = true", "start_at_defaults = true\nreproducible = true\nlag = 2"
        )
    )
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["run", str(spec), "--storage", storage, "--study", "whole", "--no-progress"]) == 0
    assert main(["submit", str(spec), "--storage", storage]) == 0
    capsys.readouterr()
    workers = [
        hpsearch("worker", "--storage", storage, "--study", "tiny", "--heartbeat", str(HEARTBEAT))
        for _ in range(2)
    ]
    try:
        killed_trial, pid = frozen_mid_trial(workers, storage)
        victim = next(w for w in workers if w.pid == pid)
        victim.kill()
        victim.wait(timeout=10)
        survivor = next(w for w in workers if w is not victim)
        os.kill(survivor.pid, signal.SIGCONT)
        _, err = survivor.communicate(timeout=300)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert survivor.returncode == 0, err
    killed = trials(storage)
    assert killed[killed_trial].state == TrialState.FAIL
    again = [t for t in killed if t.system_attrs.get("failed_trial") == killed_trial]
    assert again and again[-1].state.is_finished() and again[-1].state != TrialState.FAIL
    found = differences(trials(storage, "whole"), killed)
    assert found.empty, found


def test_a_worker_paused_past_the_heartbeat_grace_goes_on_when_resumed(tmp_path, capsys):
    """A worker stopped (SIGSTOP: a suspended laptop or VM) until another worker fails its
    trial and takes it over, then resumed (SIGCONT), gives the trial up in one line and
    runs on; the study ends whole."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC.replace(f"n_trials = {N_TRIALS}", "n_trials = 12"))
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["submit", str(spec), "--storage", storage]) == 0
    capsys.readouterr()
    command = ["worker", "--storage", storage, "--study", "tiny", "--heartbeat", str(HEARTBEAT)]
    workers = [hpsearch(*command, "--no-progress") for _ in range(2)]
    try:
        while True:
            number, pid = wait_for(
                lambda: mid_trial_or_none_left(storage), 60, "a trial that has reported an epoch"
            )
            os.kill(pid, signal.SIGSTOP)
            wait_for(lambda pid=pid: stopped(pid), 10, "the worker to stop")
            if trials(storage)[number].state == TrialState.RUNNING:
                break  # paused mid-trial
            os.kill(pid, signal.SIGCONT)
        paused = next(w for w in workers if w.pid == pid)
        wait_for(
            lambda: trials(storage)[number].state == TrialState.FAIL,
            60,
            "the other worker to fail the paused worker's trial",
        )
        os.kill(pid, signal.SIGCONT)
        outputs = [w.communicate(timeout=300) for w in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.kill(worker.pid, signal.SIGCONT)
                worker.kill()
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert "Traceback" not in err, err
    _, err = outputs[workers.index(paused)]
    assert f"trial {number} was given to another worker while this one was paused" in err
    final = trials(storage)
    assert sum(t.state == TrialState.COMPLETE for t in final) == 12
    assert not [t for t in final if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    retries = [t for t in final if t.system_attrs.get("failed_trial") == number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
