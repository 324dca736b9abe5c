"""Search strategies: how a task's study is searched (sampler, pruner, start points,
rounds, budget), applied to the task's own data, model, training and search space.

Every strategy but `random-100` is held to a third of the epochs `random-100` spent on
the same task and seed. The rows
are built so that each gain is credited to one cause, on the same search space:
`tpe` against `random-100` is the sampler, `tpe+median` against `tpe` the pruner,
`default` against `tpe+median` the start points, `default+confirm` against `default`
re-evaluating the leaders before the choice at the same epochs, `rounds-3` against
`default` range narrowing at the same trial budget, `reproducible` against `default` the lag of a
reproducible search (trial n learns only from trials n - lag and earlier, whatever the
number of workers). `book-ranges-*` rows search the book's own ranges
(lr 1e-6..1e-2, weight decay 1e-8..1e-4, no init scale) instead of the task's: against
the same strategy on the task's space they measure the space, not the strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.search.tasks import task_spec

if TYPE_CHECKING:
    from hpsearch.spec import StudySpec

BASELINE = "random-100"
BASELINE_TRIALS = 100
EPOCH_SHARE = 1 / 3  # of the baseline's epochs, for every other strategy

BOOK_RANGES = {
    "lr": {"low": 1e-6, "high": 1e-2, "log": True},
    "weight_decay": {"low": 1e-8, "high": 1e-4, "log": True},
}


@dataclass(frozen=True)
class Strategy:
    name: str
    about: str
    sampler: str = "tpe"
    pruner: str = "median"  # with hpsearch's default options
    start_at_defaults: bool = True
    n_trials: int = BASELINE_TRIALS  # per round
    rounds: int = 1
    epoch_share: float | None = EPOCH_SHARE
    params: dict[str, dict[str, Any]] | None = None  # None: the task's space
    tasks: tuple[str, ...] = ()  # only these tasks; empty: every task
    reproducible: bool = False  # the spec's search.reproducible, at its default lag
    # The confirm stage (search.confirm: these options over its defaults), held to the
    # epochs `default` spent on the same task and seed (runs.one_run); None: off.
    confirm: tuple[tuple[str, Any], ...] | None = None


STRATEGIES = [
    Strategy(
        BASELINE,
        "100 random trials at full epochs, no pruning (the book's recipe on the task's space)",
        sampler="random",
        pruner="none",
        start_at_defaults=False,
        epoch_share=None,
    ),
    Strategy(
        "tpe",
        "TPE (Optuna's, multivariate), no pruner, no start points",
        pruner="none",
        start_at_defaults=False,
    ),
    Strategy(
        "tpe+median",
        "TPE and hpsearch's median pruner (from epoch 3), no start points",
        start_at_defaults=False,
    ),
    Strategy(
        "default",
        "hpsearch's default search without its confirm stage (confirm = false): TPE, median "
        "pruner from epoch 3, three start points at the optimizer's usual lr (x1, x10, x0.1) "
        "and init scale 1",
    ),
    Strategy(
        "default+confirm",
        "the default's search cut short so that its 3 leading configurations, evaluated "
        "again up to 3 times each on fresh seeds and reshuffled train/validation splits "
        "(hpsearch's confirm stage, a race), fit in the epochs `default` spent on the same "
        "task and seed; chosen by the mean of the re-evaluations",
        confirm=(),
    ),
    Strategy(
        "rounds-3",
        "the default in 3 narrowed rounds of 34 trials (hpsearch run --rounds 3), the same "
        "trial budget as one study",
        n_trials=34,
        rounds=3,
    ),
    Strategy(
        "reproducible",
        "the default as a reproducible search (hpsearch run --reproducible: trial n "
        "learns only from trials n - lag and earlier, lag 8 by default, so any number of "
        "workers finds the same trials); the same sampler, pruner and start points",
        reproducible=True,
    ),
    Strategy(
        "book-ranges-random-100",
        "as random-100, on the book's ranges (lr 1e-6..1e-2, weight decay 1e-8..1e-4)",
        sampler="random",
        pruner="none",
        start_at_defaults=False,
        epoch_share=None,
        params=BOOK_RANGES,
        tasks=("book",),
    ),
    Strategy(
        "book-ranges-default",
        "as default, on the book's ranges (the optimum lies past their lr edge)",
        params=BOOK_RANGES,
        tasks=("book",),
    ),
    Strategy(
        "book-ranges-rounds-3",
        "as rounds-3, on the book's ranges: narrowing must extend lr past its edge",
        n_trials=34,
        rounds=3,
        params=BOOK_RANGES,
        tasks=("book",),
    ),
    # A spec change tried where the default misses the oracle (docs/search-quality.md):
    # looked at first on the development seeds 0 to 4, kept as a row to show it did not
    # hold on the report seeds.
    Strategy(
        "lr-to-0.3-default",
        "as default, with lr searched up to 0.3 instead of 1 (a spec change tried for "
        "batch-norm nets trained with SGD)",
        params={
            "lr": {"low": 1e-5, "high": 0.3, "log": True},
            "weight_decay": {"low": 1e-8, "high": 1e-2, "log": True},
            "init_scale": {"low": 1e-2, "high": 10.0, "log": True},
        },
        tasks=("mnist-batchnorm",),
    ),
]
# Settings of the confirm stage tried against its defaults on the development seeds
# only (`--strategies NAME --first-seed 0`): not in the report's rows. More than about
# ten re-evaluations leave the book task's search too few trials at the default's
# epochs on some seeds (the spec refuses such a share).
DEVELOPMENT = [
    Strategy(
        "default+confirm-k5r2",
        "as default+confirm, re-evaluating 5 configurations up to 2 times each",
        confirm=(("top_k", 5), ("max_repeats", 2)),
    )
]
BY_NAME = {strategy.name: strategy for strategy in STRATEGIES + DEVELOPMENT}


def applies(strategy: Strategy, task: str) -> bool:
    """Whether `strategy` runs on the task named `task`."""
    return not strategy.tasks or task in strategy.tasks


def strategy_spec(task_path: Path, strategy: Strategy, seed: int, storage: str) -> StudySpec:
    """The task's spec searched by `strategy`, with `seed`, in `storage`."""
    from hpsearch import spec as spec_module

    raw = task_spec(task_path).to_dict()
    raw["name"] = f"{raw['name']}-{strategy.name}-s{seed}"
    raw["seed"] = seed
    raw["storage"] = storage
    search = raw["search"]
    search["sampler"] = strategy.sampler
    search["sampler_options"] = {}
    search["pruner"] = strategy.pruner
    search.pop("pruner_options", None)  # hpsearch's defaults for the pruner
    search["start_at_defaults"] = strategy.start_at_defaults
    search["n_trials"] = strategy.n_trials
    search["reproducible"] = strategy.reproducible
    # Every configuration of a re-evaluated race fits: the share never binds.
    search["confirm"] = (
        False if strategy.confirm is None else {"share": 1.0, **dict(strategy.confirm)}
    )
    search.pop("timeout", None)
    if strategy.params is not None:
        search["params"] = strategy.params
    return spec_module.from_dict(raw, source=f"{task_path} searched by {strategy.name}")


