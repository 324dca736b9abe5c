"""The `narrow` subcommand: narrow a finished study's ranges around its best trials,
write the next round's spec, and with --launch run it."""

from __future__ import annotations

import argparse
from pathlib import Path

from hpsearch.cli.common import (
    DEFAULT_SPEC,
    TrialBar,
    add_code_option,
    best_text,
    spec_from_file,
    trust_code_options,
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
    add_code_option(narrow, "; for --launch")
    narrow.add_argument("--no-progress", action="store_true", help="no progress bar")
    narrow.set_defaults(handler=_narrow)


def _narrow(args: argparse.Namespace) -> int:
    from hpsearch.search.rounds import next_round, save_notes, write_spec
    from hpsearch.search.runner import run
    from hpsearch.search.study import value_name
    from hpsearch.search.work import quiet_optuna

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
        f"(best {value_name(spec)} {narrowing.best_value:.4f})"
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
        code = ""
        if spec.model.kind == "python":  # the spec's new folder need not hold its module
            module = spec.model.entry.partition(":")[0].split(".")[0]
            code = f" --code DIR (the folder of {module}, unless it is installed)"
        print(f"run it with: hpsearch run {path}{code}")
        return 0
    trust_code_options(args)
    bar = TrialBar(args.no_progress)
    bar.start(spec)
    try:
        result = run(spec_from_file(path), workers=args.workers, on_progress=bar.update)
    finally:
        bar.close()
    save_notes(args.storage, narrowing, args.study, spec.name)
    print(report_table(result.study))
    print(f"best {value_name(result.study)} {best_text(result.study)}")
    return 0
