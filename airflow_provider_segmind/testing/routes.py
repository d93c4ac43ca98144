"""Which request is this: a path on an origin, mapped to its request class and its handler.

The request class (``v1``, ``v2_submit``, ``v2_status``, ``v2_result``, ``credits``, ``cdn`` or
``other``) is what a :class:`~airflow_provider_segmind.testing.faults.Fault` targets and what the
rate limit counts, so it is decided once, here, from the method, the path and the origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_segmind.testing import responses

if TYPE_CHECKING:
    from airflow_provider_segmind.testing.responses import Handler

# Path segments under /v1 and /v2 that are API routes, never model slugs.
_RESERVED_V1 = frozenset({"get-user-credits", "requests"})
_RESERVED_V2 = frozenset({"requests"})

#: The handler of each request class; ``other`` has none and answers 404 (after the key check).
ROUTES: dict[str, Handler] = {
    "v1": responses.generate_v1,
    "v2_submit": responses.submit_v2,
    "v2_status": responses.v2_status,
    "v2_result": responses.v2_result,
    "credits": responses.user_credits,
    "cdn": responses.cdn_file,
}


@dataclass(frozen=True)
class Route:
    """A request's class, its handler (None: 404), and the path segments the handler needs.

    ``slug`` is the model of a generation; ``request_id`` the request a status or result call, or
    a CDN download, is about; ``file`` the CDN file name (``<index>.<format>``).
    """

    endpoint: str
    handler: Handler | None
    slug: str = ""
    request_id: str = ""
    file: str = ""


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


def match_route(method: str, path: str, origin: str) -> Route:
    """The route of a request: ``/v1/<slug>``, ``/v2/requests/<id>/status``, ``/outputs/<id>/<file>``."""
    endpoint = classify_endpoint(method, path, origin)
    parts = [part for part in path.split("/") if part]
    handler = ROUTES.get(endpoint)
    if endpoint in ("v1", "v2_submit"):
        return Route(endpoint, handler, slug=parts[1])
    if endpoint in ("v2_status", "v2_result"):
        return Route(endpoint, handler, request_id=parts[2])
    if endpoint == "cdn":
        if method.upper() in ("GET", "HEAD") and len(parts) == 3 and parts[0] == "outputs":
            return Route(endpoint, handler, request_id=parts[1], file=parts[2])
        return Route(endpoint, None)
    return Route(endpoint, handler)
