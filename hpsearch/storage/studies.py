"""A stored study found by name, or one error that says what the database holds
instead (how many studies, the first of their names, the closest one). Opening a
study to read it creates nothing."""

from __future__ import annotations

import difflib

import optuna

from hpsearch.errors import StudyError
from hpsearch.storage.urls import open_storage, storage_place

MAX_LISTED = 10  # studies named in a message before it says how many more there are


def count(names: list[str]) -> str:
    return "1 study" if len(names) == 1 else f"{len(names)} studies"


def listing(names: list[str]) -> str:
    """The names, or the first MAX_LISTED and how many more."""
    shown = ", ".join(repr(n) for n in names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def no_such_study(name: str, names: list[str], place: str) -> StudyError:
    """The error for a study `name` that the database at `place`, holding `names`,
    does not have."""
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    # How many there are is said when the listing does not show them all.
    many = f"{len(names)} " if len(names) > MAX_LISTED else ""
    there = f"{many}studies there: {listing(names)}" if names else "no studies there"
    return StudyError(f"no study named {name!r} in {place}{hint}; {there}")


def load_existing_study(
    study_name: str, storage_url: str, *, retry_for: float | None = None
) -> optuna.Study:
    """The study `study_name` of `storage_url`, or a StudyError that says what is there
    (a MissingDatabase, and nothing created, when there is no database). `retry_for`:
    seconds an unreachable database is retried once opened (None: the default)."""
    storage = open_storage(storage_url, retry_for=retry_for, create=False)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise no_such_study(study_name, names, storage_place(storage_url)) from None
