"""Reading a spec: TOML text (`load`, `loads`) or plain data such as a stored spec
(`from_dict`) in, a validated StudySpec out; `dumps` writes one back as TOML.

Anything a user could get wrong is rejected here, at load time, with the file, the key
and what to change: unknown keys, empty or inverted ranges, log ranges that touch zero,
unknown names. Nothing downstream has to re-check a loaded spec.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpsearch.data import BUILT_IN, DATASETS
from hpsearch.data.files import file_kind
from hpsearch.spec.checks import Checker, SpecError
from hpsearch.spec.schema import (
    DEFAULT_STORAGE,
    DIRECTIONS,
    KNOWN_DIRECTIONS,
    MAX_NAME_LENGTH,
    MAX_SEED,
    MODEL_KINDS,
    MULTI_OBJECTIVE_SAMPLERS,
    NO_DATA,
    PRUNERS,
    REPRODUCIBLE_PRUNERS,
    REPRODUCIBLE_SAMPLERS,
    RESERVED_NAMES,
    SAMPLERS,
    TIMED_METRICS,
    Bound,
    Confirm,
    DataSpec,
    ModelShape,
    ModelSpec,
    Objective,
    SearchSpec,
    StudySpec,
    TrainingSpec,
    default_params,
    param_to_dict,
)
from hpsearch.spec.searchable import MAX_HIDDEN_DEPTH, MAX_HIDDEN_WIDTH

# package.module:function, each part a Python name
ENTRY_PATTERN = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def dumps(spec: StudySpec, header: str = "") -> str:
    """The spec as TOML text that `load` reads back into an equal spec."""
    import tomli_w

    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + tomli_w.dumps(spec.to_dict())


def load(path: str | Path) -> StudySpec:
    """Read and validate a spec file. Data files named in it with a relative path are
    found next to it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read spec: {exc}") from None
    return loads(text, source=str(path), folder=path.parent)


