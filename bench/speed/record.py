"""The results JSON of a run (bench/results/bench-STAMP.json): its figures and targets
with the machine's CPU and library versions, the run's settings, and the commit and
date of the code measured. Also reading one back, and which one docs/benchmarks.md is
rendered from: the newest that holds every figure the page shows."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench import RESULTS, ROOT, newest

# The code a run measures: a change here that is not committed is named on the page.
CODE = [
    "hpsearch",
    "bench",
    ":(exclude)bench/results",
    "studies",
    "pyproject.toml",
    "requirements.lock",
]
PATTERN = "bench-*.json"

# What docs/benchmarks.md reads; a results file without one of these does not suffice
# for it (a --reproducible-only run measures a few of them).
NEEDED = [
    "gemm_peak_gflops",
    *(f"{key}_b{b}" for b in (100, 500) for key in ("hpsearch_ms", "book_f64_ms", "torch_ms")),
    *(f"{key}_b{b}" for b in (100, 500) for key in ("gemm_fraction", "speedup_vs_book")),
    "hardware_scaling_steps",
    "trials_per_min_1_worker_free",
    "trials_per_min_1_worker",
    "trials_per_min_2_workers",
    "trials_per_min_2_workers_free",
    "worker_scaling",
    "worker_scaling_pairs",
    "worker_scaling_free",
    "worker_scaling_epochs",
    "to_first_trial_ms_1_worker",
    "to_first_trial_ms_2_workers",
    "after_last_trial_ms_1_worker",
    "after_last_trial_ms_2_workers",
    "idle_at_end_ms_2_workers",
    "optuna_sqlite_overhead_share",
    "optuna_sqlite_overhead_ms_per_trial",
    "non_training_share",
    "non_training_ms_per_trial",
    "opening_and_other_ms",
    "worker_peak_rss_mb",
]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def new_record(figures: dict, targets: list[tuple[str, bool]], settings: dict) -> dict:
    """The record of a run that has just measured `figures` with `settings`, stamped
    now (UTC), with the commit checked out and whether the code had changes not in it."""
    import numpy as np
    from threadpoolctl import threadpool_info

    now = datetime.now(UTC)
    return {
        "when": newest.stamp(now),
        "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "uncommitted_changes": bool(_git("status", "--porcelain", "--", *CODE)),
        "settings": settings,
        "cpu": cpu_name(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": [
            {k: i.get(k) for k in ("internal_api", "version", "num_threads")}
            for i in threadpool_info()
        ],
        "torch": _version("torch"),
        "optuna": _version("optuna"),
        "figures": figures,
        "targets": [{"target": text, "pass": ok} for text, ok in targets],
    }


def write(record: dict, folder: Path = RESULTS) -> Path:
    """bench-STAMP.json in `folder`; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{record['when']}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def load(path: Path) -> dict:
    """A results file, as `new_record` wrote it."""
    return json.loads(path.read_text())


def sufficient(record: dict) -> bool:
    """Whether docs/benchmarks.md can be rendered from `record`: every figure it reads is
    there, and the run was not a --quick one."""
    if not all(key in record for key in ("date", "commit", "settings", "figures")):
        return False
    figures = record["figures"]
    return all(key in figures for key in NEEDED) and not record["settings"].get("quick")


def newest_sufficient(paths: list[Path] | None = None) -> Path | None:
    """The newest of the results files `paths` (every bench-*.json in bench/results when
    not given) that suffices for docs/benchmarks.md."""
    paths = sorted(RESULTS.glob(PATTERN)) if paths is None else paths
    return newest.newest(paths, lambda path: sufficient(load(path)))