def epoch_cap(task_path: Path, strategy: Strategy, baseline_spent: int | None) -> float | None:
    """A strategy's epoch budget on one seed: its share of what `random-100` spent on the
    same task and seed (diverged trials end early, so that is less than 100 trials at
    full epochs), or of the full 100 x epochs when random-100 was not run."""
    if strategy.epoch_share is None:
        return None
    if baseline_spent is None:
        baseline_spent = BASELINE_TRIALS * task_spec(task_path).training.epochs
    return strategy.epoch_share * baseline_spent


def describe(strategies: list[Strategy]) -> str:
    """A Markdown list of the strategies and what each does."""
    return "\n".join(f"- `{s.name}`: {s.about}" for s in strategies)


def choose(names: str | None) -> list[Strategy]:
    """The strategies named in a comma-separated list (all when None)."""
    if names is None:
        return list(STRATEGIES)
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown strategies {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [BY_NAME[name] for name in wanted]


def catalogue_order(name: str) -> int:
    """A strategy's place in the catalogue (retired ones last), for tables."""
    names = [s.name for s in STRATEGIES]
    return names.index(name) if name in names else len(names)


def from_record(stored: list[dict[str, Any]]) -> list[Strategy]:
    """The strategies a results file lists: today's entries for those in the catalogue
    (their descriptions may have been reworded since), the stored ones for the rest."""
    names = {f.name for f in fields(Strategy)}
    return [
        BY_NAME.get(s["name"])
        or Strategy(**{k: v for k, v in s.items() if k in names} | {"tasks": tuple(s["tasks"])})
        for s in stored
    ]
