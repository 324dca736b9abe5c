"""Study specs: one TOML file per study, loaded into frozen, validated dataclasses.

Every key has a default (the defaults are the default study), so a spec can be a few
lines. Anything a user could get wrong is rejected here, at load time, with the file,
the key and what to change: unknown keys, empty or inverted ranges, log ranges that
touch zero, unknown names. Nothing downstream has to re-check a loaded spec.

Init-health pruning (off by default) is a pruning setting of the search, composed with
whichever `pruner` runs, since it acts before the first epoch::

    [search.init_health]
    enabled = true        # default false
    collapse = 0.001      # fraction in [0, 1]
    saturation = 0.8      # fraction in [0, 1]

One forward pass of a training batch through the freshly built net (the reference
articles' activation histograms, as numbers) prunes the trial at once, with the reason
in its `stop_reason` user attr and `epochs_run` = 0, when

- the signal has collapsed: a hidden layer's activations have zero std (the zeros init,
  dead ReLUs), or, with an optimizer whose step is proportional to the gradient (sgd,
  momentum, nesterov), the last hidden layer's std is below `collapse` times the
  first's. Adaptive optimizers (adagrad, rmsprop, adam) rescale the shrunken gradients
  and are measured to learn from such nets, so the ratio is not held against them;
- or the net is saturated: more than `saturation` of some hidden layer's sigmoid or tanh
  activations are pinned at their limits (sigmoid below 0.01 or above 0.99, |tanh|
  above 0.99), where the derivative is at most 1/25 (sigmoid) or 1/50 (tanh) of its
  peak. Any optimizer.

Why these defaults (measured on 6x100 nets, digits for 30 epochs and mnist-5k with 400
training examples for 50): the articles' nets that learn keep a last/first std ratio of
0.04 (Xavier, ReLU, 10 layers) or more; those shown unable to learn sit at 7e-4 (std
0.02, tanh, 10x500) and below. Every sgd or momentum trial measured below 1e-3 stayed
near chance (<= 0.23) and those up to 3e-3 reached at most 0.33, but momentum still
reached 0.94 at 6e-3: `collapse` = 1e-3 prunes only the hopeless. Adam reached 0.96 at
3e-4 and 0.59 at 8e-11, hence the exemption. The articles' saturated nets pin 0.47-0.84
(sigmoid) and 0.78-0.90 (tanh) of their units; trials whose most saturated layer pinned
more than 0.8 reached at most 0.42 (digits) and 0.33 (mnist-5k), against 0.99 and 0.89
for healthy inits, while those at 0.70-0.79 still reached 0.58-0.90 on digits:
`saturation` = 0.8.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.data import DATASETS
from hpsearch.errors import HpsearchError
from hpsearch.nn import ACTIVATIONS, INIT_RULES, OPTIMIZERS

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "grid")
PRUNERS = ("none", "median", "successive-halving", "hyperband")
DEFAULT_STORAGE = "sqlite:///studies/hpsearch.db"
MAX_NAME_LENGTH = 512  # what Optuna's RDB storage keeps of a study name
MAX_SEED = 2**32 - 1  # NumPy's legacy RandomState, which Optuna's samplers seed, stops here
MAX_HIDDEN_WIDTH = 65_536  # units in one hidden layer
MAX_HIDDEN_DEPTH = 1_000  # hidden layers
MAX_STEPS = 10**12  # grid points a float range's step may cut it into


class SpecError(HpsearchError, ValueError):
    """A study spec that cannot be run as written."""


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False
    step: int = 1


@dataclass(frozen=True)
class Choice:
    choices: tuple[Any, ...]


Param = FloatRange | IntRange | Choice


@dataclass(frozen=True)
class Setting:
    """A model or training setting that a search may vary."""

    section: str  # "model" or "training"
    kind: type  # float, int, str or bool
    minimum: float | None = None
    strict_minimum: bool = False  # values must exceed `minimum`, not just reach it
    below: float | None = None  # exclusive upper bound
    maximum: float | None = None  # inclusive upper bound
    names: tuple[str, ...] = ()  # allowed values of a str setting
    # How far range narrowing may extend a range at its edge: values past these make no
    # sense for the setting (weight decay 1 zeroes every weight in one SGD step). A
    # user's own range may go past them; narrowing only never takes it further.
    sensible: tuple[float, float] | None = None


SEARCHABLE: dict[str, Setting] = {
    "lr": Setting("training", float, minimum=0.0, strict_minimum=True, sensible=(1e-8, 10.0)),
    "optimizer": Setting("training", str, names=tuple(OPTIMIZERS)),
    "batch_size": Setting("training", int, minimum=1, sensible=(1, 4096)),
    "weight_decay": Setting("model", float, minimum=0.0, sensible=(1e-12, 0.1)),
    "init_scale": Setting("model", float, minimum=0.0, sensible=(1e-3, 1e2)),
    "activation": Setting("model", str, names=tuple(ACTIVATIONS)),
    "init": Setting("model", str, names=INIT_RULES),
    "batchnorm": Setting("model", bool),
    "dropout": Setting("model", float, minimum=0.0, below=1.0, sensible=(0.0, 0.9)),
    "hidden_width": Setting("model", int, minimum=1, maximum=MAX_HIDDEN_WIDTH, sensible=(1, 4096)),
    "hidden_depth": Setting("model", int, minimum=0, maximum=MAX_HIDDEN_DEPTH, sensible=(0, 16)),
}


@dataclass(frozen=True)
class DataSpec:
    name: str = "mnist-5k"
    train_size: int | None = None
    validation_fraction: float = 0.2


@dataclass(frozen=True)
class ModelSpec:
    hidden_sizes: tuple[int, ...] = (100,) * 6
    activation: str = "relu"
    init: str = "he"
    init_scale: float = 1.0
    weight_decay: float = 0.0
    batchnorm: bool = False
    dropout: float = 0.0


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 10
    batch_size: int = 100
    optimizer: str = "sgd"
    lr: float | None = None  # None: the book's default for the optimizer


@dataclass(frozen=True)
class InitHealth:
    """Prune a trial before its first epoch if its init has collapsed or saturated."""

    enabled: bool = False
    collapse: float = 1e-3  # last/first hidden activation std below this: collapsed
    saturation: float = 0.8  # a hidden layer's pinned fraction above this: saturated


# Options for a pruner when a spec gives none, chosen by `make bench-search`
# (docs/search-quality.md): three epochs before the median pruner may stop a trial, since
# nets near lr 0.01 and He's init start slower than large-init nets that plateau far
# lower, and pruning them at epoch 1 taught TPE to avoid the region that trains best.
# A spec that writes its own options gets exactly those, on top of Optuna's defaults.
# (Samplers need none: Optuna 5's TPE is already multivariate and a constant liar.)
DEFAULT_PRUNER_OPTIONS: dict[str, dict[str, Any]] = {"median": {"n_warmup_steps": 3}}


@dataclass(frozen=True)
class SearchSpec:
    n_trials: int = 100
    timeout: float | None = None  # seconds; stop starting trials after it
    sampler: str = "tpe"
    pruner: str = "median"
    sampler_options: Mapping[str, Any] = field(default_factory=dict)
    pruner_options: Mapping[str, Any] | None = None  # None: DEFAULT_PRUNER_OPTIONS
    params: Mapping[str, Param] = field(default_factory=dict)
    init_health: InitHealth = field(default_factory=InitHealth)
    # The first trial of a new study tries the searched parameters' own defaults (init
    # scale 1, the optimizer's usual lr, ...) where they lie in their ranges: with init
    # scale searched, most of the space cannot train, and TPE's random start-up missed
    # every trainable region on some seeds of bench-search.
    start_at_defaults: bool = True

    @property
    def pruner_kwargs(self) -> dict[str, Any]:
        """The keyword arguments the pruner is made with."""
        if self.pruner_options is None:
            return dict(DEFAULT_PRUNER_OPTIONS.get(self.pruner, {}))
        return dict(self.pruner_options)


def _default_params() -> dict[str, Param]:
    return {
        "lr": FloatRange(1e-5, 1.0, log=True),
        "weight_decay": FloatRange(1e-8, 1e-2, log=True),
        "init_scale": FloatRange(1e-2, 10.0, log=True),
    }


@dataclass(frozen=True)
class StudySpec:
    name: str = "mnist-lr-wd-init"
    seed: int = 0
    storage: str = DEFAULT_STORAGE
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    search: SearchSpec = field(default_factory=lambda: SearchSpec(params=_default_params()))
    round: int = 1  # range-narrowing round; 1 for a study that has no parent
    parent: str | None = None  # the study this round's ranges were narrowed from
    source: str = field(default="<defaults>", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that `from_dict` turns back into an equal spec (for storage)."""
        raw = asdict(self)
        del raw["source"]
        raw["search"]["params"] = {
            name: _param_to_dict(param) for name, param in self.search.params.items()
        }
        raw["search"]["sampler_options"] = dict(self.search.sampler_options)
        if self.search.pruner_options is None:  # absent: the pruner's defaults
            del raw["search"]["pruner_options"]
        else:
            raw["search"]["pruner_options"] = dict(self.search.pruner_options)
        raw["model"]["hidden_sizes"] = list(self.model.hidden_sizes)
        return _drop_none(raw)

    def experiment(self) -> dict[str, Any]:
        """What decides a trial's numbers: two specs with equal experiments can share a
        study. Budget, sampler, pruner (init health among them) and storage may change
        between runs."""
        raw = self.to_dict()
        return {key: raw[key] for key in ("seed", "data", "model", "training")} | {
            "params": raw["search"]["params"]
        }

    def with_overrides(
        self,
        *,
        name: str | None = None,
        seed: int | None = None,
        storage: str | None = None,
        n_trials: int | None = None,
        epochs: int | None = None,
        timeout: float | None = None,
    ) -> StudySpec:
        """The spec with command-line overrides applied and validated like the file."""
        raw = self.to_dict()
        overrides = [
            (name, ("name",)),
            (seed, ("seed",)),
            (storage, ("storage",)),
            (n_trials, ("search", "n_trials")),
            (epochs, ("training", "epochs")),
            (timeout, ("search", "timeout")),
        ]
        if all(value is None for value, _ in overrides):
            return self
        for value, path in overrides:
            if value is not None:
                target = raw
                for key in path[:-1]:
                    target = target[key]
                target[path[-1]] = value
        return from_dict(raw, source=f"{self.source} (with command-line options)")


