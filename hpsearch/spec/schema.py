"""What a study spec holds: the frozen dataclasses of its sections, their defaults and
their plain-data form.

Every field has a default (the defaults are the default study). Instances are made
valid by `hpsearch.spec.from_dict`, which every way of loading a spec goes through;
nothing here checks values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "grid", "nsga2", "nsga3")
# Samplers that search several objectives at once (Optuna's CMA-ES is single-objective).
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "random", "nsga2", "nsga3", "gp", "qmc", "grid")
DIRECTIONS = ("maximize", "minimize")
# Directions of the metric names hpsearch knows, so `objective = "val_loss"` needs no
# direction; any other name is written with one.
KNOWN_DIRECTIONS = MappingProxyType(
    {
        "val_accuracy": "maximize",
        "val_score": "maximize",
        "val_loss": "minimize",
        "train_seconds": "minimize",
        "n_params": "minimize",
    }
)
PRUNERS = ("none", "median", "successive-halving", "hyperband")
# What a reproducible search can use: samplers that draw from the trials they are shown
# and a seed alone (the others keep state in the study), and pruners that judge a trial
# against the trials shown (the others write their rungs into the study).
REPRODUCIBLE_SAMPLERS = ("tpe", "random")
REPRODUCIBLE_PRUNERS = ("none", "median")
DEFAULT_LAG = 8  # see docs/guide/reproducible.md, "The lag", for why 8
DEFAULT_STORAGE = "sqlite:///studies/hpsearch.db"
MAX_NAME_LENGTH = 512  # what Optuna's RDB storage keeps of a study name
MAX_SEED = 2**32 - 1  # NumPy's legacy RandomState, which Optuna's samplers seed, stops here
MAX_STEPS = 10**12  # grid points a float range's step may cut it into


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
class DataSpec:
    """A built-in data set by name, or a user's file (`csv:PATH`, `npz:PATH`,
    `parquet:PATH`; a relative path is resolved against the spec file's folder when the
    spec is loaded). `label`, `test` and `standardize` are for files: the label column
    (default: the last), a test file of the same columns (default: a fixed stratified
    hold-out), and scaling features by the training split's mean and std (None: on for
    files, off for built-in data sets)."""

    name: str = "mnist-5k"
    train_size: int | None = None
    validation_fraction: float = 0.2
    label: str | None = None
    test: str | None = None
    standardize: bool | None = None


@dataclass(frozen=True)
class ModelShape:
    """What a model kind's spec tables hold. hpsearch's network: its layer settings in
    [model], an optimizer and lr in [training], its own parameter names, a [data]
    table, and the metrics it measures. A user's own function: an entry and free-form
    settings, any parameter names, [training]'s epochs and batch size only, its own
    data if it likes, and metrics of any name, which the function returns."""

    own_function: bool
    default_objective: str
    metrics: tuple[str, ...] | None  # None: any name the spec declares

    @property
    def ranges_bind(self) -> bool:
        """Whether narrowing stays inside the spec's ranges: a user's function's
        parameters mean nothing to hpsearch past them, while the network's known ones
        (lr, weight decay, init scale) may be extended past an edge the optimum lies at."""
        return self.own_function


# What hpsearch's network measures in every trial: objectives and constraints choose
# among these.
NETWORK_METRICS = ("val_accuracy", "val_loss", "train_seconds", "n_params")
# Metrics measured by the clock: a reproducible search cannot repeat them.
TIMED_METRICS = ("train_seconds",)
# Names hpsearch itself gives a trial's user attrs and its tables' columns: a metric of
# a user's function may not take one (its curve is stored under its name).
RESERVED_NAMES = frozenset(
    {"seed_trial", "worker", "entry", "slot", "start", "copied_from", "stop_reason"}
    | {"epochs_run", "seconds", "diverged", "train_loss", "train_accuracy", "metrics"}
    | {"feasible", "init_activation_std", "init_pinned_fraction", "trial", "epochs"}
    | {"front", "number", "state", "value", "round", "confirms", "repeat"}
    | {"confirmed_mean", "confirmed_se", "confirmed_n", "choice_rank", "chosen"}
)

# The spec's model kinds; what each kind does in a trial is hpsearch.trials'.
MODEL_KINDS = MappingProxyType(
    {
        "multilayernet": ModelShape(False, "val_accuracy", NETWORK_METRICS),
        "python": ModelShape(True, "val_score", None),
    }
)
NO_DATA = "none"  # a python entry's [data] when the spec has none: it loads its own


@dataclass(frozen=True)
class ModelSpec:
    """hpsearch's MultiLayerNet (`kind = "multilayernet"`, the other keys its fixed
    settings), or a user's function (`kind = "python"`, `entry = "package.module:function"`,
    its fixed values in `settings`); see `hpsearch.trials.python`."""

    kind: str = "multilayernet"
    entry: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    hidden_sizes: tuple[int, ...] = (100,) * 6
    activation: str = "relu"
    init: str = "he"
    init_scale: float = 1.0
    weight_decay: float = 0.0
    batchnorm: bool = False
    dropout: float = 0.0

    @property
    def shape(self) -> ModelShape:
        return MODEL_KINDS[self.kind]


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 10
    batch_size: int = 100
    optimizer: str = "sgd"
    lr: float | None = None  # None: the book's default for the optimizer


@dataclass(frozen=True)
class InitHealth:
    """Prune a trial before its first epoch if its init has collapsed or saturated.

    Init-health pruning (off by default) is a pruning setting of the search, composed
    with whichever `pruner` runs, since it acts before the first epoch::

        [search.init_health]
        enabled = true        # default false
        collapse = 0.001      # fraction in [0, 1]
        saturation = 0.8      # fraction in [0, 1]

    One forward pass of a training batch through the freshly built net (the reference
    articles' activation histograms, as numbers) prunes the trial at once, with the
    reason in its `stop_reason` user attr and `epochs_run` = 0, when

    - the signal has collapsed: a hidden layer's activations have zero std (the zeros
      init, dead ReLUs), or, with an optimizer whose step is proportional to the
      gradient (sgd, momentum, nesterov), the last hidden layer's std is below
      `collapse` times the first's. Adaptive optimizers (adagrad, rmsprop, adam)
      rescale the shrunken gradients and are measured to learn from such nets, so the
      ratio is not held against them;
    - or the net is saturated: more than `saturation` of some hidden layer's sigmoid or
      tanh activations are pinned at their limits (sigmoid below 0.01 or above 0.99,
      |tanh| above 0.99), where the derivative is at most 1/25 (sigmoid) or 1/50 (tanh)
      of its peak. Any optimizer.

    Why these defaults: the reference articles' nets that learn keep the last/first
    std ratio well above 1e-3 and those they show unable to learn sit below it; in a
    sweep on 6x100 nets (digits and mnist-5k), sgd and momentum trials below it stayed
    near chance while momentum could still learn a little above it, so `collapse` =
    1e-3 prunes only the hopeless. Adam learned from far smaller ratios, hence its
    exemption. The articles' saturated nets pin about half of their units or more; in
    the sweep, trials pinning more than 0.8 of a layer stayed far below healthy inits,
    while those pinning a little less could still learn well.
    """

    enabled: bool = False
    collapse: float = 1e-3  # last/first hidden activation std below this: collapsed
    saturation: float = 0.8  # a hidden layer's pinned fraction above this: saturated


@dataclass(frozen=True)
class Confirm:
    """Re-evaluate the leading configurations before choosing one, so that the choice
    rests on a mean and not on one lucky evaluation::

        [search.confirm]
        top_k = 3          # leading configurations re-evaluated
        max_repeats = 3    # re-evaluations of each, at most
        share = 0.1        # of the budget's trials, at most, kept for them
        reshuffle = true   # each repeat on a new stratified train/validation split

    (or `confirm = false` in `[search]`). Once the search part of the budget has
    finished, the `top_k` best configurations are trained again at full epochs, each
    repeat with a random stream of its own that every configuration shares (common
    random numbers: the comparison is paired) and, with `reshuffle`, a train/validation
    split drawn anew from the same pool. The test split is never touched. A
    configuration stops being re-evaluated when a paired comparison with the leader on
    the repeats so far puts it clearly behind. The choice is the best mean of
    re-evaluations; the search's own evaluation is left out of it, since it was picked
    for being high.

    Why these defaults: a tenth of a 100-trial budget holds 3 x 3 re-evaluations, the
    fewest that rank three configurations by a mean with a spread; the re-evaluations
    run at full epochs, so they take a larger share of the epochs than of the trials
    (the run's summary shows both).
    """

    enabled: bool = True
    top_k: int = 3
    max_repeats: int = 3
    share: float = 0.1
    reshuffle: bool = True

    def configurations(self, n_trials: int) -> int:
        """How many leading configurations a budget of `n_trials` trials re-evaluates:
        `top_k`, or fewer when its share cannot hold two repeats of each (one
        re-evaluation has no spread to judge by); none when fewer than two fit (a choice
        between one is no choice)."""
        fitting = min(self.top_k, self._kept(n_trials) // min(2, self.max_repeats))
        return fitting if self.enabled and fitting >= 2 else 0

    def reserve(self, n_trials: int) -> int:
        """How many of a budget's `n_trials` trials re-evaluations may take."""
        return self._kept(n_trials) if self.configurations(n_trials) else 0

    def _kept(self, n_trials: int) -> int:
        return min(self.top_k * self.max_repeats, int(self.share * n_trials))

    def search_trials(self, n_trials: int) -> int:
        """The budget's trials left to the search itself."""
        return n_trials - self.reserve(n_trials)


@dataclass(frozen=True)
class Objective:
    """One value a study optimizes: a metric's name and which way is better."""

    name: str
    direction: str = "maximize"


@dataclass(frozen=True)
class Bound:
    """A constraint on a metric: a trial is feasible when min <= value <= max."""

    min: float | None = None
    max: float | None = None


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
    retry_for: float = 300.0  # seconds a database that cannot be reached is retried
    sampler: str = "tpe"
    pruner: str = "median"
    sampler_options: Mapping[str, Any] = field(default_factory=dict)
    pruner_options: Mapping[str, Any] | None = None  # None: DEFAULT_PRUNER_OPTIONS
    params: Mapping[str, Param] = field(default_factory=dict)
    init_health: InitHealth = field(default_factory=InitHealth)
    confirm: Confirm = field(default_factory=Confirm)
    # The first trial of a new study tries the searched parameters' own defaults (init
    # scale 1, the optimizer's usual lr, ...) where they lie in their ranges: with init
    # scale searched, most of the space cannot train, and TPE's random start-up missed
    # every trainable region on some seeds of bench-search.
    start_at_defaults: bool = True
    # Trials whose parameters, pruning and numbers depend on the spec and seed alone,
    # not on the workers (hpsearch.search.reproducible): trial n is sampled from trials n - lag and
    # earlier, waiting for them when they still run.
    reproducible: bool = False
    lag: int = DEFAULT_LAG
    # What the study optimizes, in order (the first is what epochs report and pruners
    # judge); empty: the model kind's default objective, maximized.
    objectives: tuple[Objective, ...] = ()
    constraints: Mapping[str, Bound] = field(default_factory=dict)

    @property
    def pruner_kwargs(self) -> dict[str, Any]:
        """The keyword arguments the pruner is made with."""
        if self.pruner_options is None:
            return dict(DEFAULT_PRUNER_OPTIONS.get(self.pruner, {}))
        return dict(self.pruner_options)


def default_params() -> dict[str, Param]:
    """The search space of the default study."""
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
    search: SearchSpec = field(default_factory=lambda: SearchSpec(params=default_params()))
    round: int = 1  # range-narrowing round; 1 for a study that has no parent
    parent: str | None = None  # the study this round's ranges were narrowed from
    source: str = field(default="<defaults>", compare=False)
    # Folders the command running this spec trusts to import a python entry's module
    # from (--code, the spec file's own folder): the command's to give, never stored.
    code: tuple[str, ...] = field(default=(), compare=False)

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """What the study optimizes: the spec's objectives, or its model kind's default."""
        return self.search.objectives or self.default_objectives()

    def default_objectives(self) -> tuple[Objective, ...]:
        name = self.model.shape.default_objective
        return (Objective(name, KNOWN_DIRECTIONS[name]),)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that `from_dict` turns back into an equal spec (for storage)."""
        raw = asdict(self)
        del raw["source"], raw["code"]
        raw["search"]["params"] = {
            name: param_to_dict(param) for name, param in self.search.params.items()
        }
        raw["search"]["sampler_options"] = dict(self.search.sampler_options)
        if self.search.pruner_options is None:  # absent: the pruner's defaults
            del raw["search"]["pruner_options"]
        else:
            raw["search"]["pruner_options"] = dict(self.search.pruner_options)
        raw["model"]["hidden_sizes"] = list(self.model.hidden_sizes)
        raw["model"]["settings"] = dict(self.model.settings)
        if not self.model.settings:
            del raw["model"]["settings"]
        if not self.search.confirm.enabled:
            raw["search"]["confirm"] = False
        elif self.search.confirm == Confirm():  # absent: the defaults
            del raw["search"]["confirm"]
        else:
            del raw["search"]["confirm"]["enabled"]
        if not self.search.reproducible:  # absent, as before reproducible searches
            del raw["search"]["reproducible"], raw["search"]["lag"]
        # Absent when the kind's default, as before objectives could be chosen.
        if self.search.objectives in ((), self.default_objectives()):
            del raw["search"]["objectives"]
        else:
            raw["search"]["objectives"] = [asdict(o) for o in self.search.objectives]
        if self.search.constraints:
            raw["search"]["constraints"] = {
                name: drop_none(asdict(bound)) for name, bound in self.search.constraints.items()
            }
        else:
            del raw["search"]["constraints"]
        if self.model.kind == ModelSpec.kind:  # the default, left out as before other kinds
            del raw["model"]["kind"]
        if self.data.name == NO_DATA:
            raw["data"] = {"name": NO_DATA}
        if self.model.shape.own_function:  # the network's settings do not apply to it
            raw["model"] = {k: raw["model"].get(k) for k in ("kind", "entry", "settings")}
            raw["training"] = {key: raw["training"][key] for key in ("epochs", "batch_size")}
        return drop_none(raw)

    def experiment(self) -> dict[str, Any]:
        """What decides a trial's numbers: two specs with equal experiments can share a
        study. Budget, sampler, pruner (init health among them) and storage may change
        between runs; a reproducible search may not become a free one, or change its
        lag, half-way (its trials would no longer repeat)."""
        raw = self.to_dict()
        search = self.search
        experiment = {key: raw[key] for key in ("seed", "data", "model", "training")}
        experiment["params"] = raw["search"]["params"]
        if search.reproducible:  # absent from a free search's, as before
            experiment["reproducible"] = f"lag {search.lag}"
        if "objectives" in raw["search"]:  # other values, or other directions
            experiment["objectives"] = raw["search"]["objectives"]
        if "constraints" in raw["search"]:  # which trials count as feasible
            experiment["constraints"] = raw["search"]["constraints"]
        return experiment


def param_to_dict(param: Param) -> dict[str, Any]:
    """A range or choice as the plain data a spec file writes for it."""
    if isinstance(param, Choice):
        return {"choices": list(param.choices)}
    return drop_none(asdict(param))


def drop_none(raw: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: absent means default."""
    return {
        key: drop_none(value) if isinstance(value, dict) else value
        for key, value in raw.items()
        if value is not None
    }
