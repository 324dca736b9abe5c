"""What several subcommands share: the subcommands' parser (defaults shown once, the
closest option named on a typo), the command as the user can type it in printed hints,
the default spec and spec loading, --study and the study it names, the --heartbeat
option, the progress of finished trials and the best-value line."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hpsearch.errors import HpsearchError

if TYPE_CHECKING:
    import optuna

    from hpsearch.spec import StudySpec

DEFAULT_SPEC = Path("studies/mnist_lr_wd_init.toml")


class HelpFormatter(argparse.HelpFormatter):
    """Every option's default shown once, as "(default: X)": added where the help does
    not say its default already and there is a default worth showing (not None, not
    the False of a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default is None or default is False or default == []:
            return text
        if default is argparse.SUPPRESS:
            return text
        return f"{text} (default: %(default)s)"


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser. An unknown argument is an error with this subcommand's
    usage (argparse leaves it to the top parser, whose usage lists only the
    subcommands) and the closest option, in this subcommand or another."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.siblings: dict[str, argparse.ArgumentParser] = {}  # set by build_parser

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._closest(extras)}")
        return namespace, extras

    def _closest(self, extras: list[str]) -> str:
        unknown = next((arg.split("=", 1)[0] for arg in extras if arg.startswith("--")), None)
        if unknown is None:
            return ""
        own = _long_options(self)
        found = difflib.get_close_matches(unknown, own, n=1, cutoff=0.6)
        if found:
            return f"; did you mean {found[0]}?"
        others = {
            name: _long_options(parser)
            for name, parser in self.siblings.items()
            if parser is not self
        }
        found = difflib.get_close_matches(
            unknown, sorted({o for options in others.values() for o in options}), n=1, cutoff=0.6
        )
        if not found:
            return ""
        having = [name for name, options in others.items() if found[0] in options]
        command = self.prog.rsplit(" ", 1)[-1]
        return f"; {found[0]} is an option of {_and(having)}, not of {command}"


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for action in parser._actions for o in action.option_strings if o.startswith("--")]


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def program() -> str:
    """The `hpsearch` command as the user can type it here, for printed hints:
    `hpsearch` when that name on PATH is the running command, else the running
    command's path (relative to the working folder when inside it, else absolute);
    `PYTHON -m hpsearch.cli` when started so; `hpsearch` when another program called
    `main` (a test, a notebook), except a user's script, whose hint names the
    `hpsearch` of its interpreter."""
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    beside_python = Path(sys.executable).parent / "hpsearch"
    if started.name in ("hpsearch", "hpsearch.exe"):  # the console script
        return _runnable(started)
    if started.parts[-3:] == ("hpsearch", "cli", "__main__.py"):  # python -m hpsearch.cli
        if beside_python.is_file() and _runnable(beside_python) == "hpsearch":
            return "hpsearch"
        python = _runnable(Path(sys.executable), "python3", "python", linked=False)
        return f"{python} -m hpsearch.cli"
    if started.suffix == ".py" and started.is_file() and not _inside(started, sys.prefix):
        return _runnable(beside_python) if beside_python.is_file() else "hpsearch"
    return "hpsearch"


def _runnable(path: Path, *names: str, linked: bool = True) -> str:
    """How a shell here runs the program at `path`: by its name (`names`, or its own
    file name) when PATH finds this very file, else by its path. `linked`: a link to
    the file is the same program (a script, whose first line names its interpreter);
    not so for an interpreter, which finds its environment beside the path it was
    started by."""
    for name in names or (path.name,):
        found = shutil.which(name)
        if not found:
            continue
        if not linked and os.path.abspath(found) != os.path.abspath(path):
            continue
        with contextlib.suppress(OSError):
            if os.path.samefile(found, path):
                return name
    full = os.path.abspath(path)
    shown = os.path.relpath(full) if _inside(Path(full), os.getcwd()) else full
    if os.sep not in shown:
        shown = os.path.join(".", shown)  # a bare name would be looked up on PATH
    return shlex.quote(shown)


def _inside(path: Path, folder: str) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def command(*words: str) -> str:
    """A command line to print: the program as `program()` gives it, then `words`
    quoted for a shell."""
    return " ".join([program(), *(shlex.quote(word) for word in words)])


