"""Ctrl-C and SIGTERM as `KeyboardInterrupt`, deferred while state is being written.

A process started in the background from a non-interactive shell ignores SIGINT, and SIGTERM
(a scheduler's kill) would end Python without cleanup; both are turned into `KeyboardInterrupt`
so the MLflow runs are closed as KILLED. Inside `critical()` (the tuner saving its state, the
summary being written) the interrupt waits until the block ends, so nothing is left half-written.

The first signal decides: later ones (a second Ctrl-C, a scheduler's repeated SIGTERM) change
nothing, so the clean stop they asked for is not itself interrupted. A library that swallows the
`KeyboardInterrupt` (a bare `except:` in Keras' model build) cannot cancel it either: `check()`,
called at safe points (every training batch, every trial's end), raises it again.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_state = {"depth": 0, "pending": None, "requested": None}


def _handler(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    if _state["requested"]:  # already stopping: the stop in progress is the answer
        return
    _state["requested"] = name
    # From now on the OS drops both signals: Python resets handlers to the default (die at once) while it
    # shuts down, but leaves "ignore" in place, so a second signal cannot kill the exit in progress.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _state["depth"]:
        _state["pending"] = name
        return
    raise KeyboardInterrupt(name)


def check() -> None:
    """Raise the interrupt again if one was requested and is not being handled (a library swallowed it).

    Only on the main thread and outside `critical()`; call it where stopping is safe.
    """
    if _state["requested"] and not _state["depth"] and threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt(_state["requested"])


def install() -> None:
    """Route SIGINT and SIGTERM to `KeyboardInterrupt` (main thread only)."""
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


@contextmanager
def installed_for_the_block() -> Iterator[None]:
    """`install` for the block only, then the process's own handlers and a clean state again: a search run from a
    notebook or a script (`search.api.run`) leaves Ctrl-C as it found it. Off the main thread, nothing is
    installed (Python allows signal handlers only there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    install()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        _state.update(depth=0, pending=None, requested=None)


@contextmanager
def critical() -> Iterator[None]:
    """Hold interrupts until the block has finished writing.

    Only the main thread is ever interrupted (Python runs signal handlers there), so on any other
    thread (the MLflow logging thread) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if not _state["depth"] and _state["pending"]:  # an inner block leaves it to the outermost
            pending, _state["pending"] = _state["pending"], None
            raise KeyboardInterrupt(pending)
