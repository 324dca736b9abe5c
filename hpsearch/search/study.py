"""Create a study from a spec, or continue it when it exists with the same experiment;
its first trials (the spec's defaults, or a parent round's trials inside the new
ranges).
"""

from __future__ import annotations

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
from hpsearch.storage import display_url
from hpsearch.trials import kind_of
from hpsearch.trials.space import contains, distributions

logger = logging.getLogger(__name__)

# How long a command waits for the spec of a study another command has just created.
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

    Refuses, without writing anything, a study of that name made from another
    experiment (data, model, training or search space): its trials would not compare.
    """
    try:
        storage.get_study_id_from_name(spec.name)
        exists = True
    except KeyError:
        exists = False
    if not exists:
        try:
            return _create(spec, storage, sampler, pruner)
        except optuna.exceptions.DuplicatedStudyError:
            pass  # another command created it a moment ago: continue it like any other
    study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)
    if records.SPEC not in study.user_attrs:
        _wait_for_spec(study)
    if records.SPEC not in study.user_attrs:
        raise StudyError(
            f"study {spec.name!r} exists but was not created by hpsearch (or its creation "
            "stopped half-way); choose another name with --study"
        )
    difference = _first_difference(stored_spec(study).experiment(), spec.experiment())
    if difference:
        raise StudyError(
            f"study {spec.name!r} exists with a different experiment ({difference}); "
            "use --study NEW_NAME for a new study, or the original spec to continue"
        )
    check_data_files(study, spec)
    return study


def _wait_for_spec(study: optuna.Study) -> None:
    """A study without a spec and without trials may be one another command is
    creating this moment: wait a little for its spec (the row its creator writes next)."""
    if study.get_trials(deepcopy=False):
        return
    deadline = time.monotonic() + CREATION_SECONDS
    while time.monotonic() < deadline and records.SPEC not in study.user_attrs:
        time.sleep(0.05)


def _create(
    spec: StudySpec, storage: optuna.storages.BaseStorage, sampler=None, pruner=None
) -> optuna.Study:
    """A new study of the spec, with its attributes and first trials."""
    parent = _parent_study(spec, storage) if spec.parent is not None else None
    if parent is not None:  # its trials were made on the data it stored
        check_data_files(parent, spec)
    objectives = spec.objectives
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=[o.direction for o in objectives],
    )
    with warnings.catch_warnings():  # experimental in some Optuna versions
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # optuna-dashboard's names for the values, and `records.objectives_of`'s.
        study.set_metric_names([o.name for o in objectives])
    study.set_user_attr(records.SPEC, stored_form(spec))
    study.set_user_attr(records.SPEC_SOURCE, spec.source)
    study.set_user_attr(records.SEED, spec.seed)
    study.set_user_attr(records.VERSION, __version__)
    study.set_user_attr(records.ROUND, spec.round)
    study.set_user_attr(records.PARENT, spec.parent)
    study.set_user_attr(records.RANGES, spec.to_dict()["search"]["params"])
    if spec.search.reproducible:  # for optuna-dashboard's study page and `hpsearch trials`
        study.set_user_attr(records.REPRODUCIBLE, {"lag": spec.search.lag})
    record = data_record(spec)
    if record is not None:
        study.set_user_attr(records.DATA, record)
    if parent is not None:
        copied = warm_start(study, parent, spec)
        study.set_user_attr(records.WARM_START_TRIALS, copied)
        logger.info("copied %d trials of %r inside the new ranges", copied, spec.parent)
    elif spec.search.start_at_defaults and spec.search.sampler != "grid":  # grid: its points
        # No more than the budget: a queued trial beyond it would stay WAITING for ever.
        for point in start_points(spec)[: spec.search.n_trials]:
            study.enqueue_trial(point, user_attrs={records.START: "defaults"})
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
    Copies carry `copied_from` and do not count towards this study's trial budget."""
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
        if set(params) <= set(trial.params)
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
