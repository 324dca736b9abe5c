"""Task files: ordinary study specs (bench/tasks/*.toml unless named) whose data, model,
training and search space the strategies search. Here they are found and validated,
identified by a key of what they measure, and given the file their oracle is kept in."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from bench import ROOT

if TYPE_CHECKING:
    from hpsearch.spec import StudySpec

TASKS = ROOT / "bench" / "tasks"


def task_spec(path: Path) -> StudySpec:
    """A task file, loaded and validated as any study spec."""
    from hpsearch import spec as spec_module

    return spec_module.load(path)


def find(paths: list[Path] | None) -> list[Path]:
    """The task files to run, resolved: `paths`, or every one in bench/tasks. Raises
    ValueError with a one-line message when there is none or one is not a valid spec."""
    paths = paths or sorted(TASKS.glob("*.toml"))
    if not paths:
        raise ValueError(f"no task specs in {TASKS}")
    for path in paths:
        try:
            task_spec(path)
        except Exception as exc:  # a spec error is one line, as in the CLI
            raise ValueError(str(exc)) from exc
    return [path.resolve() for path in paths]


def task_key(path: Path) -> str:
    """What identifies a task's experiment: its data, model, training and space."""
    experiment = task_spec(path).experiment()
    experiment.pop("seed", None)
    return hashlib.sha256(json.dumps(experiment, sort_keys=True).encode()).hexdigest()[:12]


def oracle_path(out: Path, task: Path) -> Path:
    """The file in the output folder `out` that keeps the task's oracle; its name holds
    the task's key, so an edited task gets an oracle of its own."""
    return out / f"oracle-{task.stem}-{task_key(task)}.json"
