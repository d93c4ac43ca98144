"""Request parameters: the GPT Image models, the registry of known slugs, the request body.

Every generation is paid for, so parameters are checked here, before anything is sent: a typo
in ``size`` found by Segmind costs a round trip and a task retry; found here it costs nothing
and the message says which values would have worked. Models Segmind adds later, or that this
provider does not describe, still work: their parameters pass through unchecked except for the
few things every image model needs.

Importing this module must stay cheap (DAG files import it, through the operator, while being
parsed): only pydantic, the standard library's lightest modules and the validation wording.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from airflow_provider_segmind.exceptions import SegmindValidationError
from airflow_provider_segmind.models.messages import describe, explain

#: OpenAI's cap on GPT-image prompts; Segmind forwards the prompt as it is.
MAX_PROMPT_LENGTH = 32000
#: Reference images an edit request may carry (Segmind's documented range).
MAX_IMAGE_URLS = 16

_URL = re.compile(r"https?://[A-Za-z0-9\[][^\s/?#]*(?:[/?#]\S*)?", re.IGNORECASE)
_SLUG = re.compile(r"[A-Za-z0-9._-]+")
_MAX_SLUG_LENGTH = 200


def _check_prompt(value: str) -> str:
    # Segmind would charge for, or fail late on, an empty prompt; the value is not stripped
    # because leading or trailing whitespace is the user's business.
    if not value.strip():
        raise PydanticCustomError("empty_prompt", "the prompt is empty")
    return value


def _check_url(value: str) -> str:
    # Segmind fetches these URLs itself; a relative path or another scheme can only fail there,
    # after the request was accepted (and possibly charged).
    if not _URL.fullmatch(value):
        raise PydanticCustomError("not_http_url", "not an absolute http(s) URL")
    return value


Prompt = Annotated[
    str,
    Field(strict=True, max_length=MAX_PROMPT_LENGTH, description="What to draw."),
    AfterValidator(_check_prompt),
]
HttpUrlText = Annotated[str, Field(strict=True), AfterValidator(_check_url)]


class GptImageParameters(BaseModel):
    """Parameters of ``gpt-image-1.5``, ``gpt-image-1`` and ``gpt-image-1-mini``.

    Defaults are Segmind's own, and ``build_request_body`` sends them explicitly: the request
    then records what was asked for, and the expected image format is known without guessing
    Segmind's defaults. Unknown fields are rejected because Segmind ignores them silently, so
    a misspelt ``qualty`` would otherwise produce a paid image of the wrong quality.
    """

    model_config = ConfigDict(extra="forbid")

    prompt: Prompt
    size: Literal["1024x1024", "1536x1024", "1024x1536", "auto"] = "1536x1024"
    quality: Literal["low", "medium", "high", "auto"] = "high"
    background: Literal["transparent", "opaque"] = "opaque"
    moderation: Literal["low", "auto"] = "auto"
    output_format: Literal["png", "jpeg", "webp"] = "png"
    # Strict: "50" or 50.5 or True is far more likely a templating slip than an intent.
    output_compression: int = Field(100, strict=True, ge=0, le=100)

    @model_validator(mode="after")
    def _transparency_needs_alpha(self) -> GptImageParameters:
        # JPEG has no alpha channel: OpenAI refuses the combination, but only after the request
        # reached it. output_compression is deliberately not tied to the format: Segmind's own
        # example sends 100 with png, and the value is simply ignored there.
        if self.background == "transparent" and self.output_format not in ("png", "webp"):
            raise PydanticCustomError(
                "incompatible_fields",
                "background 'transparent' needs output_format 'png' or 'webp'",
                {
                    "field": "background",
                    "other": "output_format",
                    "field_value": self.background,
                    "other_value": self.output_format,
                },
            )
        return self


class GptImageEditParameters(GptImageParameters):
    """Parameters of the edit slugs: the generation fields plus the images to edit."""

    image_urls: list[HttpUrlText] = Field(min_length=1, max_length=MAX_IMAGE_URLS)
    mask: HttpUrlText | None = None


#: Slugs whose parameters are known and checked locally. Any other slug is passed through.
MODEL_PARAMETERS: Mapping[str, type[BaseModel]] = {
    "gpt-image-1.5": GptImageParameters,
    "gpt-image-1": GptImageParameters,
    "gpt-image-1-mini": GptImageParameters,
    "gpt-image-1.5-edit": GptImageEditParameters,
    "gpt-image-1-edit": GptImageEditParameters,
    "gpt-image-1-edit-mini": GptImageEditParameters,
}

#: What a valid value looks like, for fields whose annotation does not say it by itself
#: (enumerations list their values from the ``Literal``).
_REQUIREMENTS: dict[str, str] = {
    "prompt": f"expected non-empty text of at most {MAX_PROMPT_LENGTH} characters",
    "output_compression": "expected a whole number from 0 to 100",
    "image_urls": f"expected a list of 1 to {MAX_IMAGE_URLS} absolute http(s) URLs",
    "mask": "expected an absolute http(s) URL, or null for no mask",
}

_JSON_HELP = "use only text, numbers, booleans, null, lists and mappings with text keys"


def parameters_model_for(model: str) -> type[BaseModel] | None:
    """The parameters model of a slug, or None when this provider does not describe it."""
    return MODEL_PARAMETERS.get(model)


def validate_model_slug(model: str) -> str:
    """Return ``model`` when it is safe to put into a URL path, else raise.

    The slug becomes a path segment of an authenticated request: ``..`` or a slash would let a
    templated value reach another endpoint with the account's key.
    """
    if not isinstance(model, str) or not model:
        raise SegmindValidationError(
            f"The model slug is missing: got {describe(model, with_type=True)}; name a Segmind model "
            "such as 'gpt-image-1.5' (see https://www.segmind.com/models).",
            field="model",
        )
    if len(model) > _MAX_SLUG_LENGTH or not _SLUG.fullmatch(model) or model in (".", ".."):
        raise SegmindValidationError(
            f"Invalid model slug {describe(model)}: a slug is one path segment made of letters, "
            "digits, '.', '_' and '-' (not '.' or '..'), such as 'gpt-image-1.5'.",
            field="model",
        )
    return model


def build_request_body(
    model: str,
    parameters: Mapping[str, Any] | BaseModel | None = None,
    *,
    prompt: str | None = None,
) -> dict[str, Any]:
    """Turn user input into the JSON body of a generation request, or raise before paying.

    ``prompt`` is a convenience for the common case; it must not contradict a ``prompt`` in
    ``parameters``, because silently preferring one would generate (and bill) the wrong image.
    """
    params = _as_dict(model, parameters)
    if prompt is not None:
        if "prompt" in params and params["prompt"] != prompt:
            raise SegmindValidationError(
                f"The prompt for model '{model}' was given twice with different values, as the prompt "
                f"argument ({describe(prompt)}) and in the parameters ({describe(params['prompt'])}); "
                "give it once.",
                field="prompt",
            )
        params["prompt"] = prompt
    model_cls = parameters_model_for(model)
    if model_cls is None:
        _check_pass_through(model, params)
        return params
    try:
        validated = model_cls.model_validate(params)
    except ValidationError as err:
        message, field = explain(model, model_cls, err, _REQUIREMENTS)
        raise SegmindValidationError(message, field=field) from None
    return validated.model_dump(mode="json")


def expected_output_format(body: Mapping[str, Any]) -> str | None:
    """The image format a request asked for, so the answer can be checked against it.

    None means "do not check": the model has no ``output_format`` or uses a value unknown here.
    """
    value = body.get("output_format")
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if value == "jpg":
        return "jpeg"
    return value if value in ("png", "jpeg", "webp") else None


def _as_dict(model: str, parameters: Mapping[str, Any] | BaseModel | None) -> dict[str, Any]:
    # A copy, always: the caller's dict (often a DAG-level constant) must not change.
    if parameters is None:
        return {}
    if isinstance(parameters, BaseModel):
        return parameters.model_dump(mode="json")
    if not isinstance(parameters, Mapping):
        raise SegmindValidationError(
            f"The parameters for model '{model}' must be a mapping of field names to values; got "
            f"{describe(parameters, with_type=True)}.",
            field="parameters",
        )
    bad_keys = [key for key in parameters if not isinstance(key, str)]
    if bad_keys:
        raise SegmindValidationError(
            f"The parameters for model '{model}' have field names that are not text: "
            f"{', '.join(describe(key, with_type=True) for key in bad_keys)}.",
            field="parameters",
        )
    reject_self_reference(parameters, model=model)
    return dict(parameters)


def reject_self_reference(parameters: Any, *, model: str | None = None) -> None:
    """Raise when ``parameters`` contains itself at any depth, saying where.

    Airflow's walks over template fields, pydantic and JSON all recurse into the value, so a
    cycle would end in a ``RecursionError`` far from the mistake. The error names
    ``parameters`` when the mapping refers back to itself, else the parameter whose value does.
    Values that appear twice without containing themselves are fine.
    """
    found = _back_reference(parameters, ())
    if found is None:
        return
    path, depth = found
    where = "parameters" + "".join(f"[{key!r}]" for key in path)
    target = "parameters" + "".join(f"[{key!r}]" for key in path[:depth])
    for_model = f" for model '{model}'" if model is not None else ""
    if depth == 0 or not isinstance(path[0], str):
        subject, field = f"The parameters mapping{for_model}", "parameters"
    else:
        subject, field = f"Parameter '{path[0]}'{for_model}", path[0]
    raise SegmindValidationError(
        f"{subject} contains itself: {where} refers back to {target}; a value that contains itself "
        "cannot be rendered or sent as JSON.",
        field=field,
    )


def _back_reference(value: Any, outer: tuple[int, ...]) -> tuple[list[Any], int] | None:
    """The first reference inside ``value`` to a container that holds it, or None.

    ``outer`` holds the ids of the containers on the way down (the walk's root first). The
    answer is the keys from ``value`` to the reference and the depth, counted from the root, of
    the container it refers to.
    """
    items: Any
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    outer = (*outer, id(value))
    for key, item in items:
        if id(item) in outer:
            return [key], outer.index(id(item))
        found = _back_reference(item, outer)
        if found is not None:
            return [key, *found[0]], found[1]
    return None


def _check_pass_through(model: str, params: dict[str, Any]) -> None:
    """The minimum every Segmind image model needs, checked for slugs without a model here."""
    if "prompt" not in params:
        raise SegmindValidationError(
            f"Missing required parameter 'prompt' for model '{model}'; expected non-empty text.",
            field="prompt",
        )
    value = params["prompt"]
    if not isinstance(value, str) or not value.strip():
        raise SegmindValidationError(
            f"Invalid parameter 'prompt' for model '{model}': got "
            f"{describe(value, field='prompt', with_type=True)}; expected non-empty text.",
            field="prompt",
        )
    for key, item in params.items():
        problem = _json_problem(item)
        if problem is not None:
            raise SegmindValidationError(
                f"Invalid parameter '{key}' for model '{model}': {problem} cannot be sent as JSON; "
                f"{_JSON_HELP}.",
                field=key,
            )


def _json_problem(value: Any) -> str | None:
    """Describe the first part of ``value`` that JSON cannot carry, or None when all of it can.

    Checked here (without importing ``json``) so the error names the field instead of
    surfacing as a ``TypeError`` deep inside the HTTP client, or as a NaN Segmind rejects.
    ``value`` holds no cycles: ``_as_dict`` refused them before.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"the number {value!r}"
        return None
    if isinstance(value, (list, tuple, Mapping)):
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    return f"the mapping key {describe(key, with_type=True)}"
                problem = _json_problem(item)
                if problem is not None:
                    return problem
            return None
        for item in value:
            problem = _json_problem(item)
            if problem is not None:
                return problem
        return None
    return f"a value of type {type(value).__name__}"


__all__ = [
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
]
