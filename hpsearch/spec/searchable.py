"""The settings a search may vary: each one's section, type, bounds and sensible limits.

`SEARCHABLE` is the one table the validator checks a searched value against and range
narrowing reads to know how far it may extend a range.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpsearch.nn import ACTIVATIONS, INIT_RULES, OPTIMIZERS

MAX_HIDDEN_WIDTH = 65_536  # units in one hidden layer
MAX_HIDDEN_DEPTH = 1_000  # hidden layers


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
