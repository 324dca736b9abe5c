"""The `narrow` subcommand: narrow a finished study's ranges around its best trials,
write the next round's spec, and with --launch run it."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from hpsearch.cli.common import (
    DEFAULT_SPEC,
    TrialBar,
    add_code_option,
    add_existing_study_option,
    best_text,
    command,
    existing_study,
    spec_from_file,
    trusted_code,
)
from hpsearch.cli.results import report_table
from hpsearch.spec import DEFAULT_STORAGE


def add_narrow_parser(commands: argparse._SubParsersAction) -> None:
    narrow = commands.add_parser(
        "narrow",
        help="narrow a study's ranges around its best trials and write the next round's spec",
        description=(
            "Take the range the best trials of a study occupy (log10 for log ranges), widen "
            "it by a margin, clip it to the old range, and extend instead of cut a side "
            "the good region touches. Writes NAME-rK.toml into --out; --launch runs it."
        ),
    )
    add_existing_study_option(narrow, "the finished study to narrow")
    narrow.add_argument("--storage", default=DEFAULT_STORAGE, help="database URL")
    narrow.add_argument(
        "--top", type=float, default=0.2, help="fraction of the completed trials that are best"
    )
    narrow.add_argument(
        "--margin", type=float, default=0.1, help="widening, as a fraction of the old width"
    )
    narrow.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        help="bootstrap resamples per bound (0: the best trials' range as it is)",
    )
    narrow.add_argument(
        "--trials",
        type=int,
        help="total trials of the next round, a new study (default: this study's budget)",
    )
    narrow.add_argument("--out", type=Path, default=DEFAULT_SPEC.parent, help="spec folder")
    narrow.add_argument("--launch", action="store_true", help="run the next round now")
    narrow.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes with --launch, one BLAS thread each",
    )
    add_code_option(narrow, "; for --launch")
    narrow.add_argument("--no-progress", action="store_true", help="no progress bar")
    narrow.set_defaults(handler=_narrow)


def _narrow(args: argparse.Namespace) -> int:
    from hpsearch.records import spec_objectives
    from hpsearch.search.rounds import best_trials_text, next_round, save_notes, write_spec
    from hpsearch.search.runner import run
    from hpsearch.search.work import quiet_optuna
    from hpsearch.storage import url_without_password
    from hpsearch.trials import kind_of

    quiet_optuna()
    args.study = existing_study(args.storage, args.study)
    following = next_round(
        args.study,
        args.storage,
        top=args.top,
        margin=args.margin,
        bootstrap=args.bootstrap,
        n_trials=args.trials,
    )
    narrowing, spec = following.narrowing, following.spec
    print(f"{args.study}: {best_trials_text(narrowing, spec_objectives(spec))}")
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
        code = ""
        if kind_of(spec).imports_code:  # the spec's new folder need not hold its module
            module = spec.model.entry.partition(":")[0].split(".")[0]
            code = f" --code DIR (the folder of {module}, unless it is installed)"
        if url_without_password(spec.storage) != spec.storage:  # the written spec has none
            code += " (the password from PGPASSWORD or ~/.pgpass)"
        print(f"run it with: {command('run', os.fspath(path))}{code}")
        return 0
    code = trusted_code(args)
    bar = TrialBar(args.no_progress)
    bar.start(spec)
    try:
        # The whole URL: the written spec's has no password.
        launched = dataclasses.replace(spec_from_file(path), code=code, storage=args.storage)
        result = run(launched, workers=args.workers, on_progress=bar.update)
    finally:
        bar.finish()
    save_notes(args.storage, narrowing, args.study, spec.name)
    print(report_table(result.study))
    print(f"{best_text(result.study)}")
    return 0
