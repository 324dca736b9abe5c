"""What one trial is: the built-in NumPy network or a user's Python entry, behind one
small interface (`TrialKind`). The spec names its kind; `kind_of` is the one place that
turns that name into behaviour."""

from types import MappingProxyType

from hpsearch.spec import StudySpec
from hpsearch.trials.kind import FinalRun, TrialKind, TrialObjective
from hpsearch.trials.network import NetworkKind
from hpsearch.trials.python import PythonKind

KINDS = MappingProxyType({"multilayernet": NetworkKind(), "python": PythonKind()})


def kind_of(spec: StudySpec) -> TrialKind:
    """The trial kind of a spec's `[model] kind`."""
    return KINDS[spec.model.kind]


__all__ = ["KINDS", "FinalRun", "TrialKind", "TrialObjective", "kind_of"]
