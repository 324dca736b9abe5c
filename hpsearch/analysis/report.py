"""`hpsearch report`: a study's figures as PNGs and a report.md that shows them with
the narrowing table, so the reasoning behind the next round can be read in one place."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from hpsearch.analysis import plots
from hpsearch.analysis.frames import curves_frame, trials_frame
from hpsearch.analysis.narrowing import Narrowing, NarrowingError, narrow
from hpsearch.errors import HpsearchError
from hpsearch.search.study import load_existing_study, value_name
from hpsearch.spec import from_dict
from hpsearch.storage import study_storage

logger = logging.getLogger(__name__)


@dataclass
class Report:
    folder: Path
    figures: list[Path] = field(default_factory=list)
    markdown: Path | None = None


def lineage(study: optuna.Study) -> list[tuple[int, str, dict[str, Any]]]:
    """(round, name, ranges) from round 1 to this study, following `parent` attrs."""
    chain = []
    current: optuna.Study | None = study
    while current is not None:
        attrs = current.user_attrs
        chain.append((attrs.get("round", 1), current.study_name, attrs.get("ranges", {})))
        parent = attrs.get("parent")
        try:
            current = (
                optuna.load_study(study_name=parent, storage=study_storage(study))
                if parent
                else None
            )
        except KeyError:
            current = None
    return sorted(chain)


def write_report(study_name: str, storage: str, folder: Path) -> Report:
    study = load_existing_study(study_name, storage)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HpsearchError(f"cannot create report folder {folder}: {exc.strerror}") from None
    opened = study_storage(study)  # one storage: the trials are read once, then cached
    trials = trials_frame(opened, study_name)
    curves = curves_frame(opened, study_name)
    spec = from_dict(study.user_attrs["spec"]) if "spec" in study.user_attrs else None
    narrowing: Narrowing | None = None
    narrowing_note = ""
    if spec is not None:
        try:
            narrowing = narrow(trials, spec.search.params)
        except NarrowingError as exc:
            narrowing_note = f"No narrowing: {exc}."
    report = Report(folder)

    def add(name: str, figure) -> None:
        path = folder / name
        plots.save(figure, path)
        report.figures.append(path)

    python = spec is not None and spec.model.kind == "python"
    value = value_name(study)
    add("best_curves.png", plots.best_curves(curves, trials))
    logs = plots.log_float_params(trials)
    pair = ["lr", "weight_decay"] if {"lr", "weight_decay"} <= set(logs) else logs[:2]
    if len(pair) == 2:
        figure = plots.accuracy_map(trials, *pair, narrowing, value=value)
        add(f"accuracy_{pair[0]}_{pair[1]}.png", figure)
    add("ranges_by_round.png", plots.ranges_by_round(lineage(study)))
    if "init_scale" in trials.columns and spec is not None and not python:
        width = spec.model.hidden_sizes[0] if spec.model.hidden_sizes else 100
        add("accuracy_init_scale.png", plots.accuracy_by_init_scale(trials, spec.model.init, width))
    report.markdown = folder / "report.md"
    report.markdown.write_text(
        _markdown(study, trials, narrowing, narrowing_note, report, value), encoding="utf-8"
    )
    return report


def _markdown(study, trials, narrowing, narrowing_note, report, value) -> str:
    counts = trials["state"].value_counts().to_dict()
    complete = trials[trials["state"] == "COMPLETE"]
    best = complete.nlargest(1, "value")
    lines = [
        f"# Study `{study.study_name}`",
        "",
        f"Round {study.user_attrs.get('round', 1)}"
        + (
            f", narrowed from `{study.user_attrs['parent']}`"
            if study.user_attrs.get("parent")
            else ""
        )
        + ". Trials: "
        + ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items()))
        + ".",
    ]
    if len(best):
        row = best.iloc[0]
        lines.append(f"Best {value} {row['value']:.4f} (trial {int(row['number'])}).")
    if "test_accuracy" in study.user_attrs:
        lines.append(
            f"Test accuracy of the retrained best configuration: "
            f"{study.user_attrs['test_accuracy']:.4f}."
        )
    if "test_score" in study.user_attrs:
        lines.append(
            f"Test score of the best configuration (the entry's call with config.final): "
            f"{study.user_attrs['test_score']:.4f}."
        )
    lines += ["", "## Narrowing for the next round", ""]
    if narrowing is not None:
        lines += [
            f"From the best {narrowing.top_trials} of {narrowing.completed} completed trials:",
            "",
            narrowing.markdown(),
        ]
    else:
        lines.append(narrowing_note or "No stored spec: narrowing needs an hpsearch study.")
    lines += ["", "## Figures", ""]
    lines += [f"![{path.stem}]({path.name})" for path in report.figures]
    return "\n".join(lines) + "\n"