def load_spec(path: Path | None) -> StudySpec:
    """The spec at `path`; without one, DEFAULT_SPEC if it exists, else the built-in defaults."""
    from hpsearch import spec

    if path is None:
        return spec.load(DEFAULT_SPEC) if DEFAULT_SPEC.is_file() else spec.StudySpec()
    return spec.load(path)


def spec_from_file(path: Path) -> StudySpec:
    """The spec written at `path` (a round's spec, just written)."""
    from hpsearch import spec

    return spec.load(path)


def add_study_option(parser: argparse.ArgumentParser, help: str) -> None:
    """--study NAME, also spelled --study-name as Optuna's own CLI does."""
    parser.add_argument("--study", "--study-name", dest="study", metavar="NAME", help=help)


def add_existing_study_option(parser: argparse.ArgumentParser, what: str = "the study") -> None:
    """--study NAME for a command that reads a study: without it, the only study in
    the database (see `existing_study`)."""
    add_study_option(parser, f"{what} (default: the only study in the database)")


def open_existing(url: str) -> optuna.storages.BaseStorage:
    """The storage at `url` for a command that only reads: a database that does not
    exist is an error, and nothing is created (no file, no folder)."""
    from hpsearch.spec import DEFAULT_STORAGE
    from hpsearch.storage import MissingDatabase, open_storage

    try:
        return open_storage(url, create=False)
    except MissingDatabase as exc:
        default = " (the default --storage, relative to this folder)"
        raise MissingDatabase(
            f"{exc}{default if url == DEFAULT_STORAGE else ''}; nothing was created; "
            "name the study's database with --storage URL"
        ) from None


def existing_study(url: str, name: str | None) -> str:
    """The name of study `name` in the database at `url`, checked to exist, or without
    a name the database's only study; an error that says what is there otherwise.
    Creates nothing."""
    import optuna

    from hpsearch.storage import MissingDatabase, storage_place
    from hpsearch.storage.studies import count, listing, no_such_study

    try:
        storage = open_existing(url)
    except MissingDatabase as exc:
        if name is None:
            raise
        raise MissingDatabase(f"no study named {name!r}: {exc}") from None
    names = optuna.get_all_study_names(storage)
    place = storage_place(url)
    if name is None:
        if len(names) == 1:
            return names[0]
        if not names:
            raise HpsearchError(f"{place} holds no studies; name another database with --storage")
        raise HpsearchError(
            f"{place} holds {count(names)}; name one with --study: {listing(names)}"
        )
    if name in names:
        return name
    raise no_such_study(name, names, place)


def add_heartbeat_option(parser: argparse.ArgumentParser) -> None:
    """--heartbeat SECONDS, for the commands that run trials."""
    from hpsearch.storage import GRACE_FACTOR, HEARTBEAT_SECONDS

    parser.add_argument(
        "--heartbeat",
        type=int,
        default=HEARTBEAT_SECONDS,
        metavar="SECONDS",
        help=(
            f"heartbeat interval of running trials; a trial silent for {GRACE_FACTOR} "
            "intervals is failed and re-queued once"
        ),
    )


