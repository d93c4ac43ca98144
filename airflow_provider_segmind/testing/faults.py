"""Faults the local Segmind server can be told to answer with, and which requests they hit.

Real clients meet gateways that answer HTML, connections that die half-way through an image and
bodies that are not what the headers promise. A test that wants to see its client survive one of
those queues a :class:`Fault`; the server consumes faults in order, so a test can script "first a
502, then a success" without any timing games.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

#: What a fault does to the request it hits. See :class:`Fault` for each one's meaning.
FAULT_KINDS: frozenset[str] = frozenset(
    {
        "status",
        "html",
        "empty",
        "truncated",
        "wrong_content_type",
        "malformed_json",
        "not_an_image",
        "drop",
        "delay",
        "trickle",
    }
)

#: The request classes a fault can target. ``other`` (unknown API paths) is only hit by ``*``.
ENDPOINTS: frozenset[str] = frozenset({"v1", "v2_submit", "v2_status", "v2_result", "credits", "cdn", "*"})


@dataclass
class Fault:
    """One scripted misbehaviour, applied to the next ``times`` requests of ``endpoint``.

    kinds:
      ``status`` answer ``status`` with a JSON ``{"error": message}`` body;
      ``html`` answer ``status`` with an HTML error page, as a gateway would;
      ``empty`` answer ``status`` with an empty body;
      ``truncated`` answer 200 promising more bytes (Content-Length) than are sent, then hang up;
      ``wrong_content_type`` answer 200 ``text/plain``;
      ``malformed_json`` answer 200 ``application/json`` that does not parse;
      ``not_an_image`` answer 200 ``image/png`` whose bytes are no image;
      ``drop`` close the connection without answering;
      ``delay`` wait ``delay`` seconds, then answer normally (read-timeout tests);
      ``trickle`` answer normally, but send the body one byte every ``interval`` seconds after
      the status line and headers (whose Content-Length is the full body's): a server that never
      stalls long enough for a per-read timeout, for clients whose waits must end at a deadline.

    ``headers`` are added to the answer, broken or (``delay``, ``trickle``) normal.
    """

    kind: str = "status"
    status: int = 500
    message: str = "Injected fault"
    endpoint: str = "*"
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    delay: float = 0.0
    interval: float = 2.0

    def __post_init__(self) -> None:
        # A typo in a test's fault would otherwise silently never fire and the test would pass
        # for the wrong reason.
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose from {sorted(FAULT_KINDS)}")
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown fault endpoint {self.endpoint!r}; choose from {sorted(ENDPOINTS)}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.interval <= 0:
            raise ValueError("interval must be positive")

    def matches(self, endpoint: str) -> bool:
        """Whether this fault applies to a request classified as ``endpoint``.

        ``*`` stands for "the API", so it never reaches the CDN: a test faulting the API must not
        also break the image downloads it expects to work.
        """
        if self.endpoint == "*":
            return endpoint != "cdn"
        return self.endpoint == endpoint


@dataclass
class _Pending:
    fault: Fault
    left: int


class FaultQueue:
    """Thread-safe ordered faults; each is used up after ``times`` hits.

    The count lives here rather than on the :class:`Fault`, so a test can inject the same Fault
    object twice or reuse it across servers without it having been silently used up.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._pending.extend(_Pending(fault, fault.times) for fault in faults)

    def take(self, endpoint: str) -> Fault | None:
        """Consume one use of the first pending fault matching ``endpoint``, if any."""
        with self._lock:
            for index, pending in enumerate(self._pending):
                if pending.fault.matches(endpoint):
                    pending.left -= 1
                    if pending.left == 0:
                        del self._pending[index]
                    return pending.fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [pending.fault for pending in self._pending]

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
