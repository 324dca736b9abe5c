"""What many tests share: small specs that make study tests fast (digits, small hidden
layers, few epochs), the database dump that shows one untouched, and the `hpsearch`
processes, waits and trial reads of the tests that start workers."""

import contextlib
import functools
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from hpsearch import spec
from hpsearch.spec import with_overrides

TINY = """
name = "tiny"
seed = 0
[data]
name = "digits"
[model]
hidden_sizes = [32, 32]
[training]
epochs = 4
batch_size = 50
[search]
n_trials = {n_trials}
sampler = "{sampler}"
pruner = "{pruner}"
start_at_defaults = true
[search.params.lr]
low = 1e-3
high = 1.0
log = true
[search.params.weight_decay]
low = 1e-8
high = 1e-2
log = true
[search.params.init_scale]
low = 1e-2
high = 10.0
log = true
"""


def tiny_spec(
    tmp_path: Path, *, n_trials=6, sampler="tpe", pruner="none", extra="", start_at_defaults=True
):
    path = tmp_path / "tiny.toml"
    text = TINY.format(n_trials=n_trials, sampler=sampler, pruner=pruner)
    if not start_at_defaults:
        text = text.replace("start_at_defaults = true", "start_at_defaults = false")
    path.write_text(text + extra)
    db = tmp_path / "studies.db"
    return with_overrides(spec.load(path), storage=f"sqlite:///{db}")


def dump(db: Path) -> list[str]:
    """The database's whole logical content, to show it was left untouched."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return list(connection.iterdump())


ROOT = Path(__file__).resolve().parents[1]
HEARTBEAT = 1  # seconds; a silent trial is failed after 3
N_TRIALS = 8
EPOCHS = 10
# Trials of about a quarter second on one core: long enough that a kill lands inside one, short
# enough for CI.
SPEC = (
    TINY.format(n_trials=N_TRIALS, sampler="random", pruner="none")
    .replace("hidden_sizes = [32, 32]", "hidden_sizes = [200, 200]")
    .replace("batch_size = 50", "batch_size = 10")
    .replace("epochs = 4", f"epochs = {EPOCHS}")
    # Ranges where no trial diverges (a diverged trial ends PRUNED, not COMPLETE).
    .replace("low = 1e-3\nhigh = 1.0", "low = 1e-3\nhigh = 0.05")
    .replace("low = 1e-2\nhigh = 10.0", "low = 0.5\nhigh = 2.0")
)


def hpsearch(*args: str, **kwargs) -> subprocess.Popen:
    """An `hpsearch` process with its output piped, started in the repository unless the
    caller gives another `cwd` (Popen's other options pass through: env, ...)."""
    kwargs.setdefault("cwd", ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "hpsearch.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def wait_for(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@functools.cache
def _poll_storage(url: str) -> optuna.storages.RDBStorage:
    """One storage per URL for a test's polls: opening one per poll was slow enough on a
    loaded machine for a whole study to finish between two polls. No pool: each poll
    connects anew, so a server restarted by a test needs nothing special."""
    return optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": NullPool})


def trials(storage: str, name: str = "tiny") -> list[optuna.trial.FrozenTrial]:
    try:
        study = optuna.load_study(study_name=name, storage=_poll_storage(storage))
    except (KeyError, SQLAlchemyError):  # not made yet, or this look raced its making
        return []
    return study.get_trials(deepcopy=False)
