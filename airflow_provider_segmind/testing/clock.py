"""The time the local Segmind server's state runs on, injectable so tests need not sleep.

Job progress (QUEUED -> PROCESSING -> COMPLETED), rate-limit windows, result expiry and request
timestamps all read a :class:`Clock`. A test that wants to see a window reopen or a result expire
hands the server a :class:`ManualClock` and moves it, instead of sleeping on a shared CI machine.

Two readings are needed: a monotonic one for durations (wall time can jump) and a wall one for
what a client sees as a date (request timestamps, Segmind's ``x-rate-limit-reset-at-utc``).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Where the server's state reads the time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def time(self) -> float:
        """Seconds since the Unix epoch (UTC), for dates shown to clients."""
        ...


class SystemClock:
    """The real time: ``time.monotonic`` and ``time.time``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to; both readings move together.

    ``start`` is the wall time it shows first (2026-01-01T00:00:00Z by default).
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._lock = threading.Lock()
        self._elapsed = 0.0
        self._start = start

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def time(self) -> float:
        with self._lock:
            return self._start + self._elapsed

    def advance(self, seconds: float) -> None:
        """Move both readings forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._elapsed += seconds
