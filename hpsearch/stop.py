"""Stopping a run cleanly: SIGINT and SIGTERM ask for a stop that takes effect at the
next epoch boundary, inside the objective, where Optuna can mark the trial FAIL
safely. A KeyboardInterrupt raised at an arbitrary point could land in the middle of
Optuna writing a trial and leave it RUNNING; this never does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Interrupted(Exception):
    """The run was asked to stop; finished trials are kept, the running one is FAIL."""


class StopRequest:
    """A flag set by a signal and checked by the training loop between epochs."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def requested(self) -> bool:
        return self._event.is_set()

    def request(self) -> None:
        self._event.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early when a stop is requested."""
        return self._event.wait(seconds)

    def check(self, where: str) -> None:
        if self._event.is_set():
            raise Interrupted(f"stop requested; the trial ended {where}")


@contextmanager
def graceful_stop(
    *, escalate: bool = True, on_request: Callable[[], None] | None = None
) -> Iterator[StopRequest]:
    """Within the block, SIGINT and SIGTERM set the stop flag (and call `on_request`,
    e.g. to pass the request on to worker processes). With `escalate`, a second SIGINT
    raises KeyboardInterrupt at once, for a user who will not wait for the epoch."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be installed by the main thread
        return

    def handle(signum: int, _frame: object) -> None:
        if escalate and signum == signal.SIGINT and stop.requested():
            raise KeyboardInterrupt
        stop.request()
        if on_request is not None:
            on_request()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def interrupt_held() -> Iterator[None]:
    """Within the block, Ctrl-C is held and raised as KeyboardInterrupt when the block
    ends. For short work where an interrupt at an arbitrary point is lost: Python
    swallows a KeyboardInterrupt raised inside a weakref callback or a finalizer
    ("Exception ignored in ..."), as happens while Alembic loads its scripts, and the
    command would then go on as if never interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
