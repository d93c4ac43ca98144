"""How the local Segmind server behaves: every setting a test may change, validated in one place.

The settings are one frozen value. A change replaces it whole, so a request never sees half of an
update, and going back to the constructor's settings between tests (the pytest plugin shares one
server per session) is one assignment that cannot forget a field added later.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_API_KEY = "SG_local_test_key"
#: How v1 answers: the image itself, JSON with base64 image(s), or JSON with CDN URL(s).
V1_RESPONSE_MODES = frozenset({"bytes", "json_base64", "json_url"})
#: What the rate limit counts: generations only (v1 and v2 submits) or every API request.
RATE_LIMIT_SCOPES = frozenset({"generate", "all"})
#: How a 429 says when to come back; see :class:`ServerSettings`.
RATE_LIMIT_HEADERS = frozenset({"retry_after", "segmind", "both"})


@dataclass(frozen=True)
class ServerSettings:
    """The behaviour of a :class:`~airflow_provider_segmind.testing.SegmindTestServer`.

    :param api_key: the only ``x-api-key`` the API accepts (the CDN needs none).
    :param latency: seconds a v1 generation takes before it answers.
    :param generation_seconds: seconds a v2 request takes from submission to COMPLETED (a third of
        it QUEUED, the rest PROCESSING); read at submission.
    :param rate_limit: ``(max_requests, window_seconds)`` in fixed windows, or None for no limit.
    :param rate_limit_scope: ``generate`` (v1 and v2 submits count) or ``all`` (every API call).
    :param rate_limit_headers: how a 429 is answered. ``retry_after``: body
        ``{"error": "Rate limit exceeded"}`` and ``Retry-After`` in whole seconds. ``segmind``:
        Segmind's documented shape, body ``{"error": "rate_limit_exceeded"}`` and
        ``x-rate-limit-reset-at-utc`` with the moment the window reopens, no ``Retry-After``.
        ``both``: Segmind's body with both headers. The reset header is written as ISO 8601 in UTC
        with milliseconds (``2026-11-25T12:34:56.789Z``); Segmind's real format is unverified.
    :param send_retry_after: False leaves ``Retry-After`` out of every 429, whatever the shape.
    :param price: credits one image costs; charged when a generation is accepted.
    :param v1_response: one of :data:`V1_RESPONSE_MODES`.
    :param images_per_request: images each generation makes.
    :param known_models: the only slugs that exist (others answer 404), or None for any slug.
    :param retired_models: slugs that answer 410, as a retired Segmind model does.
    :param result_ttl: seconds a request and its images are kept after submission.
    """

    api_key: str = DEFAULT_API_KEY
    latency: float = 0.0
    generation_seconds: float = 0.0
    rate_limit: tuple[int, float] | None = None
    rate_limit_scope: str = "generate"
    rate_limit_headers: str = "retry_after"
    send_retry_after: bool = True
    price: float = 0.154
    v1_response: str = "bytes"
    images_per_request: int = 1
    known_models: frozenset[str] | None = None
    retired_models: frozenset[str] = frozenset()
    result_ttl: float = 3600.0

    def __post_init__(self) -> None:
        # A typo in a test's setting would otherwise silently change nothing.
        if self.rate_limit_scope not in RATE_LIMIT_SCOPES:
            raise ValueError(f"rate_limit_scope must be one of {sorted(RATE_LIMIT_SCOPES)}")
        if self.rate_limit_headers not in RATE_LIMIT_HEADERS:
            raise ValueError(f"rate_limit_headers must be one of {sorted(RATE_LIMIT_HEADERS)}")
        if self.v1_response not in V1_RESPONSE_MODES:
            raise ValueError(f"v1_response must be one of {sorted(V1_RESPONSE_MODES)}")
        if self.images_per_request < 1:
            raise ValueError("images_per_request must be at least 1")
        if self.rate_limit is not None:
            max_requests, window = self.rate_limit
            if max_requests < 1 or window <= 0:
                raise ValueError("rate_limit must be (max_requests >= 1, window_seconds > 0) or None")
            object.__setattr__(self, "rate_limit", (int(max_requests), float(window)))
        if self.known_models is not None:
            object.__setattr__(self, "known_models", frozenset(self.known_models))
        object.__setattr__(self, "retired_models", frozenset(self.retired_models))
