"""The `hpsearch` command. The library logs; this package is the only one that prints.

This module owns the parser (build_parser: one subcommand per module of the package),
`main`, and the exit codes: every user-facing problem arrives here as an `HpsearchError`
and leaves as one line on stderr with its exit code (2, or 1 for a run that failed
though its input was fine); argparse's own usage errors also exit 2.

  common.py     the subcommands' parser, printed commands, default spec, spec loading,
                --study and the study it names, --heartbeat, the trial progress
  searching.py  run, submit, worker
  results.py    final, trials, report, dashboard; report_table
  narrowing.py  narrow
  training.py   train, experiment; parse_hidden_sizes
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from hpsearch import __version__
from hpsearch.cli.common import DEFAULT_SPEC, CommandParser, spec_from_file
from hpsearch.cli.narrowing import add_narrow_parser
from hpsearch.cli.results import (
    add_dashboard_parser,
    add_final_parser,
    add_report_parser,
    add_trials_parser,
    report_table,
)
from hpsearch.cli.searching import add_run_parser, add_submit_parser, add_worker_parser
from hpsearch.cli.training import add_experiment_parser, add_train_parser, parse_hidden_sizes
from hpsearch.errors import HpsearchError
from hpsearch.stop import Interrupted

__all__ = [
    "DEFAULT_SPEC",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "parse_hidden_sizes",
    "report_table",
    "spec_from_file",
]

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The `hpsearch` parser; each subcommand sets `handler`, a function of the args."""
    parser = argparse.ArgumentParser(
        prog="hpsearch",
        description="Hyperparameter search for from-scratch NumPy networks.",
    )
    parser.add_argument("--version", action="version", version=f"hpsearch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=CommandParser
    )
    add_run_parser(commands)
    add_submit_parser(commands)
    add_worker_parser(commands)
    add_final_parser(commands)
    add_narrow_parser(commands)
    add_trials_parser(commands)
    add_report_parser(commands)
    add_dashboard_parser(commands)
    add_experiment_parser(commands)
    add_train_parser(commands)
    for command in commands.choices.values():
        command.siblings = commands.choices  # where an option typed in the wrong one is
    return parser


def _one_line(text: str) -> str:
    """The message with line breaks and other control characters escaped: names and
    paths in it are user text, and the error must stay one line."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code: 0, 2 (a usage or user-facing error, one line on
    stderr), 1 (a run that failed though its input was fine, one line on stderr: its
    database deleted under it), 130 (interrupted) or 141 (stdout closed by its reader)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except HpsearchError as exc:
        print(f"hpsearch: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
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
