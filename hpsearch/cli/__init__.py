"""The `hpsearch` command. The library logs; this package is the only one that prints.

Every user-facing problem arrives here as an `HpsearchError` and leaves as one line on
stderr with exit code 2; argparse's own usage errors also exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hpsearch import __version__
from hpsearch.data import DATASETS
from hpsearch.errors import HpsearchError
from hpsearch.nn import ACTIVATIONS, INIT_RULES, OPTIMIZERS
from hpsearch.spec import DEFAULT_STORAGE
from hpsearch.stop import Interrupted
from hpsearch.storage import display_url

EXIT_USAGE = 2


def parse_hidden_sizes(text: str) -> list[int]:
    """'100x6' or '100,100,50' -> a list of layer widths."""
    try:
        if "x" in text:
            width, depth = text.split("x")
            sizes = [int(width)] * int(depth)
        else:
            sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"hidden sizes must look like 100x6 or 100,100,50, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {text!r}")
    return sizes


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train one network configuration and print its curves",
        description="Train one MultiLayerNet on a data set and print per-epoch accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--data", default="mnist-5k", help=f"one of {', '.join(DATASETS)}")
    train.add_argument(
        "--train-size", type=int, default=None, help="examples before the validation split"
    )
    train.add_argument("--validation-fraction", type=float, default=0.2)
    train.add_argument(
        "--hidden", type=parse_hidden_sizes, default=[100] * 6, help="e.g. 100x6 or 100,50"
    )
    train.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    train.add_argument("--init", choices=INIT_RULES, default="he")
    train.add_argument("--init-scale", type=float, default=1.0, help="gain on the init rule's std")
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--batchnorm", action="store_true")
    train.add_argument("--dropout", type=float, default=0.0)
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd")
    train.add_argument(
        "--lr", type=float, default=None, help="default: the book's for the optimizer"
    )
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--batch-size", type=int, default=100)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--float64", action="store_true", help="train in float64 instead of float32")
    train.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hpsearch.data import load
    from hpsearch.objective import TrialConfig, build
    from hpsearch.train import fit

    split = load(
        args.data,
        train_size=args.train_size,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
    )
    rng = np.random.default_rng(args.seed)
    config = TrialConfig(
        hidden_sizes=tuple(args.hidden),
        activation=args.activation,
        init=args.init,
        init_scale=args.init_scale,
        weight_decay=args.weight_decay,
        batchnorm=args.batchnorm,
        dropout=args.dropout,
        optimizer=args.optimizer,
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
    )
    net, optimizer = build(config, split, rng, dtype=np.float64 if args.float64 else np.float32)
    print(f"{split}\n{net}, {args.optimizer} lr={optimizer.lr:g}, batch {args.batch_size}")
    print(f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'val acc':>7}  {'seconds':>7}")
    # No bar on a pipe, and none at all for a run that fails at once.
    with tqdm(
        total=args.epochs, unit="epoch", leave=False, file=sys.stderr, disable=None, delay=1.0
    ) as bar:

        def report(epoch: int, history) -> None:
            bar.update(1)
            tqdm.write(
                f"{epoch:>5}  {history.train_loss[-1]:>10.4f}  {history.train_accuracy[-1]:>9.4f}"
                f"  {history.val_accuracy[-1]:>7.4f}  {history.seconds[-1]:>7.3f}"
            )

        history = fit(
            net,
            optimizer,
            split,
            epochs=args.epochs,
            batch_size=args.batch_size,
            rng=rng,
            on_epoch=report,
        )
    best = int(np.argmax(history.val_accuracy))
    print(
        f"final validation accuracy {history.val_accuracy[-1]:.4f} "
        f"(best {history.val_accuracy[best]:.4f} at epoch {best + 1}, "
        f"{sum(history.seconds):.1f} s)"
    )
    return 0


DEFAULT_SPEC = Path("studies/mnist_lr_wd_init.toml")


def _add_run_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run (or continue) a study from a spec file",
        description=(
            "Run a study: Optuna samples the spec's search space, every trial trains a "
            "MultiLayerNet and is judged on the validation split. Running a study again "
            "continues it up to its trial budget."
        ),
    )
    run.add_argument(
        "spec",
        nargs="?",
        type=Path,
        default=None,
        help=f"study spec (TOML); default {DEFAULT_SPEC}, or the built-in defaults",
    )
    run.add_argument("--trials", type=int, help="total finished trials wanted (not added)")
    run.add_argument("--epochs", type=int, help="epochs per trial")
    run.add_argument("--storage", help=f"database URL (default {DEFAULT_STORAGE})")
    run.add_argument("--study", help="study name (default: the spec's name)")
    run.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes, one BLAS thread each (default: the number of cores)",
    )
    run.add_argument("--seed", type=int, help="seed of the split, sampler and trials")
    run.add_argument("--timeout", type=float, help="stop starting trials after SECONDS")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_heartbeat_option(run)
    run.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run this many range-narrowing rounds, each its own study (default 1)",
    )
    run.add_argument("--top", type=float, default=0.2, help="narrowing: fraction of best trials")
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
        help="stop rounds when the best validation accuracy gains no more than this (0.002)",
    )
    run.set_defaults(handler=_run)


def _load_spec(path: Path | None):
    from hpsearch import spec

    if path is None:
        return spec.load(DEFAULT_SPEC) if DEFAULT_SPEC.is_file() else spec.StudySpec()
    return spec.load(path)


class _TrialBar:
    """A tqdm bar of finished trials and the best value so far, one round at a time."""

    def __init__(self, disabled: bool) -> None:
        from tqdm import tqdm

        # No monitor thread: the bar is updated often, and with no other thread in the
        # process the workers can start by a plain fork (study._start_method).
        tqdm.monitor_interval = 0
        self.bar = tqdm(
            total=0,
            unit="trial",
            file=sys.stderr,
            disable=True if disabled else None,
            dynamic_ncols=True,
        )

    def start(self, spec) -> None:
        self.bar.reset(total=spec.search.n_trials)
        self.bar.set_description(f"round {spec.round}" if spec.round > 1 else spec.name)

    def update(self, finished: int, best: float | None) -> None:
        self.bar.update(finished - self.bar.n)
        if best is not None:
            self.bar.set_postfix_str(f"best val acc {best:.4f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _run(args: argparse.Namespace) -> int:
    from hpsearch.rounds import DEFAULT_TOLERANCE, run_rounds
    from hpsearch.study import quiet_optuna

    quiet_optuna()
    if args.rounds < 1:
        raise HpsearchError(f"--rounds must be at least 1, got {args.rounds}")
    spec = _load_spec(args.spec).with_overrides(
        name=args.study,
        seed=args.seed,
        storage=args.storage,
        n_trials=args.trials,
        epochs=args.epochs,
        timeout=args.timeout,
    )
    print(f"study {spec.name!r} from {spec.source} in {display_url(spec.storage)}")
    bar = _TrialBar(args.no_progress)
    folder = args.spec.parent if args.spec is not None else DEFAULT_SPEC.parent
    if args.spec_folder is not None:
        folder = args.spec_folder

    def on_round(done) -> None:
        bar.bar.clear()
        if done.narrowing is not None:
            print(f"\nround {done.spec.round}: {done.spec.name} (narrowed from {done.spec.parent})")
            print(done.narrowing.table().to_string(index=False))
        print(report_table(done.result.study))
        print(
            f"{done.result.finished_now} finished trials "
            f"({done.result.finished_now - done.result.finished_before} new); "
            f"best validation accuracy {_best_text(done.result.study)}"
        )

    try:
        results = run_rounds(
            spec,
            args.rounds,
            workers=args.workers,
            heartbeat=args.heartbeat,
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
            best = "none" if done.best_value is None else f"{done.best_value:.4f}"
            print(f"  round {done.spec.round}  {done.spec.name}  best val acc {best}")
        if len(results) < args.rounds:
            print("  stopped early: the last round gained no more than the tolerance")
    print(f"database: {_where(spec.storage)}")
    print(f"dashboard: {_dashboard_command(spec.storage)}")
    return 0


def _best_text(study) -> str:
    try:
        return f"{study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:
        return "none yet (no completed trial)"


def report_table(study, top: int = 10) -> str:
    """The best completed trials: params, validation accuracy, epochs, seconds."""
    import pandas as pd
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return "no completed trials"
    best = sorted(complete, key=lambda t: t.value, reverse=True)[:top]
    rows = [
        {"trial": t.number}
        | {name: value for name, value in t.params.items()}
        | {
            "val acc": t.value,
            "epochs": t.user_attrs.get("epochs_run"),
            "seconds": t.user_attrs.get("seconds"),
        }
        for t in best
    ]
    table = pd.DataFrame(rows)
    formats = {
        column: (lambda v: f"{v:.3g}")
        for column in table.columns
        if column not in ("trial", "val acc", "epochs", "seconds")
        and pd.api.types.is_float_dtype(table[column])
    }
    formats |= {"val acc": "{:.4f}".format, "seconds": "{:.2f}".format}
    return f"best {len(best)} of {len(complete)} completed trials:\n" + table.to_string(
        index=False, formatters=formats
    )


def _where(url: str) -> str:
    from hpsearch.storage import sqlite_path

    path = sqlite_path(url)
    return str(path.resolve()) if path is not None else display_url(url)


def _dashboard_command(url: str) -> str:
    local = Path(sys.executable).parent / "hpsearch"
    program = str(local) if local.exists() else "hpsearch"
    with contextlib.suppress(ValueError):  # a path outside the working folder stays whole
        program = str(Path(program).relative_to(Path.cwd()))
    storage = "" if url == DEFAULT_STORAGE else f" --storage {display_url(url)}"
    return f"{program} dashboard{storage}"


def _add_final_parser(commands: argparse._SubParsersAction) -> None:
    final = commands.add_parser(
        "final",
        help="retrain the best configuration and evaluate it once on the test split",
        description=(
            "Retrain the study's best configuration on train + validation for the full epoch "
            "count, then evaluate it once on the held-out test split. The test accuracy is "
            "stored in the study."
        ),
    )
    final.add_argument("--study", required=True, help="study name")
    final.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    final.add_argument(
        "--trial", type=int, default=None, help="this completed trial instead of the best"
    )
    final.set_defaults(handler=_final)


def _final(args: argparse.Namespace) -> int:
    from hpsearch.study import final

    result = final(args.study, args.storage, args.trial)
    params = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.params.items()
    )
    chosen = "best trial" if args.trial is None else "trial"
    print(f"{chosen} {result.trial_number}: {params}")
    print(f"validation accuracy {result.validation_accuracy:.4f} (during the search)")
    print(
        f"test accuracy {result.test_accuracy:.4f} after retraining on "
        f"{result.train_examples} examples for {result.epochs} epochs "
        f"(stored as study user attr 'test_accuracy')"
    )
    return 0


def _add_trials_parser(commands: argparse._SubParsersAction) -> None:
    trials = commands.add_parser(
        "trials",
        help="print a study's trials as a table, or write them as CSV",
        description="One row per trial of any study in the database (pandas).",
    )
    trials.add_argument("--study", required=True, help="study name")
    trials.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    trials.add_argument("--csv", type=Path, help="write CSV to this file instead of printing")
    trials.set_defaults(handler=_trials)


def _trials(args: argparse.Namespace) -> int:
    from hpsearch.analysis import trials_frame
    from hpsearch.study import load_existing_study

    study = load_existing_study(args.study, args.storage)  # a clear error if missing
    frame = trials_frame(args.storage, args.study)
    names = study.metric_names
    if names and len(names) == 1 and names[0] not in frame.columns:
        frame = frame.rename(columns={"value": names[0]})  # name the objective
    if args.csv is not None:
        try:
            frame.to_csv(args.csv, index=False)
        except OSError as exc:
            raise HpsearchError(f"cannot write {args.csv}: {exc.strerror}") from None
        print(f"{len(frame)} trials of {args.study!r} written to {args.csv}")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", None, "display.width", 200):
            print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def _add_heartbeat_option(parser: argparse.ArgumentParser) -> None:
    from hpsearch.storage import GRACE_FACTOR, HEARTBEAT_SECONDS

    parser.add_argument(
        "--heartbeat",
        type=int,
        default=HEARTBEAT_SECONDS,
        metavar="SECONDS",
        help=(
            f"heartbeat interval of running trials (default {HEARTBEAT_SECONDS}); a trial "
            f"silent for {GRACE_FACTOR} intervals is failed and re-queued once"
        ),
    )


def _add_submit_parser(commands: argparse._SubParsersAction) -> None:
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
    submit.add_argument("--storage", help=f"database URL (default: the spec's, {DEFAULT_STORAGE})")
    submit.add_argument("--study", help="study name (default: the spec's name)")
    submit.add_argument("--trials", type=int, help="total finished trials wanted")
    submit.set_defaults(handler=_submit)


def _submit(args: argparse.Namespace) -> int:
    from hpsearch.distributed import submit
    from hpsearch.study import quiet_optuna

    quiet_optuna()
    spec = _load_spec(args.spec).with_overrides(
        name=args.study, storage=args.storage, n_trials=args.trials
    )
    study, budget = submit(spec)
    print(
        f"study {study.study_name!r} in {display_url(spec.storage)}: "
        f"{budget.finished} of {budget.n_trials} trials finished"
    )
    print(
        "start workers with: hpsearch worker "
        f"--storage {_shell_quote(display_url(spec.storage))} "
        f"--study {_shell_quote(study.study_name)}"
        + (" (put the password back in)" if display_url(spec.storage) != spec.storage else "")
    )
    return 0


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _add_worker_parser(commands: argparse._SubParsersAction) -> None:
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
    worker.add_argument("--study", help="study name (default: every study with budget left)")
    worker.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes on this machine, one BLAS thread each (default 1)",
    )
    _add_heartbeat_option(worker)
    worker.add_argument("--no-progress", action="store_true", help="no progress bar")
    worker.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    from hpsearch.distributed import work
    from hpsearch.study import quiet_optuna

    quiet_optuna()
    bar = _TrialBar(args.no_progress)

    def on_study(spec) -> None:
        bar.bar.clear()
        print(f"study {spec.name!r} in {display_url(args.storage)}", flush=True)
        bar.start(spec)

    try:
        results = work(
            args.storage,
            args.study,
            workers=args.workers,
            heartbeat=args.heartbeat,
            on_study=on_study,
            on_progress=bar.update,
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
            print(f"nothing to do: no study in {display_url(args.storage)} has budget left")
        return 0
    for result in results:
        print(
            f"{result.study.study_name}: {result.finished_now} finished trials; "
            f"best validation accuracy {_best_text(result.study)}"
        )
    return 0


def _add_narrow_parser(commands: argparse._SubParsersAction) -> None:
    narrow = commands.add_parser(
        "narrow",
        help="narrow a study's ranges around its best trials and write the next round's spec",
        description=(
            "Take the range the best trials of a study occupy (log10 for log ranges), widen "
            "it by a margin, clip it to the old range, and extend instead of cut a side "
            "the good region touches. Writes studies/NAME-rK.toml; --launch runs it."
        ),
    )
    narrow.add_argument("--study", required=True, help="the finished study to narrow")
    narrow.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    narrow.add_argument("--top", type=float, default=0.2, help="fraction of best trials")
    narrow.add_argument("--margin", type=float, default=0.1, help="fraction of the old width")
    narrow.add_argument("--bootstrap", type=int, default=0, help="bootstrap resamples per bound")
    narrow.add_argument("--trials", type=int, help="trial budget of the next round")
    narrow.add_argument("--out", type=Path, default=DEFAULT_SPEC.parent, help="spec folder")
    narrow.add_argument("--launch", action="store_true", help="run the next round now")
    narrow.add_argument("--workers", type=int, default=1, help="worker processes with --launch")
    narrow.add_argument("--no-progress", action="store_true", help="no progress bar")
    narrow.set_defaults(handler=_narrow)


def _narrow(args: argparse.Namespace) -> int:
    from hpsearch.rounds import next_round, save_notes, write_spec
    from hpsearch.study import quiet_optuna, run

    quiet_optuna()
    following = next_round(
        args.study,
        args.storage,
        top=args.top,
        margin=args.margin,
        bootstrap=args.bootstrap,
        n_trials=args.trials,
    )
    narrowing, spec = following.narrowing, following.spec
    print(
        f"{args.study}: best {narrowing.top_trials} of {narrowing.completed} completed trials "
        f"(best validation accuracy {narrowing.best_value:.4f})"
    )
    print(narrowing.table().to_string(index=False))
    for name, sides in narrowing.at_edge.items():
        print(
            f"{name}: the good region touches the old range's {' and '.join(sides)} "
            "edge; extended there"
        )
    if not narrowing.changed:
        print(
            "every range kept: the next round searches the same ranges (more trials give "
            "more evidence)"
        )
    path = write_spec(spec, narrowing, args.out)
    save_notes(args.storage, narrowing, args.study, spec.name)
    print(f"next round: {path}")
    if not args.launch:
        print(f"run it with: hpsearch run {path}")
        return 0
    bar = _TrialBar(args.no_progress)
    bar.start(spec)
    try:
        result = run(spec_from_file(path), workers=args.workers, on_progress=bar.update)
    finally:
        bar.close()
    save_notes(args.storage, narrowing, args.study, spec.name)
    print(report_table(result.study))
    print(f"best validation accuracy {_best_text(result.study)}")
    return 0


def spec_from_file(path: Path):
    from hpsearch import spec

    return spec.load(path)


def _add_report_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="write a study's figures (PNG) and report.md with the narrowing table",
    )
    report.add_argument("--study", required=True, help="study name")
    report.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    report.add_argument("--out", type=Path, required=True, help="folder for the report")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from hpsearch.report import write_report

    report = write_report(args.study, args.storage, args.out)
    for path in report.figures:
        print(f"figure: {path}")
    print(f"report: {report.markdown}")
    return 0


def _add_dashboard_parser(commands: argparse._SubParsersAction) -> None:
    dashboard = commands.add_parser(
        "dashboard",
        help="serve optuna-dashboard for the database on 127.0.0.1",
    )
    dashboard.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    dashboard.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    dashboard.set_defaults(handler=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise HpsearchError(
            "optuna-dashboard is not installed: pip install 'hpsearch[dashboard]'"
        ) from None
    from hpsearch.storage import open_storage

    storage = open_storage(args.storage)
    print(
        f"optuna-dashboard for {display_url(args.storage)} at http://127.0.0.1:{args.port}/ "
        "(Ctrl-C stops it)",
        flush=True,
    )
    try:
        run_server(storage, host="127.0.0.1", port=args.port)
    except OSError as exc:
        raise HpsearchError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror}") from None
    return 0


def _add_experiment_parser(commands: argparse._SubParsersAction) -> None:
    from hpsearch.experiments import EXPERIMENTS

    experiment = commands.add_parser(
        "experiment",
        help="run a reference experiment (figures and a table)",
        description=(
            "The reference articles' experiments on hpsearch's own network: "
            + ", ".join(EXPERIMENTS)
            + "."
        ),
    )
    experiment.add_argument("name", choices=list(EXPERIMENTS), help="which experiment")
    experiment.add_argument(
        "--out",
        type=Path,
        default=Path("experiments"),
        help="folder for the PNGs (default ./experiments)",
    )
    experiment.add_argument("--seed", type=int, default=0)
    experiment.set_defaults(handler=_experiment)


def _experiment(args: argparse.Namespace) -> int:
    import pandas as pd

    from hpsearch.experiments import EXPERIMENTS

    if args.seed < 0:
        raise HpsearchError(f"--seed must be >= 0, got {args.seed}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HpsearchError(f"cannot create {args.out}: {exc.strerror}") from None
    print(f"experiment {args.name} (seed {args.seed}) ...", flush=True)
    result = EXPERIMENTS[args.name](args.out, args.seed)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(result.table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for line in result.findings:
        print(f"- {line}")
    for path in result.figures:
        print(f"figure: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpsearch",
        description="Hyperparameter search for from-scratch NumPy networks.",
    )
    parser.add_argument("--version", action="version", version=f"hpsearch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_parser(commands)
    _add_submit_parser(commands)
    _add_worker_parser(commands)
    _add_final_parser(commands)
    _add_narrow_parser(commands)
    _add_trials_parser(commands)
    _add_report_parser(commands)
    _add_dashboard_parser(commands)
    _add_experiment_parser(commands)
    _add_train_parser(commands)
    return parser


def _one_line(text: str) -> str:
    """The message with line breaks and other control characters escaped: names and
    paths in it are user text, and the error must stay one line."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except HpsearchError as exc:
        print(f"hpsearch: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError as exc:
        detail = f" ({_one_line(str(exc))})" if str(exc) else ""
        print(
            f"hpsearch: error: out of memory{detail}; use smaller hidden layers or batches",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except (KeyboardInterrupt, Interrupted):
        print(
            "hpsearch: interrupted; finished trials are kept, run the same command to continue",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # `hpsearch trials | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        return 141
