"""Pydantic models of Segmind's requests and answers, one module per idea.

- ``parameters``: what a request may carry (the GPT Image models, the registry of known slugs,
  ``build_request_body``, ``validate_model_slug``, ``expected_output_format``);
- ``messages``: pydantic's validation errors worded for the person who has to fix them;
- ``answers``: Segmind's answers (``RequestStatus``, the v2 answers, ``CreditsResponse``).

Every public name is importable from here as well, e.g.
``from airflow_provider_segmind.models import build_request_body``. Names are loaded from their
module on first use: Python runs this file whenever any module of the package is imported, and
the operator imports ``parameters`` on every DAG parse without needing the answer models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_segmind.models.answers import (
        TERMINAL_STATUSES,
        CreditsResponse,
        RequestStatus,
        V2ResultResponse,
        V2StatusResponse,
        V2SubmitResponse,
    )
    from airflow_provider_segmind.models.parameters import (
        MAX_IMAGE_URLS,
        MAX_PROMPT_LENGTH,
        MODEL_PARAMETERS,
        GptImageEditParameters,
        GptImageParameters,
        build_request_body,
        expected_output_format,
        parameters_model_for,
        reject_self_reference,
        validate_model_slug,
    )

#: The module of each public name (tests check this against the modules' own ``__all__``).
_MODULE_OF: dict[str, str] = {
    **dict.fromkeys(
        (
            "TERMINAL_STATUSES",
            "CreditsResponse",
            "RequestStatus",
            "V2ResultResponse",
            "V2StatusResponse",
            "V2SubmitResponse",
        ),
        "answers",
    ),
    **dict.fromkeys(
        (
            "MAX_IMAGE_URLS",
            "MAX_PROMPT_LENGTH",
            "MODEL_PARAMETERS",
            "GptImageEditParameters",
            "GptImageParameters",
            "build_request_body",
            "expected_output_format",
            "parameters_model_for",
            "reject_self_reference",
            "validate_model_slug",
        ),
        "parameters",
    ),
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next lookup is an ordinary one
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


__all__ = [
    "MAX_IMAGE_URLS",
    "MAX_PROMPT_LENGTH",
    "MODEL_PARAMETERS",
    "TERMINAL_STATUSES",
    "CreditsResponse",
    "GptImageEditParameters",
    "GptImageParameters",
    "RequestStatus",
    "V2ResultResponse",
    "V2StatusResponse",
    "V2SubmitResponse",
    "build_request_body",
    "expected_output_format",
    "parameters_model_for",
    "reject_self_reference",
    "validate_model_slug",
]
