"""An absolute moment by which a wait must end, shared by every wait in the provider.

Per-read socket timeouts do not bound a server that trickles one byte at a time, and a relative
timeout restarts whenever a process does. So every wait (a request, a download, a retry sleep, a
trigger's poll) is measured against one absolute moment, in Unix seconds: it serialises into a
trigger's kwargs as a plain float and means the same after a triggerer restart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """The Unix time (``time.time()``) at which waiting stops.

    :param at: the moment, in Unix seconds.
    :param what: what the deadline bounds, in words, for the error raised when it passes.
    """

    at: float
    what: str = "the deadline"

    @classmethod
    def after(cls, seconds: float, what: str = "the deadline") -> Deadline:
        return cls(time.time() + seconds, what)

    def remaining(self) -> float:
        """Seconds left; never negative."""
        return max(0.0, self.at - time.time())

    @property
    def expired(self) -> bool:
        return time.time() >= self.at

    def clamp(self, seconds: float) -> float:
        """``seconds``, or the time left when that is shorter: no single wait runs past ``at``."""
        return min(seconds, self.remaining())


def earliest(*deadlines: Deadline | None) -> Deadline | None:
    """The first of the given deadlines, ignoring None; None when none is given."""
    found = [d for d in deadlines if d is not None]
    return min(found, key=lambda d: d.at) if found else None
