"""Turn an Airflow connection into the settings both transports use.

One function, fed by the sync hook (``BaseHook.get_connection``) and by the triggerer (the async
connection helpers of common-compat), so the base URL, the key and the timeouts are read the same
way everywhere. The key lives only in ``ConnectionSettings.api_key``, which is kept out of
``repr`` and handed only to requests bound for the API's own origin.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_segmind.exceptions import SegmindConfigurationError, SegmindValidationError

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_CONN_ID = "segmind_default"
DEFAULT_BASE_URL = "https://api.segmind.com"
API_KEY_ENV_VAR = "SEGMIND_API_KEY"
#: A generation takes 40-60 s; a read timeout must leave room for that on v1.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0
API_KEY_HEADER = "x-api-key"
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")

NO_KEY_HINT = (
    "Give the key either as the password of the Airflow connection '{conn_id}' (UI: Admin > "
    'Connections, type \'Segmind\'; or AIRFLOW_CONN_{env_id}=\'{{"conn_type": "segmind", '
    '"password": "SG_..."}}\') or, for the default connection, in the environment variable '
    f"{API_KEY_ENV_VAR}."
)


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports made explicit, for same-origin checks."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


@dataclass(frozen=True)
class RateLimit:
    """A plan's limit: ``requests`` generations per ``seconds``."""

    requests: int
    seconds: float

    @property
    def spacing(self) -> float:
        """Seconds between two sends that keep to the limit in every window."""
        return self.seconds / self.requests

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}"


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to talk to the API; small, immutable, safe to log (the key is hidden)."""

    base_url: str
    api_key: str = field(repr=False)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    rate_limit: RateLimit | None = None

    def url(self, path: str) -> str:
        """Absolute URL of an API path such as ``/v1/gpt-image-1.5``."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def is_api_origin(self, url: str) -> bool:
        """True when ``url`` is on the API's own origin: the only place the key may go."""
        return origin_of(url) == origin_of(self.base_url)

    def headers_for(self, url: str) -> dict[str, str]:
        """Request headers for ``url``: the key for the API's origin, nothing for anyone else."""
        return {API_KEY_HEADER: self.api_key} if self.is_api_origin(url) else {}

    def request_url(self, request_id: str, kind: str, given_url: str | None = None) -> str:
        """The status (``kind="status"``) or result URL of a queued request, on this base URL.

        Segmind's submit answer names ``api.segmind.com``; behind a proxy or in tests the
        connection's host is used instead, so the key only ever goes to that host.
        """
        validate_request_id(request_id)
        if given_url:
            parts = urlsplit(given_url)
            return self.url(parts.path + (f"?{parts.query}" if parts.query else ""))
        suffix = "/status" if kind == "status" else ""
        return self.url(f"/v2/requests/{request_id}{suffix}")


def validate_request_id(request_id: str) -> str:
    """A request id as Segmind issues it; anything else could steer the URL path elsewhere."""
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise SegmindValidationError(
            f"Invalid request_id {request_id!r}: expected the id Segmind returned on submit "
            "(letters, digits, '-' and '_').",
            field="request_id",
        )
    return request_id


def normalise_base_url(host: str | None, port: int | None = None) -> str:
    """The base URL from a connection's host and port.

    ``https://api.segmind.com`` when no host is set. A host with a scheme (``http://127.0.0.1:8080``)
    replaces scheme, host and port; a bare host name gets https. A path such as ``/v1`` on the host
    is dropped, because every call names its own version.
    """
    if not host or not host.strip():
        return DEFAULT_BASE_URL
    raw = host.strip()
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SegmindConfigurationError(
            f"The Segmind connection's host {host!r} is not an http(s) URL.",
            hint="Set the host to e.g. https://api.segmind.com, or leave it empty.",
        )
    netloc = parts.hostname
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    effective_port = parts.port or port
    if effective_port:
        netloc = f"{netloc}:{effective_port}"
    return f"{parts.scheme}://{netloc}"


def _extra_number(extra: Mapping[str, Any], name: str, override: float | None, default: float) -> float:
    if override is not None:
        value: Any = override
    else:
        value = extra.get(name, extra.get(f"extra__segmind__{name}"))
        if value in (None, ""):
            return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SegmindConfigurationError(
            f"The Segmind connection's {name} must be a number of seconds, got {value!r}."
        ) from None
    if number <= 0:
        raise SegmindConfigurationError(f"The Segmind connection's {name} must be positive, got {number}.")
    return number


def parse_rate_limit(value: Any) -> RateLimit | None:
    """``"50/60"`` (requests/seconds) or ``50`` (per minute); empty or None means unknown."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    count_text, _, seconds_text = text.partition("/")
    try:
        requests = int(count_text)
        seconds = float(seconds_text) if seconds_text else 60.0
    except ValueError:
        requests, seconds = 0, 0.0
    if requests < 1 or not seconds > 0:
        raise SegmindConfigurationError(
            f"The Segmind connection's rate_limit must be requests/seconds such as '50/60' (or a number "
            f"of requests per minute), got {value!r}.",
            hint="Set it to your plan's limit, or leave it empty to learn it from Segmind's 429 answers.",
        )
    return RateLimit(requests, seconds)


def settings_from_connection(
    conn: Any,
    *,
    conn_id: str,
    extra: Mapping[str, Any] | None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> ConnectionSettings:
    """Build settings from an Airflow ``Connection`` (None when it does not exist).

    Hook arguments win over the connection's extras; ``extra`` is passed in because the sync and
    async paths read it differently. The key is the connection's password. When the connection is
    missing (only for the default connection id) or has no password, ``SEGMIND_API_KEY`` is used,
    as Segmind's own SDK does.
    """
    if conn is None and conn_id != DEFAULT_CONN_ID:
        raise SegmindConfigurationError(
            f"The Airflow connection '{conn_id}' does not exist.",
            hint="Create it (type 'Segmind', API key as password), or use 'segmind_default' with "
            f"{API_KEY_ENV_VAR}.",
        )
    password = conn.password if conn is not None else None
    api_key = (password or "").strip() or os.environ.get(API_KEY_ENV_VAR, "").strip()
    if not api_key:
        raise SegmindConfigurationError(
            "No Segmind API key was found.",
            hint=NO_KEY_HINT.format(conn_id=conn_id, env_id=conn_id.upper()),
        )
    extra = extra or {}
    return ConnectionSettings(
        base_url=normalise_base_url(conn.host, conn.port) if conn is not None else DEFAULT_BASE_URL,
        api_key=api_key,
        connect_timeout=_extra_number(extra, "connect_timeout", connect_timeout, DEFAULT_CONNECT_TIMEOUT),
        read_timeout=_extra_number(extra, "read_timeout", read_timeout, DEFAULT_READ_TIMEOUT),
        rate_limit=parse_rate_limit(extra.get("rate_limit", extra.get("extra__segmind__rate_limit"))),
    )
