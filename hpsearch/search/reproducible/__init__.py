"""Reproducible parallel search: a trial's parameters, pruning and numbers depend on the
spec and the seed alone, not on how many workers run it, where, or how fast.

With free parallel workers, what a trial is sampled from and judged against depends on
which other trials happened to be ahead. Here every trial has a *slot*, its place in the
search, and what it sees is fixed by the slot:

- Sampling: the trial in slot s is sampled from the finished trials of the slots below
  s - lag (and a parent round's copies), by a fresh sampler seeded by (seed, slot). It
  waits for those trials when they still run; the lag is what lets workers run side by
  side without waiting (up to lag + 1 trials at once).
- Pruning, at epoch e: it is judged against the values at epoch e of every earlier slot
  that reached epoch e, waiting until each earlier slot has reached it or ended. That is
  nearly what one worker's median pruner sees (a trial pruned at e counts at e too,
  being known by then), so pruning is not weakened by the lag, and workers move through
  the epochs side by side.
- Its training draws are seeded by the slot.

Slots and trial numbers agree until a trial has to run again (its worker died, was
stopped, or gave way; see below). Its repeat, a new trial with a new number, keeps the
slot (and the parameters) of the trial it repeats (`retried_trial_number` of Optuna's
RetryHeartbeatStaleTrialCallback says which); later trials' slots skip the repeats, and
the trials refused for a full budget. Warm-start copies of a parent round take the first
slots and are shown to every trial (and judged against by none, as in hpsearch.search.pruning);
start points are trials like any other.

A trial that needs a slot whose trial is queued but not started gives way: it ends
(FAIL) with a repeat of itself queued after the one it needs, so a lone worker cannot
wait on a trial only it could run.
"""

from hpsearch.search.reproducible.gate import Gate, GiveWay
from hpsearch.search.reproducible.search import LaggedPruner, LaggedSampler, attach
from hpsearch.search.reproducible.slots import Snapshot, slots

__all__ = ["Gate", "GiveWay", "LaggedPruner", "LaggedSampler", "Snapshot", "attach", "slots"]
