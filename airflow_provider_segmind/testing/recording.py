"""What the local Segmind server saw: every request, as the client sent it, with its answer.

Tests of a client assert on what it actually put on the wire (one POST, never two; no key sent to
the CDN), which a mock cannot show. Records are immutable; the answer's status is filled in by
replacing the record, so a snapshot a test took earlier never changes under it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it, so tests can assert on exactly what a client sent.

    ``status`` is what the server answered, or None while the answer is pending and for
    connections the server dropped on purpose.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    origin: str
    status: int | None
    timestamp: float


class RequestLog:
    """The thread-safe, ordered list of recorded requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RecordedRequest] = []
        self._listeners: list[Callable[[RecordedRequest], None]] = []

    def subscribe(self, listener: Callable[[RecordedRequest], None]) -> None:
        """Call ``listener`` with each record once its answer is decided (status filled in).

        It runs on the thread that answers, in answer order, so it must be quick; a record
        cleared before its answer (a reset between tests) is not passed on. ``clear`` keeps
        listeners; :meth:`unsubscribe_all` drops them.
        """
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe_all(self) -> None:
        with self._lock:
            self._listeners.clear()

    def add(self, record: RecordedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def set_status(self, record: RecordedRequest, status: int | None) -> None:
        """Fill in the answer's status; a record cleared since (between tests) stays cleared."""
        with self._lock:
            # Searching from the end: the record is almost always among the latest.
            for index in range(len(self._records) - 1, -1, -1):
                if self._records[index] is record:
                    answered = self._records[index] = replace(record, status=status)
                    # Under the lock, so listeners see answers in the order they were decided.
                    for listener in self._listeners:
                        listener(answered)
                    return

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def find(
        self,
        method: str | None = None,
        path_prefix: str | None = None,
        origin: str | None = None,
        status: int | None = None,
    ) -> list[RecordedRequest]:
        """The recorded requests matching every filter given, in arrival order."""
        return [
            record
            for record in self.snapshot()
            if (method is None or record.method == method.upper())
            and (path_prefix is None or record.path.startswith(path_prefix))
            and (origin is None or record.origin == origin)
            and (status is None or record.status == status)
        ]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
