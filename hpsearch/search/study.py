"""Create a study from a spec, or continue it when it exists with the same experiment;
its first trials (the spec's defaults, or a parent round's trials inside the new
ranges); and the spec read back from a study.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from hpsearch import __version__
from hpsearch.data import file_record
from hpsearch.errors import HpsearchError
from hpsearch.nn import make_optimizer
from hpsearch.spec import Choice, FloatRange, IntRange, StudySpec, from_dict
from hpsearch.storage import display_url, open_storage
from hpsearch.trials.network import distributions, resolve

logger = logging.getLogger(__name__)

METRIC_NAME = "val_accuracy"  # what a trial's value is: the last epoch's validation accuracy
PYTHON_METRIC = "val_score"  # a python entry's value: the validation score it returns


class StudyError(HpsearchError):
    """A study that cannot be created, continued or evaluated as asked."""


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old!r} there, {new!r} here"


def value_name(source: optuna.Study | StudySpec, short: bool = False) -> str:
    """What a study's trial values are: "validation accuracy" (hpsearch's network) or
    "validation score" (a python entry's own); `short`: "val acc" or "val score"."""
    if isinstance(source, StudySpec):
        score = source.model.kind == "python"
    else:
        score = source.metric_names == [PYTHON_METRIC]
    if short:
        return "val score" if score else "val acc"
    return "validation score" if score else "validation accuracy"


def stored_spec(study: optuna.Study) -> StudySpec:
    """The spec a study was created from, read back from its user attrs."""
    raw = study.user_attrs.get("spec")
    if raw is None:
        raise StudyError(f"study {study.study_name!r} was not created by hpsearch (no spec)")
    return from_dict(raw, source=f"study {study.study_name!r}")


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
    if exists:
        study = optuna.load_study(
            study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner
        )
        if "spec" not in study.user_attrs:
            raise StudyError(
                f"study {spec.name!r} exists but was not created by hpsearch; "
                "choose another name with --study"
            )
        difference = _first_difference(stored_spec(study).experiment(), spec.experiment())
        if difference:
            raise StudyError(
                f"study {spec.name!r} exists with a different experiment ({difference}); "
                "use --study NEW_NAME for a new study, or the original spec to continue"
            )
        check_data_files(study, spec)
        return study
    parent = _parent_study(spec, storage) if spec.parent is not None else None
    if parent is not None:  # its trials were made on the data it stored
        check_data_files(parent, spec)
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
    )
    with warnings.catch_warnings():  # experimental in some Optuna versions
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # optuna-dashboard's name for the value
        study.set_metric_names([PYTHON_METRIC if spec.model.kind == "python" else METRIC_NAME])
    study.set_user_attr("spec", stored_form(spec))
    study.set_user_attr("spec_source", spec.source)
    study.set_user_attr("seed", spec.seed)
    study.set_user_attr("hpsearch_version", __version__)
    study.set_user_attr("round", spec.round)
    study.set_user_attr("parent", spec.parent)
    study.set_user_attr("ranges", spec.to_dict()["search"]["params"])
    if spec.search.reproducible:  # for optuna-dashboard's study page and `hpsearch trials`
        study.set_user_attr("reproducible", {"lag": spec.search.lag})
    record = data_record(spec)
    if record is not None:
        study.set_user_attr("data", record)
    if parent is not None:
        copied = warm_start(study, parent, spec)
        study.set_user_attr("warm_start_trials", copied)
        logger.info("copied %d trials of %r inside the new ranges", copied, spec.parent)
    elif spec.search.start_at_defaults and spec.search.sampler != "grid":  # grid: its points
        # No more than the budget: a queued trial beyond it would stay WAITING for ever.
        for point in start_points(spec)[: spec.search.n_trials]:
            study.enqueue_trial(point, user_attrs={"start": "defaults"})
    return study


def data_record(spec: StudySpec) -> dict[str, Any] | None:
    """What a study keeps of a user's data file: size and sha256 of each file, and the
    label each class index stands for (None for a built-in data set)."""
    return file_record(spec.data.name, label=spec.data.label, test=spec.data.test)


