"""The database file a run writes to, watched until the run reports its trials.

A file deleted, or moved away and replaced, while a run uses it raises no error:
SQLite's open connections write on into the old file (unlinked, or at its new name),
and Optuna's journal appends to whatever file is at the path now. A run that ended
normally would then report trials that are not at the path it prints. `DatabaseFile`
remembers which file (device and inode) the run opened, so the run can stop soon after
the file goes and say, at the end, that its trials are not where it reports them.

SQLite's connections keep the file open, so its inode is not reused while the run
lives. Optuna's journal opens the file for each write: a journal deleted and written
again may get the same inode number, so a journal is also known by its first line (the
study's creation, with the unique id of the process that made it). PostgreSQL has no
file to watch.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from pathlib import Path

from hpsearch.errors import HpsearchError
from hpsearch.records import COPIED_FROM, FINISHED
from hpsearch.storage.retry import damaged, damaged_reason
from hpsearch.storage.sqlite_files import BUSY_TIMEOUT_SECONDS
from hpsearch.storage.urls import JOURNAL_PREFIX, database_file


class DatabaseVanished(HpsearchError):
    """The database file was deleted, replaced or changed under a run: the run failed
    (exit 1), though nothing in its input was wrong, and its trials are not where it
    would report them."""

    exit_code = 1


# The study's finished trials that it ran itself (not copied in from a parent round),
# counted as `search.budget.count_finished` counts them.
_FINISHED_IN_FILE = (
    "SELECT COUNT(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
    f"WHERE s.study_name = ? AND t.state IN ({', '.join('?' * len(FINISHED))}) "
    "AND NOT EXISTS (SELECT 1 FROM trial_user_attributes a "
    f"WHERE a.trial_id = t.trial_id AND a.key = '{COPIED_FROM}')"
)

_AFTER = "restore it from a copy, or use another --storage"


class DatabaseFile:
    """The file of an SQLite or journal storage as a run opened it, and the finished
    trials last seen in it at its path."""

    def __init__(self, path: Path, identity: tuple, study_name: str, *, sqlite: bool):
        self.path = path
        self.identity = identity  # (st_dev, st_ino) of the file opened; a journal's first line
        self.study_name = study_name
        self.sqlite = sqlite
        self.seen = 0  # finished trials last known to be in the file at its path
        self.counted = 0  # finished trials the run last counted, wherever they went

    @classmethod
    def opened(cls, url: str, study_name: str) -> DatabaseFile | None:
        """The file `url` keeps its studies in, just opened with the study in it (None: a
        server, or an in-memory database, which no one else can delete)."""
        journal = url.startswith(JOURNAL_PREFIX)
        path = database_file(url)
        if path is None:
            return None
        path = Path(os.path.abspath(path))
        try:
            identity = _identity(path, os.stat(path), journal)
        except OSError:  # ':memory:', or an SQLite URI: no file of that name
            return None
        return cls(path, identity, study_name, sqlite=not journal)

    def in_place(self, finished: int | None = None) -> bool:
        """Whether the file at the path is still the one opened. `finished`: the run's
        count of finished trials a moment ago, which are in the file when it is."""
        if finished is not None:
            self.counted = max(self.counted, finished)
        if self._moved() is not None:
            return False
        if finished is not None:
            self.seen = max(self.seen, finished)
        return True

    def check_place(self) -> None:
        """Raise DatabaseVanished unless the file at the path is the one opened."""
        moved = self._moved()
        if moved is not None:
            raise DatabaseVanished(moved)

    def check(self, finished: int) -> None:
        """Raise DatabaseVanished unless the file at the path is the one opened, can be
        read, and holds the study with the `finished` trials the run counted."""
        self.counted = max(self.counted, finished)
        self.check_place()
        if not self.sqlite:  # a journal is only ever appended to: the file is enough
            return
        place = self.path
        try:
            uri = f"file:{urllib.parse.quote(str(place))}?mode=ro"  # never creates a file
            with contextlib.closing(
                sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)
            ) as db:
                study = "SELECT 1 FROM studies WHERE study_name = ?"
                if db.execute(study, (self.study_name,)).fetchone() is None:
                    raise DatabaseVanished(
                        f"the database {place} no longer holds study {self.study_name!r}: it "
                        f"was changed during the run; {_AFTER}"
                    )
                states = [state.name for state in FINISHED]
                (there,) = db.execute(_FINISHED_IN_FILE, (self.study_name, *states)).fetchone()
        except sqlite3.Error as exc:
            words = damaged_reason(exc)
            if words is not None:  # the file is there, no longer a study database
                raise damaged(words) from None
            raise DatabaseVanished(
                f"the database {place} cannot be read at the end of the run ({exc}); {_AFTER}"
            ) from None
        if there < finished:
            raise DatabaseVanished(
                f"the database {place} holds {there} of study {self.study_name!r}'s "
                f"{finished} finished trials: it was changed during the run (an older copy "
                f"put back?); {_AFTER}"
            )

    def _moved(self) -> str | None:
        """What happened to the file at the path (None: it is the one opened), said as
        the one line of a DatabaseVanished."""
        place = self.path
        try:
            found = os.stat(place)
            now = _identity(place, found, journal=not self.sqlite)
        except FileNotFoundError:
            gone = "file" if place.parent.is_dir() else "folder"
            return self._said(f"deleted during the run (its {gone} is gone)", "lost with it")
        except OSError as exc:
            return f"the database {place} cannot be reached any more ({exc.strerror or exc})"
        if now == self.identity:
            return None
        if self.sqlite and found.st_size == 0:  # SQLite made it, opening the path anew
            return self._said(
                "deleted during the run (an empty file was made in its place)", "lost with it"
            )
        # Optuna's journal appends to the path: a deleted journal is made again at once.
        what = "replaced by another file" if self.sqlite else "deleted or replaced"
        return self._said(f"{what} during the run", "in the old file, not in this one")

    def _said(self, what: str, where: str) -> str:
        """'the database P was WHAT; the 17 trials that finished since it was last seen
        are WHERE; what to do': the trials the run counted after it last saw the file
        at its path."""
        since = self.counted - self.seen
        lost = ""
        if since == 1:
            lost = f"; the 1 trial that finished since it was last seen is {where}"
        elif since > 1:
            lost = f"; the {since} trials that finished since it was last seen are {where}"
        return f"the database {self.path} was {what}{lost}; {_AFTER}"


def _identity(path: Path, found: os.stat_result, journal: bool) -> tuple:
    """Which file is at `path` (`found`, its stat): its device and inode, and a
    journal's first line. A journal is read with a plain open(), as Optuna reads it (its
    lock is another file)."""
    if not journal:
        return (found.st_dev, found.st_ino)
    with open(path, "rb") as stream:
        return (found.st_dev, found.st_ino, stream.readline(1 << 16))