def loads(text: str, *, source: str = "<spec>", folder: Path | None = None) -> StudySpec:
    """Validate the TOML text of a spec; `source` names it in error messages, `folder`
    is where its relative data file paths start (default: the working directory)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    return from_dict(raw, source=source, folder=folder)


def from_dict(
    raw: Mapping[str, Any], *, source: str = "<spec>", folder: Path | None = None
) -> StudySpec:
    """Validate plain data (a parsed TOML file or a stored spec) into a StudySpec.
    Relative data file paths are made absolute from `folder` (default: the working
    directory), so the stored spec names the files every worker reads."""
    check = Checker(source)
    top = check.table(raw, "", StudySpec, nested=("data", "model", "training", "search"))
    name = check.text(top.get("name", StudySpec.name), "name")
    if len(name) > MAX_NAME_LENGTH or not name.strip():
        check.fail("name", f"must be 1 to {MAX_NAME_LENGTH} characters, got {len(name)}")
    seed = check.integer(top.get("seed", 0), "seed", minimum=0, maximum=MAX_SEED)
    storage = check.text(top.get("storage", DEFAULT_STORAGE), "storage")
    round_number = check.integer(top.get("round", 1), "round", minimum=1)
    parent = top.get("parent")
    if parent is not None:
        check.text(parent, "parent")

    model_raw = check.table(top.get("model", {}), "model", ModelSpec)
    kind = check.text(model_raw.get("kind", ModelSpec.kind), "model.kind")
    if kind not in MODEL_KINDS:
        check.fail("model.kind", f"unknown kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    python = MODEL_KINDS[kind].own_function
    if python and "data" not in top:
        data = DataSpec(name=NO_DATA)
    else:
        data = _data(check, check.table(top.get("data", {}), "data", DataSpec), folder, python)
    if python:
        model = _python_model(check, model_raw)
    else:
        for key in ("entry", "settings"):
            if key in model_raw:
                check.fail(f"model.{key}", 'is for kind = "python" (a function of your own)')
        model = _network(check, model_raw)
    training_raw = check.table(top.get("training", {}), "training", TrainingSpec)
    if python:
        for key in ("optimizer", "lr"):
            if key in training_raw:
                check.fail(
                    f"training.{key}",
                    "is a setting of hpsearch's network; give a python entry fixed values in "
                    "model.settings",
                )
    lr = training_raw.get("lr")
    training = TrainingSpec(
        epochs=check.integer(training_raw.get("epochs", TrainingSpec.epochs), "training.epochs", 1),
        batch_size=check.setting(training_raw, "batch_size", TrainingSpec.batch_size, "training"),
        optimizer=check.setting(training_raw, "optimizer", TrainingSpec.optimizer, "training"),
        lr=None if lr is None else check.setting(training_raw, "lr", None, "training"),
    )

    search_raw = check.table(
        top.get("search", {}), "search", SearchSpec, nested=("params", "objective")
    )
    sampler = check.text(search_raw.get("sampler", SearchSpec.sampler), "search.sampler")
    if sampler not in SAMPLERS:
        check.fail(
            "search.sampler", f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}"
        )
    objectives = _objectives(check, search_raw, MODEL_KINDS[kind])
    several = len(objectives) > 1
    # Optuna prunes single-objective studies only: several objectives run every trial.
    default_pruner = "none" if several else SearchSpec.pruner
    pruner = check.text(search_raw.get("pruner", default_pruner), "search.pruner")
    if several and pruner != "none":
        check.fail(
            "search.pruner",
            f"Optuna prunes single-objective studies only; with {len(objectives)} objectives "
            'leave it out or write pruner = "none"',
        )
    if several and sampler not in MULTI_OBJECTIVE_SAMPLERS:
        check.fail(
            "search.sampler",
            f"{sampler!r} searches one objective; with several choose one of "
            f"{', '.join(MULTI_OBJECTIVE_SAMPLERS)}",
        )
    if pruner not in PRUNERS:
        check.fail(
            "search.pruner", f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}"
        )
    timeout = search_raw.get("timeout")
    params_raw = search_raw.get("params", None)
    if params_raw is None:
        if python:
            check.fail("search.params", "a python entry's search needs its parameters listed")
        params_raw = {k: param_to_dict(v) for k, v in default_params().items()}
    if not isinstance(params_raw, Mapping):
        check.fail("search.params", "must be a table of parameters")
    search = SearchSpec(
        n_trials=check.integer(
            search_raw.get("n_trials", SearchSpec.n_trials), "search.n_trials", 1
        ),
        timeout=None if timeout is None else check.number(timeout, "search.timeout", above=0.0),
        retry_for=_retry_for(check, search_raw.get("retry_for", SearchSpec.retry_for)),
        sampler=sampler,
        pruner=pruner,
        sampler_options=check.options(
            search_raw.get("sampler_options", {}), "search.sampler_options"
        ),
        pruner_options=_options(check, search_raw, "pruner_options"),
        params={name: check.param(name, value, own=python) for name, value in params_raw.items()},
        init_health=check.init_health(search_raw.get("init_health", {})),
        confirm=check.confirm(search_raw.get("confirm", {})),
        start_at_defaults=check.boolean(
            search_raw.get("start_at_defaults", SearchSpec.start_at_defaults),
            "search.start_at_defaults",
        ),
        reproducible=check.boolean(
            search_raw.get("reproducible", SearchSpec.reproducible), "search.reproducible"
        ),
        lag=check.integer(search_raw.get("lag", SearchSpec.lag), "search.lag", 0),
        objectives=objectives,
        constraints=_constraints(check, search_raw.get("constraints", {}), MODEL_KINDS[kind]),
    )
    _check_reproducible(check, search, "lag" in search_raw)
    if search.reproducible and several:
        check.fail("search.reproducible", "searches one objective, not several")
    kept = search.confirm.reserve(search.n_trials)
    if kept and search.n_trials - kept < 2 * search.confirm.configurations(search.n_trials):
        check.fail(
            "search.confirm.share",
            f"keeps {kept} of the {search.n_trials} trials for re-evaluations, leaving the "
            f"search {search.n_trials - kept}: too few to find leaders to re-evaluate; "
            "lower share or raise n_trials",
        )
    if several and search.confirm.enabled:
        if "confirm" in search_raw:
            check.fail(
                "search.confirm",
                "re-evaluates the leaders of one objective; several objectives have a "
                "front instead: leave it out or write confirm = false",
            )
        search = dataclasses.replace(search, confirm=Confirm(enabled=False))
    timed = [
        name
        for name in [o.name for o in objectives] + list(search.constraints)
        if name in TIMED_METRICS and not python
    ]
    if search.reproducible and timed:
        check.fail(
            "search.reproducible",
            f"cannot repeat {timed[0]}, which the clock measures; leave it out or search "
            "without reproducible",
        )
    if python and search.init_health.enabled:
        check.fail("search.init_health", "checks hpsearch's network: not for a python entry")
    return StudySpec(
        name=name,
        seed=seed,
        storage=storage,
        data=data,
        model=model,
        training=training,
        search=search,
        round=round_number,
        parent=parent,
        source=source,
    )


def _objectives(
    check: Checker, search_raw: Mapping[str, Any], shape: ModelShape
) -> tuple[Objective, ...]:
    """`objective = "name"` (a known name's direction) or `objectives = [{ name, direction
    }, ...]`; empty when neither is given (the kind's default)."""
    if "objective" in search_raw and "objectives" in search_raw:
        check.fail("search.objective", "give objective or objectives, not both")
    if "objective" in search_raw:
        raw: Any = [{"name": search_raw["objective"]}]
        key = "search.objective"
    else:
        raw = search_raw.get("objectives", [])
        key = "search.objectives"
        if not isinstance(raw, list) or ("objectives" in search_raw and not raw):
            check.fail(key, 'must be a list like [{ name = "val_loss", direction = "minimize" }]')
    objectives = []
    for item in raw:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping) or "name" not in item or set(item) - {"name", "direction"}:
            check.fail(key, f'an objective is {{ name = "...", direction = "..." }}, got {item!r}')
        name = check.text(item["name"], key)
        known = ", ".join(shape.metrics or ())
        if shape.metrics is not None and name not in shape.metrics:
            check.fail(key, f"unknown metric {name!r}; hpsearch's network measures {known}")
        _metric_name(check, key, name)
        direction = item.get("direction", KNOWN_DIRECTIONS.get(name))
        if direction is None:
            check.fail(
                key,
                f"{name!r} has no known direction; write objectives = "
                f'[{{ name = "{name}", direction = "minimize" }}] (or "maximize")',
            )
        if direction not in DIRECTIONS:
            check.fail(key, f"direction must be minimize or maximize, got {direction!r}")
        objectives.append(Objective(name, direction))
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        check.fail(key, f"each metric once, got {names}")
    shape_default = (Objective(shape.default_objective, KNOWN_DIRECTIONS[shape.default_objective]),)
    # The default written out is the default: the spec reads back equal from its dict.
    return () if tuple(objectives) == shape_default else tuple(objectives)


def _metric_name(check: Checker, key: str, name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][\w.-]*", name):
        check.fail(key, f"a metric name is a word (letters, digits, _ . -), got {name!r}")
    if name in RESERVED_NAMES:
        check.fail(
            key, f"{name!r} is a name hpsearch gives a trial's own records; rename the metric"
        )


def _constraints(check: Checker, raw: Any, shape: ModelShape) -> dict[str, Bound]:
    """`[search.constraints] n_params = { max = 200000 }`: bounds on measured metrics."""
    if not isinstance(raw, Mapping):
        check.fail("search.constraints", "must be a table like n_params = { max = 200000 }")
    bounds = {}
    for name, bound in raw.items():
        key = f"search.constraints.{name}"
        _metric_name(check, key, name)
        if shape.metrics is not None and name not in shape.metrics:
            measured = ", ".join(shape.metrics)
            check.fail(key, f"unknown metric; hpsearch's network measures {measured}")
        if not isinstance(bound, Mapping) or not bound or set(bound) - {"min", "max"}:
            check.fail(key, f"must be {{ min = ... }}, {{ max = ... }} or both, got {bound!r}")
        low, high = (
            None if bound.get(side) is None else check.number(bound[side], f"{key}.{side}")
            for side in ("min", "max")
        )
        if low is not None and high is not None and low > high:
            check.fail(key, f"min {low} is above max {high}")
        bounds[name] = Bound(low, high)
    return bounds


def _python_model(check: Checker, model_raw: Mapping[str, Any]) -> ModelSpec:
    for key in model_raw:
        if key not in ("kind", "entry", "settings"):
            check.fail(
                f"model.{key}",
                "is a setting of hpsearch's network; give a python entry fixed values in "
                "model.settings",
            )
    if "entry" not in model_raw:
        check.fail("model.entry", 'kind = "python" needs entry = "package.module:function"')
    entry = check.text(model_raw["entry"], "model.entry")
    if not ENTRY_PATTERN.fullmatch(entry):
        check.fail(
            "model.entry",
            f"must look like package.module:function (Python names), got {entry!r}",
        )
    return ModelSpec(
        kind="python",
        entry=entry,
        settings=check.options(model_raw.get("settings", {}), "model.settings"),
    )


def _network(check: Checker, model_raw: Mapping[str, Any]) -> ModelSpec:
    hidden = model_raw.get("hidden_sizes", list(ModelSpec.hidden_sizes))
    if not isinstance(hidden, list | tuple) or not all(
        isinstance(size, int) and not isinstance(size, bool) and size >= 1 for size in hidden
    ):
        check.fail("model.hidden_sizes", f"must be a list of positive integers, got {hidden!r}")
    if len(hidden) > MAX_HIDDEN_DEPTH:
        check.fail(
            "model.hidden_sizes", f"at most {MAX_HIDDEN_DEPTH} hidden layers, got {len(hidden)}"
        )
    if hidden and max(hidden) > MAX_HIDDEN_WIDTH:
        check.fail(
            "model.hidden_sizes",
            f"a hidden layer has at most {MAX_HIDDEN_WIDTH} units, got {max(hidden)}",
        )
    return ModelSpec(
        hidden_sizes=tuple(hidden),
        activation=check.setting(model_raw, "activation", ModelSpec.activation, "model"),
        init=check.setting(model_raw, "init", ModelSpec.init, "model"),
        init_scale=check.setting(model_raw, "init_scale", ModelSpec.init_scale, "model"),
        weight_decay=check.setting(model_raw, "weight_decay", ModelSpec.weight_decay, "model"),
        batchnorm=check.setting(model_raw, "batchnorm", ModelSpec.batchnorm, "model"),
        dropout=check.setting(model_raw, "dropout", ModelSpec.dropout, "model"),
    )


def _options(check: Checker, search_raw: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """A spec's own options, or None for the chosen pruner's defaults."""
    if key not in search_raw:
        return None
    return check.options(search_raw[key], f"search.{key}")


def _check_reproducible(check: Checker, search: SearchSpec, lag_given: bool) -> None:
    if not search.reproducible:
        if lag_given:
            check.fail("search.lag", "only applies with reproducible = true")
        return
    if search.sampler not in REPRODUCIBLE_SAMPLERS:
        check.fail(
            "search.reproducible",
            f"works with the {' and '.join(REPRODUCIBLE_SAMPLERS)} samplers, not "
            f"{search.sampler!r} (it keeps state in the study)",
        )
    if search.pruner not in REPRODUCIBLE_PRUNERS:
        check.fail(
            "search.reproducible",
            f"works with the {' and '.join(REPRODUCIBLE_PRUNERS)} pruners, not "
            f"{search.pruner!r} (it writes its rungs into the study)",
        )


def _retry_for(check: Checker, value: Any) -> float:
    seconds = check.number(value, "search.retry_for")
    if seconds < 0:
        check.fail("search.retry_for", f"must be >= 0 seconds, got {value!r}")
    return seconds


def _data(
    check: Checker, data_raw: Mapping[str, Any], folder: Path | None, python: bool
) -> DataSpec:
    name = check.text(data_raw.get("name", DataSpec.name), "data.name")
    kind = file_kind(name)
    if name == NO_DATA:
        if not python:
            check.fail("data.name", f"{NO_DATA!r} is for a python entry that loads its own data")
        if set(data_raw) - {"name"}:
            check.fail(f"data.{sorted(set(data_raw) - {'name'})[0]}", f"is not for {NO_DATA!r}")
        return DataSpec(name=NO_DATA)
    if not (name in BUILT_IN or name.startswith("idx:") or kind is not None):
        check.fail("data.name", f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    label, test = data_raw.get("label"), data_raw.get("test")
    standardize = data_raw.get("standardize")
    if kind is None:
        for key, value in (("label", label), ("test", test), ("standardize", standardize)):
            if value is not None:
                check.fail(f"data.{key}", f"is for data files (csv:, npz:, parquet:), not {name!r}")
    if label is not None:
        check.text(label, "data.label")
        if kind == "npz":
            check.fail("data.label", "an NPZ file holds arrays x and y: it has no label column")
    if test is not None:
        test = _absolute(check.text(test, "data.test"), folder)
    if standardize is not None:
        # The default for files written out is the same experiment as leaving it out.
        standardize = None if check.boolean(standardize, "data.standardize") else False
    if kind is not None:
        name = f"{kind}:{_absolute(name.partition(':')[2], folder)}"
    return DataSpec(
        name=name,
        train_size=check.optional_integer(data_raw.get("train_size"), "data.train_size", 2),
        validation_fraction=check.number(
            data_raw.get("validation_fraction", DataSpec.validation_fraction),
            "data.validation_fraction",
            above=0.0,
            below=1.0,
        ),
        label=label,
        test=test,
        standardize=standardize,
    )


def _absolute(path: str, folder: Path | None) -> str:
    """A data file's path as every worker must read it: from the spec's folder."""
    expanded = Path(path).expanduser()
    if expanded.is_absolute():
        return str(expanded)
    return str(((folder or Path.cwd()) / expanded).absolute())


def with_overrides(
    spec: StudySpec,
    *,
    name: str | None = None,
    seed: int | None = None,
    storage: str | None = None,
    n_trials: int | None = None,
    epochs: int | None = None,
    timeout: float | None = None,
    retry_for: float | None = None,
    reproducible: bool | None = None,
) -> StudySpec:
    """The spec with command-line overrides applied and validated like the file."""
    raw = spec.to_dict()
    overrides = [
        (name, ("name",)),
        (seed, ("seed",)),
        (storage, ("storage",)),
        (n_trials, ("search", "n_trials")),
        (epochs, ("training", "epochs")),
        (timeout, ("search", "timeout")),
        (retry_for, ("search", "retry_for")),
        (reproducible, ("search", "reproducible")),
    ]
    if all(value is None for value, _ in overrides):
        return spec
    for value, path in overrides:
        if value is not None:
            target = raw
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
    return from_dict(raw, source=f"{spec.source} (with command-line options)")
