"""Ctrl-C (SIGINT) or SIGTERM during a scan: stop cleanly, and say what was done.

A sweep runs on worker threads; a KeyboardInterrupt in the main thread would leave them running behind a report
never written (a copy registered, nobody told). So the first signal only sets an event: the sweep starts nothing new,
what is in flight (one describe, one registration) finishes, and the scan writes the rows it has with one line saying
it was interrupted. A second signal raises KeyboardInterrupt at once (main: one line, exit 130).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopping:
    """Within `with Stopping() as stopping:` the first SIGINT/SIGTERM sets `stopping.event`; handlers are restored on
    exit. Only the main thread can install handlers: elsewhere the event is never set. `on_again`: called (with the
    signal's name) on every later signal instead of raising, for work that must finish (verify's clean-up)."""

    def __init__(self, on_again: Callable[[str], None] | None = None) -> None:
        self.on_again = on_again
        self.event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Stopping:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        # Once stopping, what is left is reporting and exiting with 128 + N: a later signal is ignored rather than
        # met by the default handler, whose KeyboardInterrupt outside main's try (as the interpreter joins its
        # threads) would end the process by the signal itself, with no exit code of ours.
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_IGN if self.event.is_set() else handler)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            if self.on_again is not None:
                self.on_again(signal.Signals(signum).name)
                return
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.signum = signum
        self.event.set()

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signum in (None, signal.SIGINT) else signal.Signals(self.signum).name
