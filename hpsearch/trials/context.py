"""What every trial is given whatever its kind: its random generator, the name of the
worker that runs it, and its data."""

from __future__ import annotations

import os
import socket

import numpy as np

from hpsearch import data
from hpsearch.spec import DataSpec, StudySpec


def trial_rng(spec: StudySpec, seed_trial: int) -> np.random.Generator:
    """Every random draw of a trial: seeded by the study's seed and the trial's seed
    number, so its numbers depend only on its spec, that number and its parameters."""
    return np.random.default_rng([spec.seed, seed_trial])


def final_rng(spec: StudySpec, seed_trial: int, repeat: int) -> np.random.Generator:
    """The random draws of `final`'s retraining number `repeat` of a trial's
    configuration: the first is the trial's own (so one retraining repeats what `final`
    always did), each other one a stream of its own."""
    if repeat == 0:
        return trial_rng(spec, seed_trial)
    return np.random.default_rng([spec.seed, seed_trial, repeat])


def worker_name() -> str:
    """Which machine and process this is: stored on every trial it runs, to tell
    workers apart when one misbehaves."""
    return f"{socket.gethostname()}:{os.getpid()}"


def load_split(data_spec: DataSpec, seed: int) -> data.Split:
    """The spec's data split, read-only: a run loads it once at its start and hands it to
    every trial (and worker), so a data file changed on disk meanwhile is never mixed in."""
    return data.read_only(
        data.load(
            data_spec.name,
            train_size=data_spec.train_size,
            validation_fraction=data_spec.validation_fraction,
            seed=seed,
            label=data_spec.label,
            test=data_spec.test,
            standardize=data_spec.standardize,
        )
    )
