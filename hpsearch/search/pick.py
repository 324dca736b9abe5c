"""Choosing one trial of a multi-objective study by a rule a person writes, such as
"val_accuracy>=0.9, then min train_seconds": filters on the trials' values, then the
one objective that decides among the trials that pass. A front has no single best
trial, so `final` asks for a rule (or a trial number) and never guesses."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from optuna.trial import FrozenTrial

from hpsearch.errors import HpsearchError
from hpsearch.records import Metric, candidates, place

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_FILTER = re.compile(r"\s*([A-Za-z_][\w.-]*)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*")
_ORDER = re.compile(r"\s*(?:then\s+)?(min|max)\s+([A-Za-z_][\w.-]*)\s*")


class PickError(HpsearchError):
    """A rule that cannot be read, or that no trial passes."""


@dataclass(frozen=True)
class Pick:
    """Filters (name, comparison, bound), then `order` ('min' or 'max') of `by`."""

    filters: tuple[tuple[str, str, float], ...]
    order: str
    by: str

    def choose(self, trials: list[FrozenTrial], objectives: tuple[Metric, ...]) -> FrozenTrial:
        """The feasible completed trial the rule picks."""
        index = {metric.name: i for i, metric in enumerate(objectives)}
        for name in [name for name, _, _ in self.filters] + [self.by]:
            if name not in index:
                raise PickError(
                    f"--pick: {name!r} is not an objective of this study ({', '.join(index)})"
                )
        passing = [
            trial
            for trial in candidates(trials)
            if all(COMPARISONS[op](trial.values[index[n]], bound) for n, op, bound in self.filters)
        ]
        if not passing:
            raise PickError(f"--pick: no completed feasible trial passes {self}")
        sign = 1.0 if self.order == "min" else -1.0
        by = index[self.by]

        def key(trial: FrozenTrial) -> tuple:
            # Ties on the deciding objective go to the trial better in the others, in
            # order (so the pick is on the front), then to the earliest.
            others = tuple(
                -metric.goodness(trial.values[i]) for i, metric in enumerate(objectives) if i != by
            )
            return (sign * trial.values[by], *others, place(trial))

        return min(passing, key=key)

    def __str__(self) -> str:
        parts = [f"{name}{op}{bound:g}" for name, op, bound in self.filters]
        parts.append(f"then {self.order} {self.by}" if parts else f"{self.order} {self.by}")
        return ", ".join(parts)


def parse_pick(rule: str) -> Pick:
    """Read "NAME>=X, NAME<Y, then min NAME": filters first, the order last."""
    clauses = [clause for clause in rule.split(",") if clause.strip()]
    if not clauses:
        raise PickError(
            "--pick: empty rule; e.g. --pick 'val_accuracy>=0.9, then min train_seconds'"
        )
    *filter_texts, last = clauses
    order = _ORDER.fullmatch(last)
    if order is None:
        raise PickError(
            f"--pick: the rule ends with 'then min NAME' or 'then max NAME', got {last.strip()!r}"
        )
    filters = []
    for text in filter_texts:
        found = _FILTER.fullmatch(text)
        if found is None:
            raise PickError(f"--pick: {text.strip()!r} is not a filter like val_accuracy>=0.9")
        name, op, bound = found.groups()
        try:
            filters.append((name, op, float(bound)))
        except ValueError:
            raise PickError(f"--pick: {bound!r} is not a number") from None
    return Pick(tuple(filters), order.group(1), order.group(2))
