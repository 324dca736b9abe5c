"""Create a study from a spec, or continue it when it exists with the same experiment;
its first trials (the spec's defaults, or a parent round's trials inside the new
ranges).
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch import __version__, records
from hpsearch.data import file_record
from hpsearch.errors import StudyError
from hpsearch.records import stored_spec
from hpsearch.spec import FloatRange, StudySpec
from hpsearch.storage import discard_session, display_url
from hpsearch.storage.creation import creation_lock
from hpsearch.trials import kind_of
from hpsearch.trials.space import contains, distributions

logger = logging.getLogger(__name__)

# How long a command waits for the spec of a study another command is creating, where
# the storage has no creation lock to wait on instead.
CREATION_SECONDS = 3.0


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old!r} there, {new!r} here"


def stored_form(spec: StudySpec) -> dict[str, Any]:
    """The spec as a study keeps it: the storage URL without its password, which
    everyone who can read the database could otherwise read back."""
    raw = spec.to_dict()
    raw["storage"] = display_url(spec.storage)
    return raw


def open_study(
    spec: StudySpec, storage: optuna.storages.BaseStorage, sampler=None, pruner=None
) -> optuna.Study:
    """Create the spec's study, or load it when it exists with the same experiment.

    Creation is all or nothing: the spec is the study's last write, so a study without
    one is either being created by another command (this one waits for it) or was left
    half-made by a command that was stopped (this one rolls it back and creates it
    anew). Refuses, without writing anything, a study of that name made from another
    experiment (data, model, training or search space): its trials would not compare.
    """
    study = _made(spec, storage, sampler, pruner)
    if study is None:
        with creation_lock(spec.storage, storage, spec.name) as exclusive:
            study = _made(spec, storage, sampler, pruner)  # made while this one waited
            if study is None:
                study = _create_in_place(spec, storage, sampler, pruner, exclusive)
    difference = _first_difference(stored_spec(study).experiment(), spec.experiment())
    if difference:
        raise StudyError(
            f"study {spec.name!r} exists with a different experiment ({difference}); "
            "use --study NEW_NAME for a new study, or the original spec to continue"
        )
    check_data_files(study, spec)
    return study


def _made(
    spec: StudySpec, storage: optuna.storages.BaseStorage, sampler=None, pruner=None
) -> optuna.Study | None:
    """The spec's study when it exists whole (with its spec), else None."""
    try:
        study = optuna.load_study(
            study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner
        )
    except KeyError:
        return None
    return study if records.SPEC in study.user_attrs else None


def _create_in_place(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    sampler,
    pruner,
    exclusive: bool,
) -> optuna.Study:
    """Create the study, first rolling back what a stopped creator left of it. Without
    an exclusive lock a creator at work cannot be told from a stopped one: a study that
    stays without its spec is then refused, never deleted."""
    try:
        left: int | None = storage.get_study_id_from_name(spec.name)
    except KeyError:
        left = None
    if left is None or exclusive:
        if left is not None:
            _roll_back(spec, storage, left)
        try:
            return _create(spec, storage, sampler, pruner, roll_back=exclusive)
        except optuna.exceptions.DuplicatedStudyError:
            if exclusive:
                raise
    # Another command may be creating it this moment: continue it once it is whole.
    study = _spec_in_time(spec, storage, sampler, pruner)
    if study is None:
        raise StudyError(
            f"study {spec.name!r} exists but was not created by hpsearch (or its "
            "creation stopped half-way); choose another name with --study"
        )
    return study


def _spec_in_time(
    spec: StudySpec, storage: optuna.storages.BaseStorage, sampler=None, pruner=None
) -> optuna.Study | None:
    """Wait a little for the spec another command is writing (None if it never comes)."""
    deadline = time.monotonic() + CREATION_SECONDS
    while True:
        study = _made(spec, storage, sampler, pruner)
        if study is not None or time.monotonic() > deadline:
            return study
        time.sleep(0.05)


def _roll_back(spec: StudySpec, storage: optuna.storages.BaseStorage, study_id: int) -> None:
    """Delete what a stopped creator left of the study: one that hpsearch began (it
    holds hpsearch's version), or an empty one (no attributes of any kind, no trials),
    which is what a creator stopped right after Optuna made the study leaves, and which
    holds nothing to lose. A study of that name holding anything else is refused."""
    attrs = storage.get_study_user_attrs(study_id)
    empty = (
        not attrs
        and not storage.get_study_system_attrs(study_id)
        and not storage.get_all_trials(study_id, deepcopy=False)
    )
    if records.VERSION not in attrs and not empty:
        raise StudyError(
            f"study {spec.name!r} exists but was not created by hpsearch; "
            "choose another name with --study"
        )
    if empty:
        logger.warning(
            "study %r exists and is empty (left by a command stopped while creating it, or "
            "made empty elsewhere); creating it anew",
            spec.name,
        )
    else:
        logger.warning(
            "study %r was left half-made by a command that stopped while creating it; "
            "creating it anew",
            spec.name,
        )
    storage.delete_study(study_id)