def parse_duration(text: str) -> float:
    """Seconds from '300', '90s', '5m' or '1h'."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = float("nan")
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 300, 90s, 5m, 1h)")
    return seconds


def add_retry_option(parser: argparse.ArgumentParser) -> None:
    """--retry-for DURATION, for the commands that run trials."""
    parser.add_argument(
        "--retry-for",
        type=parse_duration,
        metavar="DURATION",
        help=(
            "how long a database that cannot be reached (an outage, a restart) is retried "
            "before the run gives up, e.g. 90s, 5m (default: the spec's search.retry_for, "
            "300 seconds unless it says otherwise)"
        ),
    )


LINES_PER_ROUND = 10  # progress lines of a round's budget off a terminal


class TrialBar:
    """Finished trials and the best value so far on stderr, one round (or study) at a
    time: a tqdm bar on a terminal; elsewhere (a log file, a pipe, a batch job) a line
    every tenth of the budget, so a long run is never silent.

    Each round's bar is closed, which leaves it drawn once in its final state, before
    anything is printed under it (`finish`): a bar closed after the results would be
    drawn again below them."""

    def __init__(self, disabled: bool) -> None:
        self.disabled = disabled
        self.value = "value"  # what the values are called, set per study by `start`
        self.bar = None  # the tqdm bar of the current round, on a terminal
        self.name = ""
        self.total = 0
        self.searched = 0
        self.shown: int | None = None  # finished trials in the last line printed
        self.started = time.monotonic()

    def start(self, spec: StudySpec) -> None:
        from hpsearch.records import spec_objectives

        self.finish()
        self.value = spec_objectives(spec)[0].short
        self.name = f"round {spec.round}" if spec.round > 1 else spec.name
        self.total = spec.search.n_trials
        # Past the search's share of the budget, trials re-evaluate the leaders.
        self.searched = spec.search.confirm.search_trials(self.total)
        self.shown = None
        self.started = time.monotonic()
        if self.disabled or not _terminal(sys.stderr):
            return
        from tqdm import tqdm

        # No monitor thread: the bar is updated often, and with no other thread in the
        # process the workers can start by a plain fork (runner.start_method).
        tqdm.monitor_interval = 0
        self.bar = tqdm(
            total=self.total, desc=self.name, unit="trial", file=sys.stderr, dynamic_ncols=True
        )

    def update(self, finished: int, best: float | None) -> None:
        # Past the search's share, what the run does; before it, the best value so far.
        status = (
            f"re-evaluating the leaders ({finished - self.searched} done)"
            if finished > self.searched
            else ""
            if best is None
            else f"best {self.value} {best:.4f}"
        )
        if self.bar is not None:
            self.bar.update(finished - self.bar.n)
            if status:
                self.bar.set_postfix_str(status, refresh=False)
            return
        if self.disabled or not self.total or finished == self.shown:
            return
        step = math.ceil(self.total / LINES_PER_ROUND)
        if self.shown is None or finished // step > self.shown // step or finished >= self.total:
            self.shown = finished
            part = f", {status}" if status else ""
            elapsed = _duration(time.monotonic() - self.started)
            print(
                f"{self.name}: {finished}/{self.total} trials finished{part} ({elapsed})",
                file=sys.stderr,
                flush=True,
            )

    def finish(self) -> None:
        """Leave the current bar drawn once, in its final state, above what comes next."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    close = finish


def _terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # None, or a closed stream
        return False


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def best_text(study: optuna.Study) -> str:
    """'best validation loss 0.3012 (trial 12; lower is better)', for several objectives
    the size of the front, or a note that no trial has completed yet."""
    from hpsearch import records

    objectives = records.objectives_of(study)
    # With one objective every candidate is on the "front", best first: one ranking
    # answers both cases.
    trials = study.get_trials(deepcopy=False)
    front = records.pareto_front(trials, objectives)
    if not front:
        return "no completed feasible trial yet"
    if len(objectives) > 1:
        names = " and ".join(f"{m.name} ({m.direction}d)" for m in objectives)
        return (
            f"Pareto front of {len(front)} trials for {names}: hpsearch trials --pareto lists them"
        )
    best, metric = front[0], objectives[0]
    value = records.value_text(best.value)
    chosen = records.ranked(trials, objectives)[0]
    found = records.confirmed(trials, chosen.number)
    if found is not None:
        single = (
            ""
            if best.number == chosen.number
            else f"; best single value {value}, trial {best.number}"
        )
        return (
            f"chosen: trial {chosen.number}, {metric.label} {records.value_text(found.mean)} "
            f"over {found.n} re-evaluations ({records.value_text(chosen.value)} in the "
            f"search{single}; {metric.better})"
        )
    return f"best {metric.label} {value} (trial {best.number}; {metric.better})"


def add_code_option(parser: argparse.ArgumentParser, extra: str = "") -> None:
    """--code DIR, for the commands that import a python entry (`[model] kind = "python"`)."""
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help=(
            "a folder this command may import a python entry's module from, besides its "
            "installed environment (repeatable; never the working directory by itself)" + extra
        ),
    )


def trusted_code(
    args: argparse.Namespace, spec: StudySpec | None = None, folder: Path | None = None
) -> tuple[str, ...]:
    """The folders this command may import a python entry's module from: the --code
    folders, and the spec file's `folder` when the spec names a python entry."""
    from hpsearch.trials import kind_of
    from hpsearch.trials.entry import trusted

    python = spec is not None and kind_of(spec).imports_code
    return trusted([*args.code, *([folder] if python and folder is not None else [])])
