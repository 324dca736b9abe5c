"""Rounds of range narrowing: a finished study's best region becomes the next study's
search space, written as a spec file, linked to its parent in the database, warm
started with the parent's trials that lie inside it, and run.

Each round is its own Optuna study (changing the ranges of a running study degrades
TPE); the lineage is read back from study user attrs `round`, `parent` and `ranges`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from hpsearch import records
from hpsearch import spec as spec_module
from hpsearch.records import VAL_ACCURACY, Metric, objectives_of, spec_objectives, stored_spec
from hpsearch.search.runner import RunResult, run
from hpsearch.spec import StudySpec
from hpsearch.spec.names import file_name
from hpsearch.storage import HEARTBEAT_SECONDS, url_without_password
from hpsearch.storage.studies import load_existing_study

if TYPE_CHECKING:
    from hpsearch.analysis.narrowing import Narrowing

logger = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 0.002  # what a round must add to its parent's best to earn the next one


@dataclass
class NextRound:
    narrowing: Narrowing
    spec: StudySpec


def round_name(name: str, round_number: int) -> str:
    """mnist-lr-wd-init -> mnist-lr-wd-init-r2 -> mnist-lr-wd-init-r3."""
    base = re.sub(r"-r\d+$", "", name)
    return f"{base}-r{round_number}"


def next_round(
    study_name: str,
    storage: str,
    *,
    top: float = 0.2,
    margin: float = 0.1,
    bootstrap: int = 0,
    n_trials: int | None = None,
) -> NextRound:
    """Narrow a finished study into the spec of its next round (nothing is written)."""
    # pandas and the evidence tests only here: a run of one round never narrows, and
    # every `hpsearch run` and worker process would pay for them at start.
    from hpsearch.analysis.frames import trials_frame
    from hpsearch.analysis.narrowing import narrow

    parent_spec = stored_spec(load_existing_study(study_name, storage))
    narrowing = narrow(
        trials_frame(storage, study_name),
        parent_spec.search.params,
        own_limits=parent_spec.model.shape.ranges_bind,
        top=top,
        margin=margin,
        bootstrap=bootstrap,
        seed=parent_spec.seed,
    )
    search = dataclasses.replace(
        parent_spec.search,
        params=narrowing.params,
        n_trials=n_trials if n_trials is not None else parent_spec.search.n_trials,
    )
    child = dataclasses.replace(
        parent_spec,
        name=round_name(parent_spec.name, parent_spec.round + 1),
        round=parent_spec.round + 1,
        parent=study_name,
        storage=storage,
        search=search,
    )
    # Through from_dict, so the written spec is validated exactly like a user's file.
    child = spec_module.from_dict(child.to_dict(), source=f"round {child.round} of {study_name}")
    return NextRound(narrowing, child)


def write_spec(next_spec: StudySpec, narrowing: Narrowing, folder: Path) -> Path:
    """studies/NAME-rK.toml, with the narrowing table as its header comment. The file is
    named after the study (made safe: it lands in `folder` whatever the name), and its
    storage URL holds no password."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_name(next_spec.name)}.toml"
    written = dataclasses.replace(next_spec, storage=url_without_password(next_spec.storage))
    header = (
        f"Round {next_spec.round} of {next_spec.parent}, written by hpsearch narrow.\n"
        f"Ranges from {best_trials_text(narrowing, spec_objectives(next_spec))}:\n\n"
        + narrowing.table().to_string(index=False)
        + "\n"
    )
    if written.storage != next_spec.storage:
        header += (
            "\nThe storage URL is written without its password: give it with PGPASSWORD or "
            "~/.pgpass, or the whole URL with --storage.\n"
        )
    path.write_text(spec_module.dumps(written, header), encoding="utf-8")
    return path


def best_trials_text(narrowing: Narrowing, objectives: tuple[Metric, ...]) -> str:
    """'the best 6 of 30 completed trials (best validation loss 0.3012; lower is
    better)', or for several objectives the fronts they were taken from."""
    first = objectives[0]
    if len(objectives) > 1:
        names = ", ".join(f"{m.name} {m.better}" for m in objectives)
        return (
            f"the first Pareto fronts' {narrowing.top_trials} of {narrowing.completed} "
            f"completed feasible trials ({names})"
        )
    return (
        f"the best {narrowing.top_trials} of {narrowing.completed} completed trials (best "
        f"{first.label} {narrowing.best_value:.4f}; {first.better})"
    )


