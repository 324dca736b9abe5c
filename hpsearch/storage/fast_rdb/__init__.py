"""The fast path to Optuna's relational storage, and the one place in hpsearch that reads
Optuna's private names (ORM models, the storage methods `_CachedStorage` calls, a study's
storage, a trial's id, the median pruner's start-up count, two loggers).
tests/test_fast_rdb.py and tests/test_optuna_contract.py hold the contract: they fail
loudly when a release changes them.

- `statements`: the SQL on Optuna's tables, built once.
- `methods`: Optuna's storage methods by what hpsearch does with them.
- `reads`: Optuna's hot trial reads in Core.
- `storage`: `SharedRDBStorage`, Optuna's RDBStorage with Core reads and writes.
- `names`: the other private names (a study's storage and id, loggers, ...).
"""

from hpsearch.storage.fast_rdb.methods import (
    DATABASE_METHODS,
    OVERRIDDEN_READS,
    OVERRIDDEN_WRITES,
    READ_METHODS,
    STALE_CHECK,
)
from hpsearch.storage.fast_rdb.names import (
    OPTIMIZE_LOGGER,
    RDB_LOGGER,
    heartbeat_interval,
    rdb_backend,
    set_user_attrs,
    startup_trials,
    study_id,
    study_storage,
)
from hpsearch.storage.fast_rdb.statements import MODELS_FOUND, to_stored
from hpsearch.storage.fast_rdb.storage import SharedRDBStorage

__all__ = [
    "DATABASE_METHODS",
    "MODELS_FOUND",
    "OPTIMIZE_LOGGER",
    "OVERRIDDEN_READS",
    "OVERRIDDEN_WRITES",
    "RDB_LOGGER",
    "READ_METHODS",
    "STALE_CHECK",
    "SharedRDBStorage",
    "heartbeat_interval",
    "rdb_backend",
    "set_user_attrs",
    "startup_trials",
    "study_id",
    "study_storage",
    "to_stored",
]
