"""Stopping long work cleanly on SIGINT (Ctrl-C) or SIGTERM (kill, systemd, cron's timeout): the one signal
handler of gemb2, used by `gemb2 embed` (gemb2/pipeline/embed.py) and `gemb2 export model` (gemb2/export/onnx.py).

    with StopSignal() as stop:
        report = run_embed(..., stop=stop)      # the run polls `stop` and ends early when it is set
    if stop.signum: ...                          # exit 128 + signum (130 for SIGINT, 143 for SIGTERM)

The first signal only sets a flag: the run finishes the batch in hand, commits what is complete, and
returns. While the work is in a `with stop.waiting():` block (a run blocked on its loader processes; an
export, which is all one such block), the signal also raises `Interrupted` there, so a file that takes
minutes to decode or a graph that takes minutes to trace does not delay the stop; `Interrupted` is a
KeyboardInterrupt, which the `except Exception` of library code lets through (and `stop.is_set()` says
so even where a library swallowed it). A second signal kills the process at once (the default action:
the shell sees 130 / 143); what was committed stands, and the rerun finishes the rest.
Handlers are installed only in the main thread; elsewhere `StopSignal` is a flag nobody sets.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gemb2.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)
__all__ = ["Interrupted", "StopSignal"]


class StopSignal:
    def __init__(self) -> None:
        self.signum: int | None = None
        self._waiting = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def is_set(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process ended by it: 130 (SIGINT), 143 (SIGTERM)."""
        return 128 + (self.signum or 0)

    def raise_if_set(self) -> None:
        """Raise `Interrupted` if a stop signal came (also one whose KeyboardInterrupt a library swallowed)."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """A block during which a stop signal raises `Interrupted` (it is blocked waiting, or busy in a library)."""
        self.raise_if_set()
        self._waiting = True
        try:
            yield
        finally:
            self._waiting = False

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:  # the second signal: die of it at once, as a process without a handler does
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        self.signum = signum
        if self._waiting:
            self._waiting = False
            raise Interrupted(signum)


def interrupt_on_sigterm() -> None:
    """From now on SIGTERM raises `Interrupted` (as SIGINT raises KeyboardInterrupt): `finally` blocks run, locks
    and temporary files are released, and the command line exits 143 with one line. Main thread only; a handler
    someone else installed stays."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_interrupted)


def _raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signum)