def note_markdown(
    narrowing: Narrowing, parent: str, child: str, objectives: tuple[Metric, ...] = (VAL_ACCURACY,)
) -> str:
    """The narrowing table as the Markdown note the dashboard shows on both studies."""
    lines = [
        f"## Range narrowing: {parent} -> {child}",
        "",
        f"From {best_trials_text(narrowing, objectives)} of `{parent}` (top "
        f"{narrowing.top:.0%}, margin {narrowing.margin:.0%} of the old width).",
        "",
        narrowing.markdown(),
    ]
    edges = narrowing.at_edge
    if edges:
        lines += [
            "",
            "At the edge (the optimum may lie outside the old range, so that side was "
            "extended): "
            + ", ".join(f"{name} ({'/'.join(sides)})" for name, sides in edges.items()),
        ]
    return "\n".join(lines) + "\n"


def save_notes(storage: str, narrowing: Narrowing, parent: str, child: str) -> bool:
    """Put the note on the parent and child studies when optuna-dashboard is installed."""
    try:
        from optuna_dashboard import save_note
    except ImportError:
        logger.info("optuna-dashboard is not installed: no dashboard note")
        return False
    studies = []
    for name in (parent, child):
        try:
            studies.append(optuna.load_study(study_name=name, storage=storage))
        except KeyError:
            continue
    if not studies:
        return False
    body = note_markdown(narrowing, parent, child, objectives_of(studies[0]))
    for study in studies:
        save_note(study, body)
    return True


@dataclass
class RoundResult:
    spec: StudySpec
    result: RunResult
    best_value: float | None
    narrowing: Narrowing | None  # how this round's ranges came from its parent


def best_value(study: optuna.Study) -> float | None:
    """The value of a single-objective study's choice (None with several): the mean of
    its re-evaluations where the confirm stage ran, else its best feasible value."""
    trials = study.get_trials(deepcopy=False)
    ranked = records.ranked(trials, objectives_of(study))
    if not ranked or len(ranked[0].values) != 1:
        return None
    found = records.confirmed(trials, ranked[0].number)
    return float(ranked[0].values[0] if found is None else found.mean)


def run_rounds(
    spec: StudySpec,
    rounds: int,
    *,
    workers: int = 1,
    heartbeat: int | None = HEARTBEAT_SECONDS,
    retry_for: float | None = None,
    top: float = 0.2,
    margin: float = 0.1,
    tolerance: float = DEFAULT_TOLERANCE,
    spec_folder: Path | None = None,
    on_progress: Callable[[int, float | None], None] | None = None,
    on_round_start: Callable[[StudySpec], None] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
) -> list[RoundResult]:
    """Run `spec`, then up to `rounds - 1` narrowed rounds, each warm started from its
    parent; stop early when a round improves its parent's best value (in the objective's
    direction) by no more than `tolerance`. With several objectives every round runs."""
    results: list[RoundResult] = []
    current, narrowing = spec, None
    for index in range(rounds):
        if on_round_start is not None:
            on_round_start(current)
        outcome = run(
            current,
            workers=workers,
            on_progress=on_progress,
            heartbeat=heartbeat,
            retry_for=retry_for,
        )
        if narrowing is not None:
            save_notes(current.storage, narrowing, current.parent, current.name)
        round_result = RoundResult(current, outcome, best_value(outcome.study), narrowing)
        results.append(round_result)
        if on_round is not None:
            on_round(round_result)
        parent_best = results[-2].best_value if index > 0 else None
        if parent_best is not None and round_result.best_value is not None:
            metric = spec_objectives(current)[0]
            gain = metric.goodness(round_result.best_value) - metric.goodness(parent_best)
            if gain <= tolerance:
                logger.info(
                    "round %d gained %.4f <= %.4f: stopping", current.round, gain, tolerance
                )
                break
        if index == rounds - 1:
            break
        following = next_round(current.name, current.storage, top=top, margin=margin)
        narrowing = following.narrowing
        current = dataclasses.replace(following.spec, code=current.code)
        if spec_folder is not None:
            path = write_spec(current, narrowing, spec_folder)
            current = dataclasses.replace(current, source=str(path))
    return results
