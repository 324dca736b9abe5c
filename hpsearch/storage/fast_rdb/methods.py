"""Optuna's RDBStorage methods by what hpsearch does with them: the ones that only read
(DEFERRED transactions on SQLite), the ones SharedRDBStorage overrides, and every one
that reaches the database (each rides out outages). tests/test_fast_rdb.py checks each
name and signature against the installed Optuna.
"""

# Optuna's methods that only read: they begin DEFERRED transactions on SQLite.
READ_METHODS = (
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_trial_param",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_trial_id_from_study_id_trial_number",
    "get_best_trial",
    "get_all_studies",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "_get_stale_trial_ids",
)
# Optuna's reads that SharedRDBStorage does itself: in Core (`reads`), or less often.
OVERRIDDEN_READS = ("get_trial", "_get_trials", "_get_stale_trial_ids")
# Optuna's methods that SharedRDBStorage writes itself (its own `set_trial_user_attrs`,
# several attrs in one transaction, is new and is called by `names.set_user_attrs`).
OVERRIDDEN_WRITES = (
    "_create_new_trial",
    "_set_trial_param",
    "set_trial_intermediate_value",
    "set_trial_state_values",
    "set_trial_system_attr",
    "record_heartbeat",
)
# Every method that reaches the database, by the name Optuna's cache calls it by: each
# rides out outages (hpsearch.storage.retry). The stale-trial check waits after one.
DATABASE_METHODS = (
    *READ_METHODS,
    *OVERRIDDEN_WRITES,
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "create_new_trial",
    "set_trial_param",
    "set_trial_user_attr",
    "set_trial_user_attrs",
    "_get_best_trial_id",
)
STALE_CHECK = "_get_stale_trial_ids"
