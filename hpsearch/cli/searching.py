"""The subcommands that run trials: `run` (a study, or several narrowing rounds, from a
spec on this machine), `submit` (a study in a shared database, no trials) and `worker`
(trials of submitted studies until their budgets are used)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from hpsearch.cli.common import (
    DEFAULT_SPEC,
    TrialBar,
    add_code_option,
    add_heartbeat_option,
    add_retry_option,
    add_study_option,
    best_text,
    command,
    load_spec,
    trusted_code,
)
from hpsearch.cli.results import report_table
from hpsearch.errors import HpsearchError
from hpsearch.spec import DEFAULT_STORAGE, with_overrides
from hpsearch.stop import Interrupted
from hpsearch.storage import absolute_url, display_url, storage_place

TRIALS_HELP = (
    "total finished trials the study should have, counting those it has already: running "
    "again continues up to it (Optuna's n_trials is an increment: that many more)"
)


def add_run_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run (or continue) a study from a spec file",
        description=(
            "Run a study: Optuna samples the spec's search space, every trial trains "
            "hpsearch's MultiLayerNet (or calls your own training function, [model] kind = "
            '"python") and is judged on the validation split. Running a study again '
            "continues it up to its trial budget."
        ),
    )
    run.add_argument(
        "spec",
        nargs="?",
        type=Path,
        default=None,
        help=f"study spec (TOML) (default: {DEFAULT_SPEC} if it exists, else the built-in "
        "defaults)",
    )
    run.add_argument("--trials", type=int, help=f"{TRIALS_HELP} (default: the spec's)")
    run.add_argument("--epochs", type=int, help="epochs per trial (default: the spec's)")
    run.add_argument(
        "--storage", help=f"database URL (default: the spec's, else {DEFAULT_STORAGE})"
    )
    add_study_option(run, "study name (default: the spec's name)")
    run.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes, one BLAS thread each (default: the number of cores, "
        f"{os.cpu_count() or 1} here, where scikit-learn's n_jobs and Optuna's n_jobs "
        "default to 1)",
    )
    run.add_argument(
        "--seed", type=int, help="seed of the split, sampler and trials (default: the spec's)"
    )
    run.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop starting trials after SECONDS (default: the spec's, none unless it says)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_reproducible_option(run)
    add_heartbeat_option(run)
    add_retry_option(run)
    add_code_option(run, "; the spec file's folder is always one")
    run.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run this many range-narrowing rounds, each its own study",
    )
    run.add_argument(
        "--top",
        type=float,
        default=0.2,
        help="narrowing: fraction of the completed trials that are best",
    )
    run.add_argument(
        "--spec-folder",
        type=Path,
        default=None,
        help="where rounds write their specs (default: the spec's folder)",
    )
    run.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="stop rounds when a round improves the best value (in the objective's "
        "direction) by no more than this (default: 0.002; several objectives: never)",
    )
    run.set_defaults(handler=_run)


def _round_best(done) -> str:
    """'best val loss 0.3012', or the size of a front of several objectives."""
    from hpsearch import records

    objectives = records.objectives_of(done.result.study)
    if len(objectives) > 1:
        trials = done.result.study.get_trials(deepcopy=False)
        return f"Pareto front of {len(records.pareto_front(trials, objectives))} trials"
    best = "none" if done.best_value is None else f"{done.best_value:.4f}"
    return f"best {objectives[0].short} {best} ({objectives[0].better})"


def _run(args: argparse.Namespace) -> int:
    from hpsearch.search.confirm import Spending
    from hpsearch.search.rounds import DEFAULT_TOLERANCE, run_rounds
    from hpsearch.search.work import quiet_optuna

    quiet_optuna()
    if args.rounds < 1:
        raise HpsearchError(f"--rounds must be at least 1, got {args.rounds}")
    spec = with_overrides(
        load_spec(args.spec),
        name=args.study,
        seed=args.seed,
        storage=args.storage,
        n_trials=args.trials,
        epochs=args.epochs,
        timeout=args.timeout,
        reproducible=args.reproducible or None,
    )
    folder = args.spec.parent if args.spec is not None else DEFAULT_SPEC.parent
    spec = dataclasses.replace(spec, code=trusted_code(args, spec, folder))
    print(f"study {spec.name!r} from {spec.source} in {storage_place(spec.storage)}")
    bar = TrialBar(args.no_progress)
    if args.spec_folder is not None:
        folder = args.spec_folder

    def on_round(done) -> None:
        bar.finish()
        if done.narrowing is not None:
            print(f"\nround {done.spec.round}: {done.spec.name} (narrowed from {done.spec.parent})")
            print(done.narrowing.table().to_string(index=False))
        print(report_table(done.result.study))
        print(
            f"{done.result.finished_now} finished trials "
            f"({done.result.finished_now - done.result.finished_before} new); "
            f"{best_text(done.result.study)}"
        )
        spent = Spending.of(done.result.study.get_trials(deepcopy=False)).text()
        if spent:
            print(spent)

    try:
        results = run_rounds(
            spec,
            args.rounds,
            workers=args.workers,
            heartbeat=args.heartbeat,
            retry_for=args.retry_for,
            top=args.top,
            tolerance=DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance,
            spec_folder=folder,
            on_progress=bar.update,
            on_round_start=bar.start,
            on_round=on_round,
        )
    finally:
        bar.close()
    if len(results) > 1:
        print("\nrounds:")
        for done in results:
            print(f"  round {done.spec.round}  {done.spec.name}  {_round_best(done)}")
        if len(results) < args.rounds:
            print("  stopped early: the last round gained no more than the tolerance")
    print(f"database: {storage_place(spec.storage)}")
    print(f"dashboard: {_dashboard_command(spec.storage)}")
    return 0


def _dashboard_command(url: str) -> str:
    if url == DEFAULT_STORAGE:  # relative to this folder, where the hint is read
        return command("dashboard")
    return command("dashboard", "--storage", absolute_url(url)) + _password_note(url)


def _password_note(url: str) -> str:
    return " (put the password back in)" if display_url(url) != url else ""


def add_submit_parser(commands: argparse._SubParsersAction) -> None:
    submit = commands.add_parser(
        "submit",
        help="create a study in a shared database for workers to run",
        description=(
            "Create the study (spec checked, data loaded once to check it) and store its "
            "spec in the database, without running trials; start workers with "
            "'hpsearch worker --storage URL' on any machine that reaches the database."
        ),
    )
    submit.add_argument("spec", type=Path, help="study spec (TOML)")
    submit.add_argument(
        "--storage", help=f"database URL (default: the spec's, else {DEFAULT_STORAGE})"
    )
    add_study_option(submit, "study name (default: the spec's name)")
    submit.add_argument("--trials", type=int, help=f"{TRIALS_HELP} (default: the spec's)")
    add_reproducible_option(submit)
    add_code_option(submit, "; the spec file's folder is always one")
    submit.set_defaults(handler=_submit)


def add_reproducible_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reproducible",
        action="store_true",
        help=(
            "the same trials and numbers with any number of workers: trial n is sampled "
            "from trials n - lag and earlier (search.lag, default 8), waiting for them"
        ),
    )


def _submit(args: argparse.Namespace) -> int:
    from hpsearch.search.distributed import submit
    from hpsearch.search.work import quiet_optuna
    from hpsearch.trials import kind_of

    quiet_optuna()
    spec = with_overrides(
        load_spec(args.spec),
        name=args.study,
        storage=args.storage,
        n_trials=args.trials,
        reproducible=args.reproducible or None,
    )
    spec = dataclasses.replace(spec, code=trusted_code(args, spec, args.spec.parent))
    study, budget, before = submit(spec)
    changed = "" if before is None else f" (budget set to {budget.n_trials}, was {before})"
    print(
        f"study {study.study_name!r} in {storage_place(spec.storage)}: "
        f"{budget.finished} of {budget.n_trials} trials finished{changed}"
    )
    print(
        "start workers with: "
        + command("worker", "--storage", absolute_url(spec.storage), "--study", study.study_name)
        + _password_note(spec.storage)
        + (" --code DIR (the folder of its entry's module)" if kind_of(spec).imports_code else "")
    )
    return 0


def add_worker_parser(commands: argparse._SubParsersAction) -> None:
    worker = commands.add_parser(
        "worker",
        help="run trials of the studies in a database until their budgets are used",
        description=(
            "Join a study made with 'hpsearch submit' (or 'hpsearch run') from this "
            "machine: run its trials until the budget, shared with every other worker "
            "through the database, is used. Without --study, works through every study "
            "with budget left. Ctrl-C or SIGTERM: the running trial is marked FAIL and "
            "the worker exits 0."
        ),
    )
    worker.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    add_study_option(worker, "study name (default: every study with budget left)")
    worker.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes on this machine, one BLAS thread each (default: 1; `run` "
        "uses every core)",
    )
    add_heartbeat_option(worker)
    add_retry_option(worker)
    worker.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_code_option(worker)
    worker.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    from hpsearch.search.confirm import Spending
    from hpsearch.search.distributed import work
    from hpsearch.search.work import quiet_optuna

    quiet_optuna()
    code = trusted_code(args)
    bar = TrialBar(args.no_progress)

    def on_study(spec) -> None:
        bar.finish()
        print(f"study {spec.name!r} in {storage_place(args.storage)}", flush=True)
        bar.start(spec)

    try:
        results = work(
            args.storage,
            args.study,
            workers=args.workers,
            heartbeat=args.heartbeat,
            retry_for=args.retry_for,
            on_study=on_study,
            on_progress=bar.update,
            code=code,
        )
    except Interrupted:
        bar.close()
        print("hpsearch: worker stopped; its running trial is marked FAIL", file=sys.stderr)
        return 0
    bar.close()
    if not results:
        if args.study:
            print(f"nothing to do: study {args.study!r} has used its trial budget")
        else:
            print(f"nothing to do: no study in {storage_place(args.storage)} has budget left")
        return 0
    for result in results:
        print(
            f"{result.study.study_name}: {result.finished_now} finished trials; "
            f"{best_text(result.study)}"
        )
        spent = Spending.of(result.study.get_trials(deepcopy=False)).text()
        if spent:
            print(spent)
    return 0
