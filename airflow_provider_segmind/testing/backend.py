"""The local Segmind server's state: account, queued requests, rate limit, faults, request log.

Like a moto backend, this knows nothing of sockets or HTTP: it is what Segmind would remember
between two requests, guarded by one lock so the HTTP layer may call it from anywhere. Time comes
from an injectable :class:`~airflow_provider_segmind.testing.clock.Clock`, so the state can be
driven (a window reopening, a result expiring) without sleeping.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_segmind.testing.clock import Clock, SystemClock
from airflow_provider_segmind.testing.faults import FaultQueue
from airflow_provider_segmind.testing.recording import RequestLog

if TYPE_CHECKING:
    from airflow_provider_segmind.testing.settings import ServerSettings
    from airflow_provider_segmind.testing.validation import GenerationParams

QUEUED, PROCESSING, COMPLETED, FAILED = "QUEUED", "PROCESSING", "COMPLETED", "FAILED"
#: Request classes that are generations, counted by the default ``generate`` rate-limit scope.
GENERATE_ENDPOINTS = frozenset({"v1", "v2_submit"})


@dataclass
class Job:
    """A generation whose images the CDN can serve: every v2 request, and v1 ``json_url`` answers.

    ``images`` caches each image once drawn, so repeated downloads get identical bytes.
    """

    request_id: str
    api: str
    params: GenerationParams
    count: int
    submitted: float
    duration: float
    error: str | None
    images: dict[int, bytes] = field(default_factory=dict)

    def state(self, now: float) -> str:
        """QUEUED for the first third of ``duration``, then PROCESSING, then the outcome."""
        elapsed = now - self.submitted
        if elapsed < self.duration / 3:
            return QUEUED
        if elapsed < self.duration:
            return PROCESSING
        return FAILED if self.error is not None else COMPLETED

    def metrics(self) -> dict[str, float]:
        return {"inference_time": round(self.duration, 3)}


class FixedWindow:
    """Segmind-style fixed-window rate limiting; callers hold the backend's lock."""

    def __init__(self, limit: tuple[int, float] | None) -> None:
        self.limit = limit
        self._window_end = 0.0
        self._count = 0

    def admit(self, now: float) -> float | None:
        """Count one request; None if it may pass, else the seconds until the window reopens."""
        if self.limit is None:
            return None
        max_requests, window = self.limit
        if now >= self._window_end:
            self._window_end = now + window
            self._count = 0
        if self._count >= max_requests:
            return self._window_end - now
        self._count += 1
        return None


class SegmindBackend:
    """Everything the local server remembers, and the rules that change it.

    ``defaults`` and ``credits`` are what :meth:`restore_defaults` goes back to.
    """

    def __init__(self, defaults: ServerSettings, credits: float, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.faults = FaultQueue()
        self.log = RequestLog()
        self._defaults = defaults
        self._initial_credits = float(credits)
        self._lock = threading.RLock()
        self._settings = defaults
        self._credits = float(credits)
        self._window = FixedWindow(defaults.rate_limit)
        self._jobs: dict[str, Job] = {}
        self._failures: list[str] = []

    # ----------------------------------------------------------------- settings

    @property
    def settings(self) -> ServerSettings:
        """The settings in force; a consistent snapshot (changes replace it whole)."""
        with self._lock:
            return self._settings

    def update(self, **changes: Any) -> None:
        """Change settings (validated); a new ``rate_limit`` starts a fresh window.

        A new limit is a different budget, so counting the old window against it would be wrong.
        """
        with self._lock:
            self._settings = replace(self._settings, **changes)
            if "rate_limit" in changes:
                self._window = FixedWindow(self._settings.rate_limit)

    # ----------------------------------------------------------------- credits

    @property
    def credits(self) -> float:
        with self._lock:
            return self._credits

    @credits.setter
    def credits(self, value: float) -> None:
        with self._lock:
            self._credits = float(value)

    def charge(self, cost: float) -> float | None:
        """Take ``cost`` from the balance and return what is left, or None if it does not cover it.

        Checked and taken under one lock, so concurrent generations never overspend.
        """
        with self._lock:
            if self._credits + 1e-9 < cost:
                return None
            self._credits = round(self._credits - cost, 9)
            return self._credits

    # ----------------------------------------------------------------- rate limit

    def admit(self, endpoint: str) -> float | None:
        """Count a request against the rate limit: None if it passes, else seconds to wait."""
        with self._lock:
            if self._settings.rate_limit_scope == "generate" and endpoint not in GENERATE_ENDPOINTS:
                return None
            return self._window.admit(self.clock.monotonic())

    # ----------------------------------------------------------------- jobs

    def fail_next_v2(self, error: str, count: int = 1) -> None:
        with self._lock:
            self._failures.extend([error] * count)

    def new_job(self, api: str, params: GenerationParams, *, count: int, queued: bool) -> Job:
        """Register a generation of ``count`` images.

        A ``queued`` one (v2) takes ``generation_seconds`` from now and takes the next failure
        queued by :meth:`fail_next_v2`; others are complete at once.
        """
        with self._lock:
            error = self._failures.pop(0) if queued and self._failures else None
            job = Job(
                request_id=uuid.uuid4().hex,
                api=api,
                params=params,
                count=count,
                submitted=self.clock.monotonic(),
                duration=max(0.0, self._settings.generation_seconds) if queued else 0.0,
                error=error,
            )
            self._jobs[job.request_id] = job
            return job

    def find_job(self, request_id: str, api: str | None = None) -> Job | None:
        """The job if it exists and has not expired; expired jobs are forgotten on the way."""
        now = self.clock.monotonic()
        with self._lock:
            ttl = self._settings.result_ttl
            for key in [key for key, job in self._jobs.items() if now - job.submitted > ttl]:
                del self._jobs[key]
            job = self._jobs.get(request_id)
        if job is None or (api is not None and job.api != api):
            return None
        return job

    def job_state(self, job: Job) -> str:
        return job.state(self.clock.monotonic())

    def cached_image(self, job: Job, index: int) -> bytes | None:
        with self._lock:
            return job.images.get(index)

    def keep_image(self, job: Job, index: int, data: bytes) -> bytes:
        """Cache a drawn image; if another request drew it first, theirs wins (same bytes)."""
        with self._lock:
            return job.images.setdefault(index, data)

    # ----------------------------------------------------------------- resets

    def reset(self) -> None:
        """Forget requests, faults, jobs, queued failures and the rate-limit window; credits stay."""
        self.faults.clear()
        self.log.clear()
        with self._lock:
            self._jobs.clear()
            self._failures.clear()
            self._window = FixedWindow(self._settings.rate_limit)

    def restore_defaults(self) -> None:
        """:meth:`reset`, and the settings and credits the backend was created with; no listeners."""
        self.log.unsubscribe_all()
        with self._lock:
            self._settings = self._defaults
            self._credits = self._initial_credits
            self.reset()
