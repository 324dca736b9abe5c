"""`hpsearch report`: a study's figures as PNGs and a report.md that shows them with
the best trials (the Pareto front, with several objectives), the narrowing table and
which parameters matter, so the reasoning behind the next round can be read in one
place."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from matplotlib.figure import Figure

from hpsearch import records
from hpsearch.analysis import plots
from hpsearch.analysis.frames import curves_frame, trials_frame
from hpsearch.analysis.importance import importance_figure, importance_frame, left_out_text
from hpsearch.analysis.narrowing import Narrowing, NarrowingError, best_first, narrow
from hpsearch.errors import HpsearchError, StudyError
from hpsearch.records import Metric, objectives_of, stored_spec, value_text
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
    """Write the study's figures and report.md into `folder`: the best trials by the
    study's objectives (the Pareto front with several), the narrowing table and which
    parameters matter. A study made by plain Optuna gets every part that needs no spec."""
    study = load_existing_study(study_name, storage)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HpsearchError(f"cannot create report folder {folder}: {exc.strerror}") from None
    opened = study_storage(study)  # one storage: the trials are read once, then cached
    trials = trials_frame(opened, study_name)
    curves = curves_frame(opened, study_name)
    spec = stored_spec(study) if records.SPEC in study.user_attrs else None
    objectives = objectives_of(study)
    metric = objectives[0]
    narrowing: Narrowing | None = None
    narrowing_note = ""
    if spec is not None:
        try:
            narrowing = narrow(trials, spec.search.params, own_limits=spec.model.shape.ranges_bind)
        except NarrowingError as exc:
            narrowing_note = f"No narrowing: {exc}."
    report = Report(folder)

    def add(name: str, figure: Figure) -> None:
        path = folder / name
        plots.save(figure, path)
        report.figures.append(path)

    add("best_curves.png", plots.best_curves(curves, trials, objectives))
    if len(objectives) > 1 and (trials["state"] == "COMPLETE").any():
        add("pareto_front.png", plots.pareto_front(trials, objectives))
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
    try:
        importance: pd.DataFrame | str = importance_frame(study)
    except StudyError as exc:
        importance = f"Not computed: {exc}."
    else:
        report.figures.append(importance_figure(importance, folder / "importance.png"))
    report.markdown = folder / "report.md"
    report.markdown.write_text(
        _markdown(study, trials, narrowing, narrowing_note, report, objectives, importance),
        encoding="utf-8",
    )
    return report


def _file_word(metric: Metric) -> str:
    """What a figure's file is named after: accuracy for the network, else the metric."""
    return "accuracy" if metric.unit_interval else metric.name


def _table(frame: pd.DataFrame) -> str:
    """A frame of formatted cells as a Markdown table."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += [
        "| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def _param(value: Any) -> str:
    """A parameter's value as a table shows it: three significant digits for a float."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _best_lines(
    trials: pd.DataFrame, objectives: tuple[Metric, ...], among: str
) -> tuple[list[str], list[str]]:
    """The summary's line on the best (the best trial with one objective, the front's
    size and each direction with several) and, with several, the front as a table."""
    ranked = best_first(trials, objectives)
    if ranked.empty:
        if (trials["state"] == "COMPLETE").any():
            return ["No completed trial inside the constraints: none is the best."], []
        return [], []
    first = objectives[0]
    if len(objectives) == 1:
        row = ranked.iloc[0]
        trial = f"trial {int(row['number'])}; {first.better}"
        return [f"Best {first.label} {value_text(row['value'])} ({trial})."], []
    front = ranked[ranked["front"] == 0]
    directions = "; ".join(f"{m.label}: {m.better}" for m in objectives)
    table = pd.DataFrame({"trial": front["number"].astype(int)})
    for m in objectives:
        table[m.short] = front[f"value_{m.name}"].map(value_text)
    for name in _param_columns(trials):
        table[name] = front[name].map(_param)
    line = (
        f"Pareto front: {len(front)} of {len(ranked)} {among}, listed by {first.label} "
        f"({directions})."
    )
    return [line], ["", _table(table)]


