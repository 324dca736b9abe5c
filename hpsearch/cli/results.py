"""The subcommands that read a finished study: `final` (retrain the best configuration,
one test evaluation), `trials` (a table or CSV), `report` (figures and report.md) and
`dashboard` (optuna-dashboard); and report_table, the best trials as printed after a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hpsearch.cli.common import (
    add_code_option,
    add_existing_study_option,
    existing_study,
    open_existing,
    trusted_code,
)
from hpsearch.errors import HpsearchError
from hpsearch.spec import DEFAULT_STORAGE
from hpsearch.storage import storage_place

REPORTS = Path("reports")  # report's default folder holds one folder per study

if TYPE_CHECKING:
    import optuna


def report_table(study: optuna.Study, top: int = 10) -> str:
    """The best completed feasible trials (with several objectives, the Pareto front
    first): params, values, epochs, seconds."""
    from hpsearch import records

    objectives = records.objectives_of(study)
    trials = study.get_trials(deepcopy=False)
    ranked = records.ranked(trials, objectives)
    complete = sum(t.state.name == "COMPLETE" and not records.is_confirmation(t) for t in trials)
    confirmed = records.configurations(trials) if len(objectives) == 1 else {}
    if not ranked:
        return "no completed feasible trials" if complete else "no completed trials"
    shown = ranked[:top]
    if len(objectives) > 1:
        front = len(records.pareto_front(ranked, objectives))
        title = (
            f"{len(shown)} of {len(ranked)} completed feasible trials by Pareto front "
            f"(the front holds {front}; {_directions(objectives)}):"
        )
    else:
        first = objectives[0]
        title = f"{first.label} ({first.better}): best {len(shown)} of {complete} completed trials:"
    if len(ranked) < complete:
        title = f"{complete - len(ranked)} trials outside the constraints left out; {title}"
    if confirmed:
        n = sum(c.n for c in confirmed.values())
        title += (
            f"\n{len(confirmed)} leading configurations were evaluated again ({n} runs); "
            f"chosen by the mean of those runs (re-eval; se its standard error over n): "
            f"trial {ranked[0].number}"
        )
    return title + "\n" + _table(shown, objectives, len(objectives) > 1, confirmed)


def _directions(objectives) -> str:
    return ", ".join(f"{m.short}: {m.better}" for m in objectives)


def _table(trials, objectives, front_column: bool = False, confirmed=None) -> str:
    import pandas as pd

    from hpsearch import records

    fronts = dict(
        zip(
            (t.number for t in trials),
            records.front_ranks(trials, objectives) if front_column else [],
            strict=False,
        )
    )
    columns = [m.short for m in objectives]
    rows = [
        {"trial": t.number}
        | {name: value for name, value in t.params.items()}
        | dict(zip(columns, t.values, strict=True))
        | ({"front": fronts[t.number]} if front_column else {})
        | (_confirmed_columns(confirmed.get(t.number)) if confirmed else {})
        | {
            "epochs": t.user_attrs.get(records.EPOCHS_RUN),
            "seconds": t.user_attrs.get(records.SECONDS),
        }
        for t in trials
    ]
    table = pd.DataFrame(rows)
    formats = {
        name: (lambda v: f"{v:.3g}")
        for name in table.columns
        if name not in ("trial", *columns, "epochs", "seconds")
        and pd.api.types.is_float_dtype(table[name])
    }
    formats |= {name: records.value_text for name in columns} | {"seconds": "{:.2f}".format}
    if confirmed:
        formats |= {
            "re-eval": records.value_text,
            "se": "{:.4f}".format,
            "n": lambda v: f"{v:.0f}" if v else "",
        }
    return table.to_string(index=False, formatters=formats, na_rep="")


def _confirmed_columns(found) -> dict:
    """A trial's re-evaluations, as the results table shows them (blank when none)."""
    from hpsearch import records

    shown = {"confirmed_mean": "re-eval", "confirmed_se": "se", "confirmed_n": "n"}
    return {shown[name]: value for name, value in records.confirmed_values(found).items()}


def add_final_parser(commands: argparse._SubParsersAction) -> None:
    final = commands.add_parser(
        "final",
        help="retrain the best configuration on several seeds; evaluate it on the test split",
        description=(
            "Retrain the study's best configuration (in its objective's direction, inside "
            "its constraints) on train + validation for the full epoch count, on several "
            "seeds, and evaluate each on the held-out test split. Each objective's mean test "
            "value is stored in the study (test_accuracy, test_val_loss, ...), every result "
            "in 'finals'; the test split is meant to be read once, so a second look needs "
            "--again. A study of several objectives has no single best: give --trial N or "
            "--pick RULE."
        ),
    )
    add_existing_study_option(final)
    final.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    chosen = final.add_mutually_exclusive_group()
    chosen.add_argument(
        "--trial", type=int, default=None, help="this completed trial (default: the best)"
    )
    chosen.add_argument(
        "--pick",
        metavar="RULE",
        help="choose by a rule on the objectives, e.g. 'val_accuracy>=0.9, then min "
        "train_seconds' (filters, then the objective that decides)",
    )
    final.add_argument(
        "--seeds",
        type=int,
        default=5,
        metavar="N",
        help="retrain N times with other random draws and report the mean test value, "
        "its 95%% interval and range (default 5; one retraining is one draw)",
    )
    final.add_argument(
        "--again",
        action="store_true",
        help="look at the test split once more although it was evaluated before (every "
        "result is kept; each look makes the score more optimistic)",
    )
    final.add_argument(
        "--ensemble",
        action="store_true",
        help="also score the retrainings' averaged class probabilities, the model a user "
        "would deploy (the built-in network)",
    )
    add_code_option(final)
    final.set_defaults(handler=_final)


