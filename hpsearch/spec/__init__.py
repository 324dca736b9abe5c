"""Study specs: one TOML file per study, loaded into frozen, validated dataclasses.

Every key has a default (the defaults are the default study), so a spec can be a few
lines. `hpsearch.spec` is the import path for all of it; the parts live in

- `schema`: the dataclasses (StudySpec and its sections, ranges, InitHealth) and their
  plain-data form;
- `searchable`: the settings a search may vary, with their bounds and sensible limits;
- `checks`: SpecError and the checks of one value, each naming the file and the key;
- `parse`: load, loads and from_dict, which validate a whole spec; with_overrides, a
  spec with command-line options applied and validated the same way; and dumps.
"""

from hpsearch.spec.checks import SpecError
from hpsearch.spec.parse import dumps, from_dict, load, loads, with_overrides
from hpsearch.spec.schema import (
    DEFAULT_PRUNER_OPTIONS,
    DEFAULT_STORAGE,
    DIRECTIONS,
    KNOWN_DIRECTIONS,
    MAX_NAME_LENGTH,
    MAX_SEED,
    MAX_STEPS,
    MODEL_KINDS,
    NETWORK_METRICS,
    NO_DATA,
    PRUNERS,
    SAMPLERS,
    Bound,
    Choice,
    Confirm,
    DataSpec,
    FloatRange,
    InitHealth,
    IntRange,
    ModelSpec,
    Objective,
    Param,
    SearchSpec,
    StudySpec,
    TrainingSpec,
)
from hpsearch.spec.searchable import MAX_HIDDEN_DEPTH, MAX_HIDDEN_WIDTH, SEARCHABLE, Setting

__all__ = [
    "DEFAULT_PRUNER_OPTIONS",
    "DEFAULT_STORAGE",
    "DIRECTIONS",
    "KNOWN_DIRECTIONS",
    "MAX_HIDDEN_DEPTH",
    "MAX_HIDDEN_WIDTH",
    "MAX_NAME_LENGTH",
    "MAX_SEED",
    "MAX_STEPS",
    "MODEL_KINDS",
    "NETWORK_METRICS",
    "NO_DATA",
    "PRUNERS",
    "SAMPLERS",
    "SEARCHABLE",
    "Bound",
    "Choice",
    "Confirm",
    "DataSpec",
    "FloatRange",
    "InitHealth",
    "IntRange",
    "ModelSpec",
    "Objective",
    "Param",
    "SearchSpec",
    "Setting",
    "SpecError",
    "StudySpec",
    "TrainingSpec",
    "dumps",
    "from_dict",
    "load",
    "loads",
    "with_overrides",
]
