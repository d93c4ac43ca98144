"""A local, Segmind-compatible HTTP server for testing code that uses this provider.

``SegmindTestServer`` serves the Segmind API (v1, v2, credits) and a CDN origin on loopback,
records every request and can be scripted to misbehave with ``Fault``. Importing this package is
cheap and needs neither Pillow nor aiohttp; starting a server needs both (``pip install
'airflow-provider-segmind[testing]'``).
"""

from __future__ import annotations

from airflow_provider_segmind.testing.faults import Fault
from airflow_provider_segmind.testing.server import RecordedRequest, SegmindTestServer

__all__ = ["Fault", "RecordedRequest", "SegmindTestServer"]
