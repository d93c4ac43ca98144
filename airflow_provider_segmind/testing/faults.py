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
    }
)

#: The request classes a fault can target. ``other`` (unknown API paths) is only hit by ``*``.
ENDPOINTS: frozenset[str] = frozenset({"v1", "v2_submit", "v2_status", "v2_result", "credits", "cdn", "*"})

# Path segments under /v1 and /v2 that are API routes, never model slugs.
_RESERVED_V1 = frozenset({"get-user-credits", "requests"})
_RESERVED_V2 = frozenset({"requests"})


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
      ``delay`` wait ``delay`` seconds, then answer normally (read-timeout tests).
    """

    kind: str = "status"
    status: int = 500
    message: str = "Injected fault"
    endpoint: str = "*"
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    delay: float = 0.0

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

    def matches(self, endpoint: str) -> bool:
        """Whether this fault applies to a request classified as ``endpoint``.

        ``*`` stands for "the API", so it never reaches the CDN: a test faulting the API must not
        also break the image downloads it expects to work.
        """
        if self.endpoint == "*":
            return endpoint != "cdn"
        return self.endpoint == endpoint


def classify_endpoint(method: str, path: str, origin: str) -> str:
    """Name the request class a fault's ``endpoint`` refers to (``other`` for unknown routes)."""
    if origin == "cdn":
        return "cdn"
    parts = [part for part in path.split("/") if part]
    method = method.upper()
    if method == "POST" and len(parts) == 2:
        if parts[0] == "v1" and parts[1] not in _RESERVED_V1:
            return "v1"
        if parts[0] == "v2" and parts[1] not in _RESERVED_V2:
            return "v2_submit"
    if method == "GET":
        if parts == ["v1", "get-user-credits"]:
            return "credits"
        if len(parts) == 4 and parts[:2] == ["v2", "requests"] and parts[3] == "status":
            return "v2_status"
        if len(parts) == 3 and parts[1] == "requests" and parts[0] in ("v1", "v2"):
            return "v2_result"
    return "other"


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