def dumps(spec: StudySpec, header: str = "") -> str:
    """The spec as TOML text that `load` reads back into an equal spec."""
    import tomli_w

    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + tomli_w.dumps(spec.to_dict())


def load(path: str | Path) -> StudySpec:
    """Read and validate a spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read spec: {exc}") from None
    return loads(text, source=str(path))


def loads(text: str, *, source: str = "<spec>") -> StudySpec:
    """Validate the TOML text of a spec; `source` names it in error messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    return from_dict(raw, source=source)


def from_dict(raw: Mapping[str, Any], *, source: str = "<spec>") -> StudySpec:
    """Validate plain data (a parsed TOML file or a stored spec) into a StudySpec."""
    check = _Checker(source)
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

    data_raw = check.table(top.get("data", {}), "data", DataSpec)
    data = DataSpec(
        name=check.text(data_raw.get("name", DataSpec.name), "data.name"),
        train_size=check.optional_integer(data_raw.get("train_size"), "data.train_size", 2),
        validation_fraction=check.number(
            data_raw.get("validation_fraction", DataSpec.validation_fraction),
            "data.validation_fraction",
            above=0.0,
            below=1.0,
        ),
    )
    known_data = data.name in DATASETS[:-1] or data.name.startswith("idx:")
    if not known_data:
        check.fail(
            "data.name", f"unknown data set {data.name!r}; choose one of {', '.join(DATASETS)}"
        )

    model_raw = check.table(top.get("model", {}), "model", ModelSpec)
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
    model = ModelSpec(
        hidden_sizes=tuple(hidden),
        activation=check.setting(model_raw, "activation", ModelSpec.activation, "model"),
        init=check.setting(model_raw, "init", ModelSpec.init, "model"),
        init_scale=check.setting(model_raw, "init_scale", ModelSpec.init_scale, "model"),
        weight_decay=check.setting(model_raw, "weight_decay", ModelSpec.weight_decay, "model"),
        batchnorm=check.setting(model_raw, "batchnorm", ModelSpec.batchnorm, "model"),
        dropout=check.setting(model_raw, "dropout", ModelSpec.dropout, "model"),
    )

    training_raw = check.table(top.get("training", {}), "training", TrainingSpec)
    lr = training_raw.get("lr")
    training = TrainingSpec(
        epochs=check.integer(training_raw.get("epochs", TrainingSpec.epochs), "training.epochs", 1),
        batch_size=check.setting(training_raw, "batch_size", TrainingSpec.batch_size, "training"),
        optimizer=check.setting(training_raw, "optimizer", TrainingSpec.optimizer, "training"),
        lr=None if lr is None else check.setting(training_raw, "lr", None, "training"),
    )

    search_raw = check.table(top.get("search", {}), "search", SearchSpec, nested=("params",))
    sampler = check.text(search_raw.get("sampler", SearchSpec.sampler), "search.sampler")
    if sampler not in SAMPLERS:
        check.fail(
            "search.sampler", f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}"
        )
    pruner = check.text(search_raw.get("pruner", SearchSpec.pruner), "search.pruner")
    if pruner not in PRUNERS:
        check.fail(
            "search.pruner", f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}"
        )
    timeout = search_raw.get("timeout")
    params_raw = search_raw.get("params", None)
    if params_raw is None:
        params_raw = {k: _param_to_dict(v) for k, v in _default_params().items()}
    if not isinstance(params_raw, Mapping):
        check.fail("search.params", "must be a table of parameters")
    search = SearchSpec(
        n_trials=check.integer(
            search_raw.get("n_trials", SearchSpec.n_trials), "search.n_trials", 1
        ),
        timeout=None if timeout is None else check.number(timeout, "search.timeout", above=0.0),
        sampler=sampler,
        pruner=pruner,
        sampler_options=check.options(
            search_raw.get("sampler_options", {}), "search.sampler_options"
        ),
        pruner_options=_options(check, search_raw, "pruner_options"),
        params={name: check.param(name, value) for name, value in params_raw.items()},
        init_health=check.init_health(search_raw.get("init_health", {})),
        start_at_defaults=check.boolean(
            search_raw.get("start_at_defaults", SearchSpec.start_at_defaults),
            "search.start_at_defaults",
        ),
    )
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


