"""A stored study opened by name, or an error that says which studies the database
holds."""

from __future__ import annotations

import optuna

from hpsearch.errors import StudyError
from hpsearch.storage.urls import display_url, open_storage


def load_existing_study(
    study_name: str, storage_url: str, *, retry_for: float | None = None
) -> optuna.Study:
    """The study `study_name` of `storage_url`, or a StudyError that lists the studies
    there. `retry_for`: seconds an unreachable database is retried once opened (None:
    the default)."""
    storage = open_storage(storage_url, retry_for=retry_for)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        listing = ", ".join(repr(n) for n in names[:10]) or "none"
        if len(names) > 10:
            listing += f" (10 of {len(names)})"
        raise StudyError(
            f"no study named {study_name!r} in {display_url(storage_url)}; studies there: {listing}"
        ) from None
