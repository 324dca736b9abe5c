"""The results JSON of a run (bench/results/bench-STAMP.json): its figures and targets
with the machine's CPU and library versions."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from benchkit import ROOT

RESULTS = ROOT / "bench" / "results"


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


def new_record(figures: dict, targets: list[tuple[str, bool]]) -> dict:
    """The record of a run that has just measured `figures`, stamped now (UTC)."""
    import numpy as np
    from threadpoolctl import threadpool_info

    return {
        "when": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
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