def _final(args: argparse.Namespace) -> int:
    from hpsearch.records import value_text
    from hpsearch.search.final import final

    code = trusted_code(args)
    args.study = existing_study(args.storage, args.study)

    def said(repeat: int, seeds: int, values) -> None:
        if seeds > 1:  # a retraining takes as long as a trial's full epochs: say each
            tested = (
                "diverged"
                if values is None
                else ", ".join(f"{m.test_label} {value_text(v)}" for m, v in values.items())
            )
            print(f"retraining {repeat + 1} of {seeds}: {tested}", file=sys.stderr)

    result = final(
        args.study,
        args.storage,
        args.trial,
        code,
        pick=args.pick,
        seeds=args.seeds,
        again=args.again,
        ensemble=args.ensemble,
        on_seed=said,
    )
    params = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.params.items()
    )
    chosen = (
        "trial"
        if args.trial is not None
        else f"trial picked by {args.pick!r}:"
        if args.pick is not None
        else "chosen trial"
        if result.reevaluated is not None
        else "best trial"
    )
    print(f"{chosen} {result.trial_number}: {params}")
    for metric in result.objectives:
        validation = result.validation_values[metric.name]
        print(f"{metric.label} {value_text(validation)} (during the search; {metric.better})")
        again = result.reevaluated if metric is result.metric else None
        if again is not None:
            error = again["standard_error"]
            print(
                f"{metric.label} {value_text(again['mean'])}"
                + ("" if error is None else f" +- {value_text(error)}")
                + f" (mean of {again['n']} re-evaluations, the value it was chosen by)"
            )
        print(f"{metric.test_label} {_test_text(result, metric.name)} {result.how}")
    if result.diverged:
        print(f"{result.diverged} of {args.seeds} retrainings diverged: not in the mean")
    if result.ensemble is not None:
        print(
            f"ensemble of the {result.seeds} retrainings (averaged probabilities): test "
            f"accuracy {value_text(result.ensemble['test_accuracy'])}, test cross-entropy "
            f"{value_text(result.ensemble['test_loss'])}"
        )
    looks = "once" if result.looks == 1 else f"{result.looks} times, this look included"
    attrs = ", ".join(repr(m.test_attr) for m in result.objectives)
    print(
        f"stored with the study (user attrs {attrs} and 'finals'); its test split has been "
        f"evaluated {looks}"
    )
    return 0


def _test_text(result, name: str) -> str:
    """'0.9284 +- 0.0031 (5 seeds; 0.9250..0.9320)', or the one value of one seed."""
    from hpsearch.records import value_text

    runs = result.test_runs[name]
    mean = value_text(result.test_values[name])
    if len(runs) == 1:
        return f"{mean} (1 seed)"
    low, high = result.interval(name)
    half = (high - low) / 2
    return (
        f"{mean} +- {value_text(half)} ({len(runs)} seeds; "
        f"{value_text(min(runs))}..{value_text(max(runs))})"
    )


def add_trials_parser(commands: argparse._SubParsersAction) -> None:
    trials = commands.add_parser(
        "trials",
        help="print a study's trials as a table, or write them as CSV",
        description=(
            "One row per trial of any study in the database, hpsearch's or plain "
            "Optuna's: number, state, value, parameters, epochs run, seconds."
        ),
    )
    add_existing_study_option(trials)
    trials.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    trials.add_argument("--csv", type=Path, help="write CSV to this file instead of printing")
    trials.add_argument(
        "--compare",
        metavar="OTHER",
        help="instead of listing, check that study OTHER has the same trials: state, "
        "parameters, value and curve to the last digit, epochs run (exit 1 if not)",
    )
    trials.add_argument(
        "--compare-storage", metavar="URL", help="OTHER's database (default: --storage)"
    )
    trials.add_argument(
        "--pareto",
        action="store_true",
        help="only the Pareto front of a study of several objectives (the completed, "
        "feasible trials no other one beats in every objective)",
    )
    trials.add_argument(
        "--importance",
        nargs="?",
        const="ped-anova",
        metavar="EVALUATOR",
        help="instead of listing, rank the parameters by how much they matter, per "
        "objective: ped-anova (default; what the good trials share) or fanova (what moves "
        "the value over the whole space)",
    )
    trials.set_defaults(handler=_trials)


