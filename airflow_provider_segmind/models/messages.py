"""Validation wording: pydantic's errors turned into messages a data engineer can act on.

Pydantic's own text is written for developers and carries documentation URLs; the reader here
is a data engineer looking at a failed task, who needs the model, the field, what was received
and what would be accepted. Nothing here knows a particular model: what a valid value looks
like comes from the model's annotations and from the ``requirements`` the caller passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

#: Longer strings are shown by their length only: a 40000-character prompt in an error message
#: would bury the one line that matters in the Airflow UI.
_MAX_SHOWN_TEXT = 80


def explain(
    model: str,
    model_cls: type[BaseModel],
    err: ValidationError,
    requirements: Mapping[str, str],
) -> tuple[str, str | None]:
    """One sentence per offending field, in pydantic's order, and the first field's name.

    ``requirements`` says what a valid value looks like for fields whose annotation does not
    say it by itself (enumerations list their values from the ``Literal``).
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
    sentences = [
        _field_sentence(model, model_cls, name, errors, requirements) for name, errors in by_field.items()
    ]
    if unknown:
        allowed = ", ".join(f"'{name}'" for name in model_cls.model_fields)
        noun = "parameter" if len(unknown) == 1 else "parameters"
        names = ", ".join(f"'{name}'" for name in unknown)
        sentences.append(f"Unknown {noun} {names} for model '{model}'; allowed parameters: {allowed}.")
    return " ".join(sentences), first


def _field_sentence(
    model: str,
    model_cls: type[BaseModel],
    field: str,
    errors: list[Any],
    requirements: Mapping[str, str],
) -> str:
    first = errors[0]
    if first["type"] == "incompatible_fields":
        ctx = first["ctx"]
        other = ctx["other"]
        return (
            f"Invalid combination of parameters '{field}' and '{other}' for model '{model}': "
            f"got {field} {describe(ctx['field_value'])} with {other} {describe(ctx['other_value'])}; "
            f"{first['msg']}."
        )
    requirement = _requirement(model_cls, field, requirements)
    if first["type"] == "missing":
        return f"Missing required parameter '{field}' for model '{model}'; {requirement}."
    items = [error for error in errors if len(error["loc"]) > 1]
    if items:
        shown = ", ".join(f"[{error['loc'][1]}] {describe(error['input'])}" for error in items)
        got = f"invalid item{'s' if len(items) > 1 else ''} {shown}"
    else:
        with_type = first["type"].endswith(("_type", "_parsing")) or first["type"] == "int_from_float"
        got = describe(first["input"], field=field, with_type=with_type)
        if field == "image_urls" and isinstance(first["input"], str):
            requirement += " (put a single URL in a list)"
    return f"Invalid parameter '{field}' for model '{model}': got {got}; {requirement}."


def _requirement(model_cls: type[BaseModel], field: str, requirements: Mapping[str, str]) -> str:
    info = model_cls.model_fields.get(field)
    annotation = info.annotation if info is not None else None
    if get_origin(annotation) is Literal:
        return "allowed values: " + ", ".join(repr(value) for value in get_args(annotation))
    return requirements.get(field, "see the model's page on https://www.segmind.com/models")


def describe(value: Any, *, field: str | None = None, with_type: bool = False) -> str:
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


__all__ = ["describe", "explain"]