def _create(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    sampler=None,
    pruner=None,
    *,
    roll_back: bool = False,
) -> optuna.Study:
    """A new study of the spec, with its attributes and first trials. hpsearch's version
    is its first write and the spec its last: a study with the one and without the
    other was stopped half-way. `roll_back`: this command alone creates it, so a
    creation that fails (Ctrl-C, an error) deletes what it wrote."""
    parent = _parent_study(spec, storage) if spec.parent is not None else None
    if parent is not None:  # its trials were made on the data it stored
        check_data_files(parent, spec)
    objectives = spec.objectives
    attrs = {  # everything worked out before the first write, to keep the window short
        records.SPEC_SOURCE: spec.source,
        records.SEED: spec.seed,
        records.ROUND: spec.round,
        records.PARENT: spec.parent,
        records.RANGES: spec.to_dict()["search"]["params"],
    }
    if spec.search.reproducible:  # for optuna-dashboard's study page and `hpsearch trials`
        attrs[records.REPRODUCIBLE] = {"lag": spec.search.lag}
    record = data_record(spec)
    if record is not None:
        attrs[records.DATA] = record
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=[o.direction for o in objectives],
    )
    try:
        study.set_user_attr(records.VERSION, __version__)
        with warnings.catch_warnings():  # experimental in some Optuna versions
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # optuna-dashboard's names for the values, and `records.objectives_of`'s.
            study.set_metric_names([o.name for o in objectives])
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        if parent is not None:
            copied = warm_start(study, parent, spec)
            study.set_user_attr(records.WARM_START_TRIALS, copied)
            logger.info("copied %d trials of %r inside the new ranges", copied, spec.parent)
        elif spec.search.start_at_defaults and spec.search.sampler != "grid":  # grid: its own
            # No more than the budget: a queued trial beyond it would stay WAITING for ever.
            for point in start_points(spec)[: spec.search.n_trials]:
                study.enqueue_trial(point, user_attrs={records.START: "defaults"})
        study.set_user_attr(records.SPEC, stored_form(spec))  # the study is whole
    except BaseException:
        if roll_back:
            discard_session(storage)  # the interrupted write's
            with contextlib.suppress(Exception):  # else the next command rolls it back
                storage.delete_study(storage.get_study_id_from_name(spec.name))
        raise
    return study


def data_record(spec: StudySpec) -> dict[str, Any] | None:
    """What a study keeps of a user's data file: size and sha256 of each file, and the
    label each class index stands for (None for a built-in data set)."""
    return file_record(spec.data.name, label=spec.data.label, test=spec.data.test)


def check_data_files(study: optuna.Study, spec: StudySpec) -> None:
    """Refuse to add trials (or a test score) to a study whose data file changed since
    it started: its trials would compare two data sets."""
    stored = study.user_attrs.get(records.DATA)
    if stored is None:
        return
    files = data_record(spec)["files"]
    for path, was in stored["files"].items():
        now = files.get(path)
        if now != was:
            change = (
                f"size {was['size']} -> {now['size']} bytes"
                if now is not None and now["size"] != was["size"]
                else f"sha256 {was['sha256'][:12]}... -> {now['sha256'][:12] if now else '?'}..."
            )
            raise StudyError(
                f"data file {path} changed since study {study.study_name!r} started "
                f"({change}); restore it, or start a new study with --study NEW_NAME"
            )


def start_points(spec: StudySpec) -> list[dict[str, Any]]:
    """The first trials of a new study: the searched parameters' own values in the spec
    (the trial kind's start point), and the same with lr ten times larger and ten times
    smaller, where inside the range.

    One anchor at the defaults was not enough on the default study: TPE sampled few
    trials near it, those were pruned, and some runs stalled at the anchor while a
    larger lr did clearly better. A decade either side of the optimizer's usual lr is
    the first thing a person tuning SGD tries."""
    point = kind_of(spec).start_point(spec)
    if not point:
        return []
    points = [point]
    lr = spec.search.params.get("lr")
    if "lr" in point and isinstance(lr, FloatRange):
        for value in (point["lr"] * 10.0, point["lr"] * 0.1):
            if contains(lr, value):
                points.append(point | {"lr": value})
    return points


def _parent_study(spec: StudySpec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    try:
        return optuna.load_study(study_name=spec.parent, storage=storage)
    except KeyError:
        raise StudyError(
            f"{spec.source}: parent study {spec.parent!r} is not in {display_url(spec.storage)}; "
            "a narrowed round runs in its parent's database"
        ) from None


def warm_start(study: optuna.Study, parent: optuna.Study, spec: StudySpec) -> int:
    """Copy the parent's completed trials that lie inside this study's ranges, with this
    study's distributions, so its sampler starts informed and no finished work is lost.
    Copies carry `copied_from` and do not count towards this study's trial budget. The
    parent's re-evaluations are not copied: they are evidence on the parent's choice."""
    params = spec.search.params
    dists = distributions(params)
    copies = [
        _copy(
            trial,
            state=TrialState.COMPLETE,
            values=trial.values,
            params={name: trial.params[name] for name in params},
            distributions=dists,
            intermediate_values=trial.intermediate_values,
            # Not its slot in the parent: this study's slots are its own (search.reproducible).
            user_attrs={k: v for k, v in trial.user_attrs.items() if k != records.SLOT}
            | {records.COPIED_FROM: f"{parent.study_name}#{trial.number}"},
        )
        for trial in parent.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not records.is_confirmation(trial)  # evidence on a parent's configuration
        and set(params) <= set(trial.params)
        and all(contains(param, trial.params[name]) for name, param in params.items())
    ]
    study.add_trials(copies)
    return len(copies)


def _copy(original: FrozenTrial, **fields: Any) -> FrozenTrial:
    """A new trial made of `fields`, keeping the original's distance from each
    constraint, which samplers and `best_trials` read."""
    copy = optuna.trial.create_trial(**fields)
    for key, value in original.constraints.items():
        copy.set_constraint(key, value)
    return copy