def _trials(args: argparse.Namespace) -> int:
    args.study = existing_study(args.storage, args.study)
    from hpsearch.analysis.frames import trials_frame
    from hpsearch.storage import study_storage
    from hpsearch.storage.studies import load_existing_study

    study = load_existing_study(args.study, args.storage)
    if args.compare is not None:
        other_storage = args.compare_storage or args.storage
        other = load_existing_study(existing_study(other_storage, args.compare), other_storage)
        return _compare(study, other)
    if args.importance is not None:
        from hpsearch.analysis.importance import importance_frame, importance_text
        from hpsearch.search.work import quiet_optuna

        quiet_optuna()  # the evaluators' in-memory study would log its creation
        print(importance_text(importance_frame(study, args.importance)))
        return 0
    # The value is `value` here, in the CSV and in trials_frame alike; the first line
    # says what it measures (Optuna's own trials_dataframe() calls it value_<metric>).
    frame = trials_frame(study_storage(study), args.study)  # the storage opened once
    objectives = frame.attrs["objectives"]
    if args.pareto:
        if len(objectives) < 2:
            raise HpsearchError(
                f"study {args.study!r} has one objective ({objectives[0].name}): its best "
                "trial is its front; hpsearch trials lists every trial"
            )
        frame = frame[frame["front"] == 0].sort_values(
            "value", ascending=not objectives[0].maximized
        )
    if args.csv is not None:
        try:
            frame.to_csv(args.csv, index=False)
        except OSError as exc:
            raise HpsearchError(f"cannot write {args.csv}: {exc.strerror}") from None
        print(f"{len(frame)} trials of {args.study!r} written to {args.csv}")
    else:
        import pandas as pd

        for index, metric in enumerate(objectives):
            column = "value" if len(objectives) == 1 else f"value_{metric.name}"
            print(
                f"{column}: {metric.label} (metric {metric.name!r}, {metric.direction}d: "
                f"{metric.better})"
            )
            if index == 0 and len(objectives) > 1:
                print(f"value: the same as {column}, the first objective")
        if args.pareto:
            print(f"Pareto front: {len(frame)} trials")
        with pd.option_context("display.max_rows", None, "display.width", 200):
            print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def _compare(study: optuna.Study, other: optuna.Study) -> int:
    import pandas as pd

    from hpsearch.analysis.compare import differences

    ours, theirs = study.get_trials(deepcopy=False), other.get_trials(deepcopy=False)
    found = differences(ours, theirs)
    names = f"{study.study_name!r} and {other.study_name!r}"
    if found.empty:
        compared = sum(t.state.name != "FAIL" for t in ours)  # FAIL trials hold no result
        print(
            f"{names} agree: {compared} trials with the same state, parameters, value and "
            "curve to the last digit, and epochs run"
        )
        return 0
    trials = found["number"].nunique()
    print(f"{names} differ in {len(found)} fields of {trials} trials (first 20):")
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(found.head(20).to_string(index=False))
    return 1


def add_report_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="write a study's figures (PNG) and report.md with the narrowing table",
        description=(
            "Write a study's figures as PNGs (the best trials' curves, the value over the "
            "searched ranges, the ranges of each round, which parameters matter, and the "
            "Pareto front of a study of several objectives) and report.md, which shows "
            "them with the trial counts, the best trial in the objective's direction and "
            "the narrowing table of the best trials."
        ),
    )
    add_existing_study_option(report)
    report.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    report.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"folder for the report (default: ./{REPORTS}/STUDY)",
    )
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    args.study = existing_study(args.storage, args.study)  # before matplotlib's import
    from hpsearch.analysis.report import write_report
    from hpsearch.search.work import quiet_optuna
    from hpsearch.spec.names import file_name

    quiet_optuna()  # parameter importance's in-memory study would log its creation
    out = args.out if args.out is not None else REPORTS / file_name(args.study)
    report = write_report(args.study, args.storage, out)
    for path in report.figures:
        print(f"figure: {path}")
    print(f"report: {report.markdown}")
    return 0


def add_dashboard_parser(commands: argparse._SubParsersAction) -> None:
    dashboard = commands.add_parser(
        "dashboard",
        help="serve optuna-dashboard for the database on 127.0.0.1",
        description=(
            "Serve optuna-dashboard for every study in the database, on this machine "
            "only (127.0.0.1), until Ctrl-C. Needs the dashboard extra: "
            "pip install 'hpsearch[dashboard]'."
        ),
    )
    dashboard.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    dashboard.add_argument("--port", type=int, default=8080, help="port")
    dashboard.set_defaults(handler=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    storage = open_existing(args.storage)
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise HpsearchError(
            "optuna-dashboard is not installed: pip install 'hpsearch[dashboard]'"
        ) from None
    print(
        f"optuna-dashboard for {storage_place(args.storage)} at http://127.0.0.1:{args.port}/ "
        "(Ctrl-C stops it)",
        flush=True,
    )
    try:
        run_server(storage, host="127.0.0.1", port=args.port)
    except OSError as exc:
        raise HpsearchError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror}") from None
    return 0
