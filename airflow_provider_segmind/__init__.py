"""Apache Airflow provider for Segmind's image-generation API.

Importing this package is cheap on purpose: DAG files are parsed every few seconds, so nothing
here imports requests, httpx or Pillow. Import the hook, operator, sensor or trigger from their
own modules.
"""

from __future__ import annotations

__version__ = "0.1.0"