def _param_columns(trials: pd.DataFrame) -> list[str]:
    """The frame's parameter columns, in the order the trials set them."""
    fixed = {"number", "state", "value", "front", "epochs_run", "seconds", "diverged"}
    fixed |= {"feasible", "copied_from", "round"}
    return [
        c
        for c in trials.columns
        if c not in fixed and not c.startswith("value_") and not c.startswith("log10_")
    ]


def _importance_lines(
    importance: pd.DataFrame | str, objectives: tuple[Metric, ...], among: str
) -> list[str]:
    """The importance section: a table per objective, or why there is none."""
    lines = ["", "## Which parameters matter", ""]
    if isinstance(importance, str):
        return [*lines, importance]
    named = {m.name: m for m in objectives}
    evaluator, n_trials = importance.attrs["evaluator"], importance.attrs["n_trials"]
    lines.append(
        f"Importance by {evaluator} over {n_trials} {among} (each objective's importances "
        "sum to 1)."
        + (
            f" {left_out_text(importance).capitalize()}."
            if importance.attrs.get("left_out")
            else ""
        )
    )
    for name, rows in importance.groupby("objective", sort=False):
        lines += ["", f"### {plots.axis_label(named[str(name)])}", ""]
        shown = pd.DataFrame({"param": rows["param"], "importance": rows["importance"]})
        lines.append(_table(shown.assign(importance=shown["importance"].map("{:.3f}".format))))
    return lines


def _markdown(
    study: optuna.Study,
    trials: pd.DataFrame,
    narrowing: Narrowing | None,
    narrowing_note: str,
    report: Report,
    objectives: tuple[Metric, ...],
    importance: pd.DataFrame | str,
) -> str:
    counts = trials["state"].value_counts().to_dict()
    lines = [
        f"# Study `{study.study_name}`",
        "",
        f"Round {records.round_of(study)}"
        + (f", narrowed from `{records.parent_of(study)}`" if records.parent_of(study) else "")
        + ". Trials: "
        + ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items()))
        + ".",
    ]
    outside = int(((trials["state"] == "COMPLETE") & ~trials["feasible"].astype(bool)).sum())
    among = "completed trials" + (" inside the constraints" if outside else "")
    if outside:
        trials_word = "trial" if outside == 1 else "trials"
        lines.append(
            f"{outside} completed {trials_word} outside the constraints, never among the best."
        )
    best, front = _best_lines(trials, objectives, among)
    lines += best
    last = study.user_attrs.get(records.FINAL, {})
    evaluated = last.get("trial")
    ranked = records.ranked(study.get_trials(deepcopy=False), objectives)
    best_number = ranked[0].number if ranked and len(objectives) == 1 else None
    which = (
        "the best configuration"
        if evaluated is None or evaluated == best_number
        else f"trial {evaluated}"
    )
    looks = len(records.final_results(study))
    for metric in objectives:
        if metric.test_attr in study.user_attrs:
            runs = last.get("test_runs", {}).get(metric.name, [])
            bounds = last.get("interval", {}).get(metric.name)
            spread = (
                f" (mean of {len(runs)} retrainings; 95% interval {bounds[0]:.4f}..{bounds[1]:.4f})"
                if bounds
                else ""
            )
            lines.append(
                f"{metric.test_label.capitalize()} of {which} (`hpsearch final`): "
                f"{study.user_attrs[metric.test_attr]:.4f}{spread}."
            )
    if looks > 1:
        lines.append(f"The test split has been evaluated {looks} times; this is the newest.")
    lines += front
    lines += ["", "## Narrowing for the next round", ""]
    if narrowing is not None:
        lines += [
            f"From the best {narrowing.top_trials} of {narrowing.completed} completed trials:",
            "",
            narrowing.markdown(),
        ]
    else:
        lines.append(narrowing_note or "No stored spec: narrowing needs an hpsearch study.")
    lines += _importance_lines(importance, objectives, among)
    lines += ["", "## Figures", ""]
    lines += [f"![{path.stem}]({path.name})" for path in report.figures]
    return "\n".join(lines) + "\n"
