"""What every trial is given whatever its kind: its random generator, the name of the
worker that runs it, and its data."""

from __future__ import annotations

import os
import socket

import numpy as np

from hpsearch import data, records
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


# Tells a re-evaluation's streams apart from a trial's and from `final`'s.
REEVALUATION_STREAM = 1


def repeat_of(attrs: dict) -> int | None:
    """Which re-evaluation of the confirm stage a trial with these user attrs is (1
    first), or None for a search trial."""
    return attrs.get(records.REPEAT) if records.CONFIRMS in attrs else None


def reevaluation_rng(spec: StudySpec, repeat: int) -> np.random.Generator:
    """The random draws of re-evaluation `repeat`: the same for every configuration
    re-evaluated (common random numbers), so that two configurations' values at one
    repeat differ by their parameters, and a paired comparison sees that. Each
    narrowing round draws anew: a round's leaders copied from its parent are evaluated
    on other draws than the parent's."""
    return np.random.default_rng(_reevaluation_entropy(spec, repeat))


def reevaluation_split(spec: StudySpec, split: data.Split, repeat: int) -> data.Split:
    """The data of re-evaluation `repeat`: with `search.confirm.reshuffle`, train and
    validation drawn anew from their pool (the same for every configuration at that
    repeat), else the search's own split."""
    if not spec.search.confirm.reshuffle or split is None:
        return split
    seed = int(np.random.SeedSequence(_reevaluation_entropy(spec, repeat)).generate_state(1)[0])
    return data.reshuffled(split, seed)


def _reevaluation_entropy(spec: StudySpec, repeat: int) -> list[int]:
    return [spec.seed, REEVALUATION_STREAM, spec.round, repeat]


def trial_draws(
    spec: StudySpec, attrs: dict, seed_trial: int, split: data.Split | None
) -> tuple[int | None, np.random.Generator, data.Split | None]:
    """What a trial draws from and trains on, whatever its kind: a search trial's own
    stream and the run's split, or a re-evaluation's repeat (1 first), that repeat's
    stream and its split (`reevaluation_rng`, `reevaluation_split`)."""
    repeat = repeat_of(attrs)
    if repeat is None:
        return None, trial_rng(spec, seed_trial), split
    return repeat, reevaluation_rng(spec, repeat), reevaluation_split(spec, split, repeat)


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
