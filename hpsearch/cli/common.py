"""What several subcommands share: the default spec and spec loading, the --heartbeat
option, the progress bar of finished trials and the best-value line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from hpsearch.spec import StudySpec

DEFAULT_SPEC = Path("studies/mnist_lr_wd_init.toml")


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


def add_heartbeat_option(parser: argparse.ArgumentParser) -> None:
    """--heartbeat SECONDS, for the commands that run trials."""
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


class TrialBar:
    """A tqdm bar of finished trials and the best value so far, one round at a time."""

    def __init__(self, disabled: bool) -> None:
        from tqdm import tqdm

        # No monitor thread: the bar is updated often, and with no other thread in the
        # process the workers can start by a plain fork (runner.start_method).
        tqdm.monitor_interval = 0
        self.value = "val acc"  # what the values are called, set per study by `start`
        self.bar = tqdm(
            total=0,
            unit="trial",
            file=sys.stderr,
            disable=True if disabled else None,
            dynamic_ncols=True,
        )

    def start(self, spec: StudySpec) -> None:
        from hpsearch.search.study import value_name

        self.value = value_name(spec, short=True)
        self.bar.reset(total=spec.search.n_trials)
        self.bar.set_description(f"round {spec.round}" if spec.round > 1 else spec.name)

    def update(self, finished: int, best: float | None) -> None:
        self.bar.update(finished - self.bar.n)
        if best is not None:
            self.bar.set_postfix_str(f"best {self.value} {best:.4f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def best_text(study: optuna.Study) -> str:
    """'0.9375 (trial 12)', or a note that no trial has completed yet."""
    try:
        return f"{study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:
        return "none yet (no completed trial)"


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


def trust_code_options(
    args: argparse.Namespace, spec: StudySpec | None = None, folder: Path | None = None
) -> None:
    """Let this process import entry points from the --code folders, and from the spec
    file's `folder` when the spec names a python entry."""
    from hpsearch.trials.entry import trust_code

    python = spec is not None and spec.model.kind == "python"
    trust_code([*args.code, *([folder] if python and folder is not None else [])])
