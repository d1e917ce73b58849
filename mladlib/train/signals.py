"""A graceful stop on SIGINT/SIGTERM: the first one asks the run to stop after the current
optimizer step (it then writes a checkpoint); a second SIGINT aborts at once."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType

#: Exit status of a process that stopped on a signal, by the shell's convention (128 + n).
EXIT_CODES = {"SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}


class GracefulStop:
    """Context manager; ``requested`` holds ``"SIGINT"``/``"SIGTERM"`` once a signal came.

    Handlers are installed only in the main thread (Python allows no other) and the
    previous ones are restored on exit. ``announce`` prints one line to stderr when a
    signal arrives (rank 0 of a distributed job; the others stay quiet).
    """

    def __init__(self, announce: bool = True) -> None:
        self.requested: str | None = None
        self.announce = announce
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now, without a checkpoint
        self.requested = self.requested or name
        if self.announce:
            print(f"\n{name} received: stopping after the current step and writing a checkpoint "
                  "(press Ctrl-C again to abort at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
