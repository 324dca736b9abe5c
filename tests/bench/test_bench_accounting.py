"""`make bench` counts what the code does: its FLOP count equals the matrix products one
training step of the benchmark's net calls, and its trial clock charges every second of
a worker's trial loop to exactly one part."""

import contextlib
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from bench import ROOT
from bench.speed import trial_clock
from bench.speed.trial_clock import PARTS, Clock
from bench.speed.workloads import SIZES, step_flops, training_step
from hpsearch.nn import layers
from tests.support import TINY


class CountingNumpy:
    """numpy, with every matmul's FLOPs (2 x m x k x n) added up."""

    def __init__(self) -> None:
        self.flops = 0

    def __getattr__(self, name: str):
        return getattr(np, name)

    def matmul(self, a, b, out=None):
        rows = a.shape[0] if a.ndim == 2 else 1
        columns = b.shape[1] if b.ndim == 2 else 1
        self.flops += 2 * rows * a.shape[-1] * columns
        return np.matmul(a, b, out=out)


@pytest.mark.parametrize("batch", [100, 500])
def test_the_benchmarks_flop_count_is_the_products_a_training_step_calls(batch, monkeypatch):
    step = training_step(batch)
    step()  # the first step also sizes the buffers
    counting = CountingNumpy()
    monkeypatch.setattr(layers, "np", counting)
    step()
    assert counting.flops == step_flops(batch)
    # The old rule of thumb, 6 x batch x weights, counted the first layer's input
    # gradient, which the net never computes.
    weights = sum(a * b for a, b in itertools.pairwise(SIZES))
    assert step_flops(batch) < 6 * batch * weights


def test_the_trial_clock_charges_the_whole_loop_to_its_parts(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY.format(n_trials=5, sampler="tpe", pruner="median"))
    done = subprocess.run(
        [sys.executable, "-m", "bench.speed.trial_clock", str(spec), str(tmp_path / "c.db"), "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    clock = json.loads(done.stdout.strip().splitlines()[-1])
    parts = clock["parts"]
    assert clock["trials"] == 5 and set(parts) == set(PARTS)
    # Each part is time spent: training, the sampler, the pruner and the storage all ran.
    for part in ("training", "sampler", "pruner", "storage_reads", "storage_writes"):
        assert parts[part] > 0, part
    # Exclusive times: nothing counted twice, nothing left out of the loop.
    assert sum(parts.values()) == pytest.approx(clock["loop"], abs=1e-6)
    assert clock["loop"] <= clock["wall"]


def test_the_clock_charges_each_instant_to_the_innermost_timed_call(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(trial_clock.time, "perf_counter", lambda: now[0])
    clock = Clock()

    def spend(seconds: float, then=None):
        now[0] += seconds
        if then is not None:
            then()
        now[0] += seconds

    read = clock.timed(lambda: spend(1.0), "storage_reads")
    sample = clock.timed(lambda: spend(2.0, read), "sampler")
    outside = clock.timed(lambda: spend(100.0), "sampler")
    outside()  # before the loop: not charged

    def failing():
        spend(5.0)
        raise ValueError

    def loop():
        spend(0.5, sample)
        with contextlib.suppress(ValueError):  # a raising call is charged all the same
            clock.timed(failing, "objective")()

    clock.timed(loop, "worker_loop")()
    assert dict(clock.exclusive) == {
        "worker_loop": 1.0,
        "sampler": 4.0,
        "storage_reads": 2.0,
        "objective": 10.0,
    }
    assert clock.inclusive["worker_loop"] == 17.0 == sum(clock.exclusive.values())


def test_the_study_at_scale_runs_hpsearchs_whole_trial_and_charges_its_windows(tmp_path):
    """The study at scale's trials (`bench.speed.scale_run`, a synthetic curve in place of
    training) write what real trials write, and each window's parts add up to its time
    per trial; plain Optuna adds its trials to a copy."""
    import optuna

    from hpsearch.trials.context import worker_name

    study = ROOT / "studies" / "mnist_lr_wd_init.toml"
    database, early = tmp_path / "scale.db", tmp_path / "early.db"
    done = subprocess.run(
        [sys.executable, "-m", "bench.speed.scale_run", "build", study, database, "300", early],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    built = json.loads(done.stdout.strip().splitlines()[-1])
    assert built["trials"] == 300
    assert (built["early"]["first"], built["early"]["last"]) == (50, 150)
    assert (built["late"]["first"], built["late"]["last"]) == (200, 300)
    for window in (built["early"], built["late"]):
        parts = sum(window["parts_ms_per_trial"].values())
        assert parts == pytest.approx(window["ms_per_trial"], rel=0.1)
    trials = optuna.load_study(
        study_name="mnist-lr-wd-init", storage=f"sqlite:///{database}"
    ).get_trials()
    assert len(trials) == 300
    states = {t.state.name for t in trials}
    assert states <= {"COMPLETE", "PRUNED"} and "PRUNED" in states  # the pruner ran
    written = {"seed_trial", "worker", "init_activation_std", "train_loss", "val_accuracy"}
    written |= {"train_accuracy", "epochs_run", "seconds", "diverged"}
    assert all(written <= set(t.user_attrs) for t in trials)
    assert trials[-1].user_attrs["worker"].split(":")[0] == worker_name().split(":")[0]
    copy = optuna.load_study(study_name="mnist-lr-wd-init", storage=f"sqlite:///{early}")
    assert len(copy.get_trials()) == 150  # copied when the first window ended
    plain = subprocess.run(
        [sys.executable, "-m", "bench.speed.scale_run", "plain", study, early, "5"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    added = json.loads(plain.stdout.strip().splitlines()[-1])
    assert added["trials_before"] == 150 and added["ms_per_trial"] > 0
    assert len(copy.get_trials()) == 155
