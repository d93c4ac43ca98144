"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

Kept free of imports: Airflow calls this in every component at start-up, and the connection form
is built from this dict alone (no hook import) on Airflow 3.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_segmind import __version__

#: Extra connection settings shown in the connection form (Airflow 3 ``conn-fields``) and read by
#: the hook from the connection's extras.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "connect_timeout": {
        "label": "Connect timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 10},
        "description": "How long to wait for a TCP/TLS connection to Segmind.",
    },
    "read_timeout": {
        "label": "Read timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 120},
        "description": (
            "How long to wait for an answer. A GPT Image 1.5 generation takes about 40-60 s, "
            "so keep this well above that for synchronous (v1) calls."
        ),
    },
    "rate_limit": {
        "label": "Rate limit (requests/seconds)",
        "schema": {"type": ["string", "null"], "default": None},
        "description": (
            "Your Segmind plan's limit, e.g. 50/60 for 50 generations a minute. Deferrable tasks of "
            "this connection then take turns in the triggerer and send no more than that. Empty: "
            "learned from Segmind's 429 answers."
        ),
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port", "login"],
    "relabeling": {"password": "API Key", "host": "Base URL"},
    "placeholders": {
        "host": "https://api.segmind.com",
        "password": "SG_...",
    },
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider, its connection type and its modules to Airflow."""
    return {
        "package-name": "airflow-provider-segmind",
        "name": "Segmind",
        "description": (
            "Generate images with Segmind's API (GPT Image 1.5 and any Segmind model) from Airflow."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Segmind",
                "external-doc-url": "https://docs.segmind.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Segmind", "python-modules": ["airflow_provider_segmind.hooks.segmind"]}
        ],
        "operators": [
            {"integration-name": "Segmind", "python-modules": ["airflow_provider_segmind.operators.segmind"]}
        ],
        "sensors": [
            {"integration-name": "Segmind", "python-modules": ["airflow_provider_segmind.sensors.segmind"]}
        ],
        "triggers": [
            {"integration-name": "Segmind", "python-modules": ["airflow_provider_segmind.triggers.segmind"]}
        ],
        "connection-types": [
            {
                "connection-type": "segmind",
                "hook-class-name": "airflow_provider_segmind.hooks.segmind.SegmindHook",
                "hook-name": "Segmind",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
                    "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
                    "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
                },
            }
        ],
    }
