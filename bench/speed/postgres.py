"""A PostgreSQL server for the bench's PostgreSQL figures: the one named by
HPSEARCH_BENCH_POSTGRES_URL, else a throwaway one started by `.ci/postgres` (which
installs Debian's PostgreSQL when it can) and stopped afterwards, else none."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench import ROOT

VARIABLE = "HPSEARCH_BENCH_POSTGRES_URL"


@contextlib.contextmanager
def server() -> Iterator[str | None]:
    """A PostgreSQL storage URL, or None (with the reason printed) when there is none."""
    if os.environ.get(VARIABLE):
        yield os.environ[VARIABLE]
        return
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-bench-postgres."))
    started = subprocess.run(
        [str(ROOT / ".ci" / "postgres"), str(folder)], capture_output=True, text=True
    )
    if started.returncode != 0:
        print(f"no PostgreSQL for the bench ({started.stderr.strip()}); set {VARIABLE}")
        shutil.rmtree(folder, ignore_errors=True)
        yield None
        return
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        pg_ctl = next(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), None)
        owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if pg_ctl is not None:
            subprocess.run(
                [*owner, str(pg_ctl), "-D", str(folder / "data"), "-m", "fast", "stop"],
                capture_output=True,
            )
        shutil.rmtree(folder, ignore_errors=True)
