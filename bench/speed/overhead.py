"""One worker's costs, measured in a fresh process of its own (`bench.speed.trial_clock`):
the share of its trial loop that is not training, with every part of it, the share
spent outside the objective, opening the study, and the worker's peak memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import ROOT
from bench.speed.studies import STUDY
from bench.speed.trial_clock import PARTS


def overhead(trials: int, folder: Path, url: str | None = None) -> dict[str, float]:
    """One worker on the default study in a fresh process, data loaded before the clock.

    The non-training share is the whole of the worker's trial loop (`work`, from its
    first budget check to its return: every trial from before its creation to its final
    state, and the loop between trials) less training: each epoch's steps and its
    validation pass. Its parts (`part_*_share`, of the same loop) add up to it. The
    share outside the objective (Optuna's ask and tell, the sampler, SQLite) is the
    older, narrower measure. Opening the study before the loop and closing it after is a
    once-per-worker cost, shown apart. Also the worker's peak RSS. On SQLite in `folder`,
    or on the (empty) database at `url`."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.speed.trial_clock",
            str(STUDY),
            url or str(folder / "overhead.db"),
            str(trials),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    f = json.loads(done.stdout.strip().splitlines()[-1])
    loop, parts = f["loop"], f["parts"]
    not_training = loop - parts["training"]
    outside = f["trial_time"] - f["objective_time"]
    return (
        {
            "optuna_sqlite_overhead_share": outside / f["trial_time"],
            "optuna_sqlite_overhead_ms_per_trial": outside / f["trials"] * 1e3,
            "non_training_share": not_training / loop,
            "non_training_ms_per_trial": not_training / f["trials"] * 1e3,
            "opening_and_other_ms": (f["wall"] - loop) * 1e3,
            "worker_peak_rss_mb": f["rss_mb"],
        }
        | {f"part_{part}_share": parts[part] / loop for part in PARTS}
        | {f"part_{part}_ms_per_trial": parts[part] / f["trials"] * 1e3 for part in PARTS}
    )
