"""Which results file the docs are rendered from: every results file is named by the UTC
moment it was written (`KIND-20261231T235959Z.json`), and the newest of a kind is the one
with the latest stamp among those that suffice for the page. A rule instead of a name, so
that a new run takes over without an edit, and bench/results keeps that one file of each
kind (git keeps the rest)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from bench import ROOT

STAMP = re.compile(r"\d{8}T\d{6}Z")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def stamp(now: datetime | None = None) -> str:
    """The stamp of a results file written at `now` (the current moment by default)."""
    return (now or datetime.now(UTC)).strftime(STAMP_FORMAT)


def stamp_of(path: Path) -> str | None:
    """The stamp in a results file's name, or None when it has none."""
    found = STAMP.search(path.name)
    return found.group() if found else None


def newest(paths: Iterable[Path], suffices: Callable[[Path], bool] | None = None) -> Path | None:
    """The file among `paths` with the latest stamp in its name that `suffices` (every
    stamped one when not given); None when there is none."""
    stamped = sorted((p for p in paths if stamp_of(p)), key=stamp_of, reverse=True)
    return next((p for p in stamped if suffices is None or suffices(p)), None)


def shown(path: Path) -> str:
    """`path` as a page names it: relative to the repository when inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)
