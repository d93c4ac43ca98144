"""Request parameters and API answers as pydantic models, and the registry of known model slugs.

Every generation is paid for, so parameters are checked here, before anything is sent: a typo
in ``size`` found by Segmind costs a round trip and a task retry; found here it costs nothing
and the message says which values would have worked. Models Segmind adds later, or that this
provider does not describe, still work: their parameters pass through unchecked except for the
few things every image model needs.

Answers are parsed tolerantly (unknown keys kept, status in any case) because Segmind adds
keys per model and the v2 API is not fully documented; being strict there would turn a
harmless change on Segmind's side into failed tasks.

Importing this module must stay cheap (DAG files import it while being parsed): only pydantic
and the standard library's lightest modules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from airflow_provider_segmind.exceptions import SegmindValidationError

#: OpenAI's cap on GPT-image prompts; Segmind forwards the prompt as it is.
MAX_PROMPT_LENGTH = 32000
#: Reference images an edit request may carry (Segmind's documented range).
MAX_IMAGE_URLS = 16

_URL = re.compile(r"https?://[A-Za-z0-9\[][^\s/?#]*(?:[/?#]\S*)?", re.IGNORECASE)
_SLUG = re.compile(r"[A-Za-z0-9._-]+")
_MAX_SLUG_LENGTH = 200
#: Longer strings are shown by their length only: a 40000-character prompt in an error message
#: would bury the one line that matters in the Airflow UI.
_MAX_SHOWN_TEXT = 80


class RequestStatus(str, Enum):
    """Lifecycle of a queued (v2) request.

    A ``str`` enum so that plain strings from the API compare equal to members: the answer
    models keep ``status`` a ``str`` (Segmind may add statuses), and code can still write
    ``status == RequestStatus.FAILED``.
    """

    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    def __str__(self) -> str:
        # Log lines and messages should read "FAILED", not "RequestStatus.FAILED".
        return self.value


#: Statuses after which polling stops: nothing changes any more.
TERMINAL_STATUSES: frozenset[RequestStatus] = frozenset({RequestStatus.COMPLETED, RequestStatus.FAILED})


# -- request parameters ----------------------------------------------------------------------


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
            f"The model slug is missing: got {_describe(model, with_type=True)}; name a Segmind model "
            "such as 'gpt-image-1.5' (see https://www.segmind.com/models).",
            field="model",
        )
    if len(model) > _MAX_SLUG_LENGTH or not _SLUG.fullmatch(model) or model in (".", ".."):
        raise SegmindValidationError(
            f"Invalid model slug {_describe(model)}: a slug is one path segment made of letters, "
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
                f"argument ({_describe(prompt)}) and in the parameters ({_describe(params['prompt'])}); "
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
        message, field = _explain(model, model_cls, err)
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
            f"{_describe(parameters, with_type=True)}.",
            field="parameters",
        )
    bad_keys = [key for key in parameters if not isinstance(key, str)]
    if bad_keys:
        raise SegmindValidationError(
            f"The parameters for model '{model}' have field names that are not text: "
            f"{', '.join(_describe(key, with_type=True) for key in bad_keys)}.",
            field="parameters",
        )
    return dict(parameters)


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
            f"{_describe(value, field='prompt', with_type=True)}; expected non-empty text.",
            field="prompt",
        )
    for key, item in params.items():
        problem = _json_problem(item, set())
        if problem is not None:
            raise SegmindValidationError(
                f"Invalid parameter '{key}' for model '{model}': {problem} cannot be sent as JSON; "
                f"{_JSON_HELP}.",
                field=key,
            )


def _json_problem(value: Any, seen: set[int]) -> str | None:
    """Describe the first part of ``value`` that JSON cannot carry, or None when all of it can.

    Checked here (without importing ``json``) so the error names the field instead of
    surfacing as a ``TypeError`` deep inside the HTTP client, or as a NaN Segmind rejects.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"the number {value!r}"
        return None
    if isinstance(value, (list, tuple, Mapping)):
        if id(value) in seen:
            return "a value that contains itself"
        seen = seen | {id(value)}
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    return f"the mapping key {_describe(key, with_type=True)}"
                problem = _json_problem(item, seen)
                if problem is not None:
                    return problem
            return None
        for item in value:
            problem = _json_problem(item, seen)
            if problem is not None:
                return problem
        return None
    return f"a value of type {type(value).__name__}"


# -- turning pydantic's errors into one message ----------------------------------------------


def _explain(model: str, model_cls: type[BaseModel], err: ValidationError) -> tuple[str, str | None]:
    """One sentence per offending field, in pydantic's order, and the first field's name.

    Pydantic's own text is written for developers and carries documentation URLs; the reader
    here is a data engineer looking at a failed task, who needs the field, what was received
    and what would be accepted.
    """
    by_field: dict[str, list[Any]] = {}
    unknown: list[str] = []
    first: str | None = None
    for error in err.errors(include_url=False):
        loc = error["loc"]
        if error["type"] == "extra_forbidden":
            name = str(loc[0])
            unknown.append(name)
        else:
            ctx = error.get("ctx") or {}
            name = str(loc[0]) if loc else str(ctx.get("field", "parameters"))
            by_field.setdefault(name, []).append(error)
        if first is None:
            first = name
    sentences = [_field_sentence(model, model_cls, name, errors) for name, errors in by_field.items()]
    if unknown:
        allowed = ", ".join(f"'{name}'" for name in model_cls.model_fields)
        noun = "parameter" if len(unknown) == 1 else "parameters"
        names = ", ".join(f"'{name}'" for name in unknown)
        sentences.append(f"Unknown {noun} {names} for model '{model}'; allowed parameters: {allowed}.")
    return " ".join(sentences), first


