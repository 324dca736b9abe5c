"""Which relational storage class this process opens databases with: hpsearch's fast
path (`fast_rdb.SharedRDBStorage`) only on the Optuna releases its contract tests ran
against; any other release gets Optuna's plain RDBStorage, correct and slower, with a
one-line warning naming the version.
"""

from __future__ import annotations

import functools
import logging
import os

import optuna

from hpsearch.storage.fast_rdb import (
    DATABASE_METHODS,
    MODELS_FOUND,
    STALE_CHECK,
    SharedRDBStorage,
)
from hpsearch.storage.retry import RetryPolicy, ride_out_outages

logger = logging.getLogger(__name__)


class PlainRDBStorage(optuna.storages.RDBStorage):
    """Optuna's own RDBStorage, riding out outages like the fast one."""

    retry_policy: RetryPolicy | None = None  # set by open_storage


ride_out_outages(PlainRDBStorage, DATABASE_METHODS, STALE_CHECK)

# Optuna releases (major.minor) whose private names the contract tests were run against.
TESTED_OPTUNA = ("5.0", "5.1")
# Set to 0 to use Optuna's plain RDBStorage on a tested version too (to compare, or to
# rule hpsearch's storage out when something looks wrong).
FAST_PATH_VARIABLE = "HPSEARCH_FAST_STORAGE"


def fast_path_supported(version: str | None = None) -> bool:
    """Whether `version` of Optuna (default: the one imported) is one the fast path was
    tested against."""
    version = optuna.__version__ if version is None else version
    return MODELS_FOUND and ".".join(version.split(".")[:2]) in TESTED_OPTUNA


@functools.cache
def _warn_untested(version: str) -> None:
    logger.warning(
        "Optuna %s is not a version hpsearch was tested with (%s): using Optuna's plain "
        "RDBStorage, correct but slower",
        version,
        ", ".join(TESTED_OPTUNA),
    )


def rdb_storage_class() -> type[optuna.storages.RDBStorage]:
    """The relational storage class to open databases with: `SharedRDBStorage` on a
    tested Optuna, else Optuna's own (warning once per process)."""
    if os.environ.get(FAST_PATH_VARIABLE, "1") == "0":
        return PlainRDBStorage
    if not fast_path_supported():
        _warn_untested(optuna.__version__)
        return PlainRDBStorage
    return SharedRDBStorage
