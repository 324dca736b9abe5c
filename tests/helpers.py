"""Small specs that make study tests fast: digits, one small hidden layer, few epochs."""

import contextlib
import sqlite3
from pathlib import Path

from hpsearch import spec

TINY = """
name = "tiny"
seed = 0
[data]
name = "digits"
[model]
hidden_sizes = [32, 32]
[training]
epochs = 4
batch_size = 50
[search]
n_trials = {n_trials}
sampler = "{sampler}"
pruner = "{pruner}"
start_at_defaults = true
[search.params.lr]
low = 1e-3
high = 1.0
log = true
[search.params.weight_decay]
low = 1e-8
high = 1e-2
log = true
[search.params.init_scale]
low = 1e-2
high = 10.0
log = true
"""


def tiny_spec(
    tmp_path: Path, *, n_trials=6, sampler="tpe", pruner="none", extra="", start_at_defaults=True
):
    path = tmp_path / "tiny.toml"
    text = TINY.format(n_trials=n_trials, sampler=sampler, pruner=pruner)
    if not start_at_defaults:
        text = text.replace("start_at_defaults = true", "start_at_defaults = false")
    path.write_text(text + extra)
    db = tmp_path / "studies.db"
    return spec.load(path).with_overrides(storage=f"sqlite:///{db}")


def dump(db: Path) -> list[str]:
    """The database's whole logical content, to show it was left untouched."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return list(connection.iterdump())