def _options(check: _Checker, search_raw: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """A spec's own options, or None for the chosen pruner's defaults."""
    if key not in search_raw:
        return None
    return check.options(search_raw[key], f"search.{key}")


def _param_to_dict(param: Param) -> dict[str, Any]:
    if isinstance(param, Choice):
        return {"choices": list(param.choices)}
    return _drop_none(asdict(param))


def _drop_none(raw: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: absent means default."""
    return {
        key: _drop_none(value) if isinstance(value, dict) else value
        for key, value in raw.items()
        if value is not None
    }


class _Checker:
    """Validation helpers that name the file and key in every message."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> None:
        raise SpecError(f"{self.source}: {key}: {problem}")

    def table(
        self, raw: Any, path: str, cls: type, nested: tuple[str, ...] = ()
    ) -> Mapping[str, Any]:
        where = path or "top level"
        if not isinstance(raw, Mapping):
            self.fail(where, f"must be a table, got {raw!r}")
        known = {f for f in cls.__dataclass_fields__ if f != "source"} | set(nested)
        unknown = sorted(set(raw) - known)
        if unknown:
            prefix = f"{path}." if path else ""
            self.fail(
                prefix + unknown[0],
                f"unknown key; the keys of {where} are {', '.join(sorted(known))}",
            )
        return raw

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {value!r}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates: what Python makes of command-line bytes that are not UTF-8.
            self.fail(key, f"must be valid UTF-8 text, got {value!r}")
        return value

    def integer(self, value: Any, key: str, minimum: int, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be an integer, got {value!r}")
        if value < minimum:
            self.fail(key, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            self.fail(key, f"must be <= {maximum}, got {value}")
        return value

    def optional_integer(self, value: Any, key: str, minimum: int) -> int | None:
        return None if value is None else self.integer(value, key, minimum)

    def number(
        self, value: Any, key: str, *, above: float | None = None, below: float | None = None
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {value!r}")
        if above is not None and value <= above:
            self.fail(key, f"must be > {above:g}, got {value!r}")
        if below is not None and value >= below:
            self.fail(key, f"must be < {below:g}, got {value!r}")
        return float(value)

    def fraction(self, value: Any, key: str) -> float:
        """A number from 0 to 1, both included."""
        value = self.number(value, key)
        if not 0.0 <= value <= 1.0:
            self.fail(key, f"must be a fraction from 0 to 1, got {value!r}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {value!r}")
        return value

    def init_health(self, raw: Any) -> InitHealth:
        key = "search.init_health"
        raw = self.table(raw, key, InitHealth)
        return InitHealth(
            enabled=self.boolean(raw.get("enabled", InitHealth.enabled), f"{key}.enabled"),
            collapse=self.fraction(raw.get("collapse", InitHealth.collapse), f"{key}.collapse"),
            saturation=self.fraction(
                raw.get("saturation", InitHealth.saturation), f"{key}.saturation"
            ),
        )

    def options(self, raw: Any, key: str) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            self.fail(key, f"must be a table of keyword arguments, got {raw!r}")
        for name, value in raw.items():
            self.finite(value, f"{key}.{name}")
        return dict(raw)

    def finite(self, value: Any, key: str) -> None:
        """No NaN or infinity anywhere inside a value (TOML allows both)."""
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {value!r}")
        if isinstance(value, str):
            self.text(value, key)
        elif isinstance(value, Mapping):
            for name, item in value.items():
                self.finite(item, f"{key}.{name}")
        elif isinstance(value, list | tuple):
            for item in value:
                self.finite(item, key)

    def value(self, name: str, value: Any, key: str) -> Any:
        """One value of a searchable setting, checked against its type and bounds."""
        setting = SEARCHABLE[name]
        if setting.kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(key, f"must be a number, got {value!r}")
            if not math.isfinite(value):
                self.fail(key, f"must be a finite number, got {value!r}")
            value = float(value)
        elif setting.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(key, f"must be an integer, got {value!r}")
        elif setting.kind is bool:
            if not isinstance(value, bool):
                self.fail(key, f"must be true or false, got {value!r}")
        elif not isinstance(value, str):
            self.fail(key, f"must be a string, got {value!r}")
        if setting.names and value not in setting.names:
            self.fail(key, f"unknown {name} {value!r}; choose one of {', '.join(setting.names)}")
        too_small = setting.minimum is not None and (
            value < setting.minimum or (setting.strict_minimum and value == setting.minimum)
        )
        if too_small:
            relation = ">" if setting.strict_minimum else ">="
            self.fail(key, f"must be {relation} {setting.minimum:g}, got {value!r}")
        if setting.below is not None and value >= setting.below:
            self.fail(key, f"must be < {setting.below:g}, got {value!r}")
        if setting.maximum is not None and value > setting.maximum:
            self.fail(key, f"must be <= {setting.maximum:g}, got {value!r}")
        return value

    def setting(self, table: Mapping[str, Any], name: str, default: Any, section: str) -> Any:
        if name not in table:
            return default
        return self.value(name, table[name], f"{section}.{name}")

    def param(self, name: str, raw: Any) -> Param:
        key = f"search.params.{name}"
        if name not in SEARCHABLE:
            self.fail(key, f"cannot be searched; searchable settings are {', '.join(SEARCHABLE)}")
        if not isinstance(raw, Mapping):
            self.fail(key, "must be a table with low/high[/log/step] or choices")
        kind = SEARCHABLE[name].kind
        if "choices" in raw:
            extra = sorted(set(raw) - {"choices"})
            if extra:
                self.fail(f"{key}.{extra[0]}", "unknown key; a choice takes only 'choices'")
            choices = raw["choices"]
            if not isinstance(choices, list | tuple) or not choices:
                self.fail(f"{key}.choices", f"must be a non-empty list, got {choices!r}")
            values = tuple(self.value(name, v, f"{key}.choices") for v in choices)
            if len(set(values)) != len(values):
                self.fail(f"{key}.choices", f"has duplicates: {list(choices)!r}")
            return Choice(values)
        if kind not in (float, int):
            self.fail(key, f"{name} takes a list of choices, e.g. choices = [...]")
        allowed = {"low", "high", "log", "step"}
        extra = sorted(set(raw) - allowed)
        if extra:
            self.fail(f"{key}.{extra[0]}", "unknown key; a range takes low, high, log, step")
        for bound in ("low", "high"):
            if bound not in raw:
                self.fail(key, "a range needs both low and high (or give choices)")
        low = self.value(name, raw["low"], f"{key}.low")
        high = self.value(name, raw["high"], f"{key}.high")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            self.fail(f"{key}.log", f"must be true or false, got {log!r}")
        if low >= high:
            what = "empty" if low == high else "inverted"
            self.fail(key, f"{what} range: low = {low!r} must be below high = {high!r}")
        if log and low <= 0:
            self.fail(
                f"{key}.low",
                f"a log range must have low > 0, got {low!r}; use a small positive low "
                "such as 1e-8",
            )
        if kind is int:
            step = self.integer(raw.get("step", 1), f"{key}.step", minimum=1)
            if log and step != 1:
                self.fail(f"{key}.step", "a log-scale integer range needs step = 1")
            return IntRange(low, high, log=log, step=step)
        step = raw.get("step")
        if step is not None:
            step = self.number(step, f"{key}.step", above=0.0)
            if log:
                self.fail(f"{key}.step", "a log-scale range cannot have a step")
            if (high - low) / step > MAX_STEPS:
                self.fail(
                    f"{key}.step",
                    f"{step!r} cuts the range into more than {MAX_STEPS:.0e} points; "
                    "use a larger step or none",
                )
        return FloatRange(low, high, log=log, step=step)


__all__ = [
    "DEFAULT_STORAGE",
    "PRUNERS",
    "SAMPLERS",
    "SEARCHABLE",
    "Choice",
    "DataSpec",
    "FloatRange",
    "InitHealth",
    "IntRange",
    "ModelSpec",
    "SearchSpec",
    "SpecError",
    "StudySpec",
    "TrainingSpec",
    "from_dict",
    "load",
    "loads",
]