def check_data_files(study: optuna.Study, spec: StudySpec) -> None:
    """Refuse to add trials (or a test score) to a study whose data file changed since
    it started: its trials would compare two data sets."""
    stored = study.user_attrs.get("data")
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
    """The first trials of a new study: the searched parameters' own defaults, and the
    same with lr ten times larger and ten times smaller, where inside the range.

    One anchor at the defaults was not enough on the default study: TPE sampled few
    trials near it, those were pruned, and some runs stalled at the anchor while a
    larger lr did clearly better. A decade either side of the optimizer's usual lr is
    the first thing a person tuning SGD tries."""
    point = default_point(spec)
    if not point:
        return []
    points = [point]
    lr = spec.search.params.get("lr")
    if "lr" in point and isinstance(lr, FloatRange):
        for value in (point["lr"] * 10.0, point["lr"] * 0.1):
            if _inside(value, lr):
                points.append(point | {"lr": value})
    return points


def default_point(spec: StudySpec) -> dict[str, Any]:
    """The searched parameters' own values in the spec (init scale 1, which is the init
    rule itself; the optimizer's usual lr; ...) where they lie in the searched ranges.

    A search's first trial there anchors it: with init scale searched, most of a wide
    space cannot train at all, and TPE's random start-up trials can miss every
    trainable region, after which it refines the best of the failures (see the
    search-quality results, `make bench-search`).
    """
    if spec.model.kind == "python":  # its defaults: the settings of the searched names
        values: dict[str, Any] = dict(spec.model.settings)
        return {
            name: value
            for name, value in values.items()
            if name in spec.search.params and _fits(value, spec.search.params[name])
        }
    config = resolve(spec, {})
    values = dataclasses.asdict(config) | {
        "lr": config.lr if config.lr is not None else make_optimizer(config.optimizer).lr,
        "hidden_width": config.hidden_sizes[0] if config.hidden_sizes else None,
        "hidden_depth": len(config.hidden_sizes),
    }
    point: dict[str, Any] = {}
    for name, param in spec.search.params.items():
        value = values.get(name)
        if value is None:
            continue
        if not _inside(value, param):
            continue
        if isinstance(param, Choice):
            point[name] = value
        else:
            point[name] = int(value) if isinstance(param, IntRange) else float(value)
    return point


def _on_step(steps: float) -> bool:
    return math.isclose(steps, round(steps), abs_tol=1e-9)


def _parent_study(spec: StudySpec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    try:
        return optuna.load_study(study_name=spec.parent, storage=storage)
    except KeyError:
        raise StudyError(
            f"{spec.source}: parent study {spec.parent!r} is not in {display_url(spec.storage)}; "
            "a narrowed round runs in its parent's database"
        ) from None


def _fits(value: Any, param: Any) -> bool:
    """Whether a python entry's setting can be its searched parameter's start point: a
    value of the parameter's type, inside it (a setting may hold anything)."""
    if isinstance(param, Choice):
        return any(value == c and type(value) is type(c) for c in param.choices)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or (isinstance(param, IntRange) and not isinstance(value, int)):
        return False
    return _inside(value, param)


def _inside(value: Any, param: Any) -> bool:
    """Whether `value` is one the parameter can take: a choice, or inside the range and
    on its step (integer and float ranges alike)."""
    if isinstance(param, Choice):
        return value in param.choices
    if not param.low <= value <= param.high:
        return False
    return param.step is None or _on_step((value - param.low) / param.step)


def warm_start(study: optuna.Study, parent: optuna.Study, spec: StudySpec) -> int:
    """Copy the parent's completed trials that lie inside this study's ranges, with this
    study's distributions, so its sampler starts informed and no finished work is lost.
    Copies carry `copied_from` and do not count towards this study's trial budget."""
    params = spec.search.params
    dists = distributions(params)
    copies = [
        optuna.trial.create_trial(
            state=TrialState.COMPLETE,
            value=trial.value,
            params={name: trial.params[name] for name in params},
            distributions=dists,
            intermediate_values=trial.intermediate_values,
            # Not its slot in the parent: this study's slots are its own (search.reproducible).
            user_attrs={k: v for k, v in trial.user_attrs.items() if k != "slot"}
            | {"copied_from": f"{parent.study_name}#{trial.number}"},
        )
        for trial in parent.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if set(params) <= set(trial.params)
        and all(_inside(trial.params[name], param) for name, param in params.items())
    ]
    study.add_trials(copies)
    return len(copies)


def load_existing_study(
    study_name: str, storage_url: str, *, retry_for: float | None = None
) -> optuna.Study:
    """The study `study_name` of `storage_url`, or a StudyError that lists the studies
    there. `retry_for`: seconds an unreachable database is retried once opened (None:
    the default)."""
    storage = open_storage(storage_url, retry_for=retry_for)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        listing = ", ".join(repr(n) for n in names[:10]) or "none"
        raise StudyError(
            f"no study named {study_name!r} in {display_url(storage_url)}; studies there: {listing}"
        ) from None
