"""The fast path to Optuna's relational storage, and the one place in hpsearch that reads
Optuna's private names: `names` reads them all (ORM models, a study's storage, a trial's
id, the median pruner's start-up count, two loggers); the others override the storage
methods `_CachedStorage` calls.
tests/test_fast_rdb.py and tests/test_optuna_contract.py hold the contract: they fail
loudly when a release changes them.

- `statements`: the SQL on Optuna's tables, built once.
- `methods`: Optuna's storage methods by what hpsearch does with them.
- `reads`: Optuna's hot trial reads in Core.
- `storage`: `SharedRDBStorage`, Optuna's RDBStorage with Core reads and writes.
- `names`: every private name of Optuna that hpsearch reads, in one module.
"""

from hpsearch.storage.fast_rdb.methods import (
    DATABASE_METHODS,
    OVERRIDDEN_READS,
    OVERRIDDEN_WRITES,
    READ_METHODS,
    STALE_CHECK,
)
from hpsearch.storage.fast_rdb.names import (
    MODELS_FOUND,
    OPTIMIZE_LOGGER,
    RDB_LOGGER,
    discard_session,
    heartbeat_interval,
    rdb_backend,
    set_user_attrs,
    startup_trials,
    study_id,
    study_storage,
)
from hpsearch.storage.fast_rdb.statements import to_stored
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
    "discard_session",
    "heartbeat_interval",
    "rdb_backend",
    "set_user_attrs",
    "startup_trials",
    "study_id",
    "study_storage",
    "to_stored",
]