def _field_sentence(model: str, model_cls: type[BaseModel], field: str, errors: list[Any]) -> str:
    first = errors[0]
    if first["type"] == "incompatible_fields":
        ctx = first["ctx"]
        other = ctx["other"]
        return (
            f"Invalid combination of parameters '{field}' and '{other}' for model '{model}': "
            f"got {field} {_describe(ctx['field_value'])} with {other} {_describe(ctx['other_value'])}; "
            f"{first['msg']}."
        )
    requirement = _requirement(model_cls, field)
    if first["type"] == "missing":
        return f"Missing required parameter '{field}' for model '{model}'; {requirement}."
    items = [error for error in errors if len(error["loc"]) > 1]
    if items:
        shown = ", ".join(f"[{error['loc'][1]}] {_describe(error['input'])}" for error in items)
        got = f"invalid item{'s' if len(items) > 1 else ''} {shown}"
    else:
        with_type = first["type"].endswith(("_type", "_parsing")) or first["type"] == "int_from_float"
        got = _describe(first["input"], field=field, with_type=with_type)
        if field == "image_urls" and isinstance(first["input"], str):
            requirement += " (put a single URL in a list)"
    return f"Invalid parameter '{field}' for model '{model}': got {got}; {requirement}."


def _requirement(model_cls: type[BaseModel], field: str) -> str:
    info = model_cls.model_fields.get(field)
    annotation = info.annotation if info is not None else None
    if get_origin(annotation) is Literal:
        return "allowed values: " + ", ".join(repr(value) for value in get_args(annotation))
    return _REQUIREMENTS.get(field, "see the model's page on https://www.segmind.com/models")


def _describe(value: Any, *, field: str | None = None, with_type: bool = False) -> str:
    """A short, safe rendering of a received value: long text shows its length, not its text."""
    if isinstance(value, str):
        if field == "prompt" and not value.strip():
            return "an empty prompt" if not value else "a prompt of only whitespace"
        if len(value) > _MAX_SHOWN_TEXT:
            noun = "a prompt" if field == "prompt" else "a text"
            return f"{noun} of {len(value)} characters"
        return f"{value!r} (text)" if with_type else repr(value)
    if isinstance(value, bool):
        return f"{value!r} (a boolean)" if with_type else repr(value)
    if isinstance(value, int):
        return f"{value!r} (a whole number)" if with_type else repr(value)
    if isinstance(value, float):
        return f"{value!r} (a decimal number)" if with_type else repr(value)
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, Mapping):
        return f"a mapping of {len(value)} key{'' if len(value) == 1 else 's'}"
    text = repr(value)
    if len(text) > _MAX_SHOWN_TEXT:
        text = text[: _MAX_SHOWN_TEXT - 3] + "..."
    return f"{text} (of type {type(value).__name__})"


# -- answers of the API ----------------------------------------------------------------------


def _upper_status(value: Any) -> Any:
    # Segmind's examples use upper case, but nothing promises it; comparisons with
    # RequestStatus must not depend on the server's spelling.
    return value.strip().upper() if isinstance(value, str) else value


def _no_null_metrics(value: Any) -> Any:
    return {} if value is None else value


class _Answer(BaseModel):
    """Base of the v2 answers: extra keys kept, status normalised."""

    model_config = ConfigDict(extra="allow")

    status: str

    @field_validator("status", mode="before")
    @classmethod
    def _normalise_status(cls, value: Any) -> Any:
        return _upper_status(value)


class V2SubmitResponse(_Answer):
    """Segmind's answer to a v2 submit: the handle needed to poll and fetch the result."""

    request_id: str
    status: str = RequestStatus.QUEUED.value
    poll_url: str | None = None
    status_url: str
    response_url: str


class V2StatusResponse(_Answer):
    """An answer of the status URL. FAILED arrives as HTTP 422 with ``error`` set."""

    request_id: str | None = None
    error: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> Any:
        return _no_null_metrics(value)


class V2ResultResponse(V2StatusResponse):
    """An answer of the response URL; ``output`` differs per model, hence ``Any``."""

    output: Any = None

    @property
    def output_urls(self) -> list[str]:
        """The http(s) URLs in ``output``, in order and without repeats.

        Image models put a URL, a list of URLs, or dicts with ``url``/``urls``/``image``/
        ``images`` there; anything else (base64 text, numbers) is not a URL and is skipped.
        Repeats are dropped because one image listed under two keys must be downloaded once.
        """
        urls: list[str] = []
        _collect_urls(self.output, urls, depth=0)
        return list(dict.fromkeys(urls))


_OUTPUT_KEYS = ("url", "urls", "image", "images")


def _collect_urls(value: Any, urls: list[str], *, depth: int) -> None:
    # The depth cap keeps a hostile or odd answer from recursing without end.
    if depth > 4:
        return
    if isinstance(value, str):
        candidate = value.strip()
        if candidate.lower().startswith(("http://", "https://")):
            urls.append(candidate)
    elif isinstance(value, list):
        for item in value:
            _collect_urls(item, urls, depth=depth + 1)
    elif isinstance(value, dict):
        for key in _OUTPUT_KEYS:
            if key in value:
                _collect_urls(value[key], urls, depth=depth + 1)


class CreditsResponse(BaseModel):
    """The account's balance from ``/v1/get-user-credits`` (its key has a hyphen)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    credits: float
    free_credits: float = Field(0.0, alias="free-credits")


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
    "validate_model_slug",
]
