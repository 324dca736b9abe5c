"""`hpsearch report`: a study's figures as PNGs and a report.md that shows them with
the narrowing table, so the reasoning behind the next round can be read in one place."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from hpsearch import records
from hpsearch.analysis import plots
from hpsearch.analysis.frames import curves_frame, trials_frame
from hpsearch.analysis.narrowing import Narrowing, NarrowingError, narrow
from hpsearch.errors import HpsearchError
from hpsearch.records import Metric, metric_of, stored_spec
from hpsearch.storage import study_storage
from hpsearch.storage.studies import load_existing_study
from hpsearch.trials import kind_of

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
        chain.append((records.round_of(current), current.study_name, attrs.get(records.RANGES, {})))
        parent = records.parent_of(current)
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
    spec = stored_spec(study) if records.SPEC in study.user_attrs else None
    metric = metric_of(study)
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

    add("best_curves.png", plots.best_curves(curves, trials, metric))
    logs = plots.log_float_params(trials)
    pair = ["lr", "weight_decay"] if {"lr", "weight_decay"} <= set(logs) else logs[:2]
    if len(pair) == 2:
        figure = plots.value_map(trials, *pair, narrowing, metric)
        add(f"{_file_word(metric)}_{pair[0]}_{pair[1]}.png", figure)
    add("ranges_by_round.png", plots.ranges_by_round(lineage(study)))
    reference = kind_of(spec).init_reference(spec) if spec is not None else None
    if "init_scale" in trials.columns and reference is not None:
        figure = plots.value_by_init_scale(trials, *reference, metric)
        add(f"{_file_word(metric)}_init_scale.png", figure)
    report.markdown = folder / "report.md"
    report.markdown.write_text(
        _markdown(study, trials, narrowing, narrowing_note, report, metric), encoding="utf-8"
    )
    return report


def _file_word(metric: Metric) -> str:
    """What a figure's file is named after: accuracy for the network, else the metric."""
    return "accuracy" if metric.unit_interval else metric.name


def _markdown(study, trials, narrowing, narrowing_note, report, metric: Metric) -> str:
    counts = trials["state"].value_counts().to_dict()
    complete = trials[trials["state"] == "COMPLETE"]
    best = complete.nlargest(1, "value")
    lines = [
        f"# Study `{study.study_name}`",
        "",
        f"Round {records.round_of(study)}"
        + (f", narrowed from `{records.parent_of(study)}`" if records.parent_of(study) else "")
        + ". Trials: "
        + ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items()))
        + ".",
    ]
    if len(best):
        row = best.iloc[0]
        lines.append(f"Best {metric.label} {row['value']:.4f} (trial {int(row['number'])}).")
    if metric.test_attr in study.user_attrs:
        lines.append(
            f"{metric.test_label.capitalize()} of the best configuration (`hpsearch final`): "
            f"{study.user_attrs[metric.test_attr]:.4f}."
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
