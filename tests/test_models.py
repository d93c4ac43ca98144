"""Tests of the request-parameter models, the slug registry and the v2 answer models."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from pydantic import ValidationError

from airflow_provider_segmind.exceptions import SegmindValidationError
from airflow_provider_segmind.models import (
    MODEL_PARAMETERS,
    TERMINAL_STATUSES,
    CreditsResponse,
    GptImageEditParameters,
    GptImageParameters,
    RequestStatus,
    V2ResultResponse,
    V2StatusResponse,
    V2SubmitResponse,
    build_request_body,
    expected_output_format,
    parameters_model_for,
    validate_model_slug,
)

GENERATE_SLUGS = ["gpt-image-1.5", "gpt-image-1", "gpt-image-1-mini"]
EDIT_SLUGS = ["gpt-image-1.5-edit", "gpt-image-1-edit", "gpt-image-1-edit-mini"]
ALL_SLUGS = GENERATE_SLUGS + EDIT_SLUGS

ENUMS: dict[str, list[str]] = {
    "size": ["1024x1024", "1536x1024", "1024x1536", "auto"],
    "quality": ["low", "medium", "high", "auto"],
    "background": ["transparent", "opaque"],
    "moderation": ["low", "auto"],
    "output_format": ["png", "jpeg", "webp"],
}
DEFAULTS: dict[str, Any] = {
    "size": "1536x1024",
    "quality": "high",
    "background": "opaque",
    "moderation": "auto",
    "output_format": "png",
    "output_compression": 100,
}
URL = "https://images.example.com/in.png"
GENERATE_FIELDS = ["prompt", *DEFAULTS]
EDIT_FIELDS = [*GENERATE_FIELDS, "image_urls", "mask"]


def _base(slug: str) -> dict[str, Any]:
    """The smallest valid parameters of a slug (edit slugs need an image)."""
    return {"image_urls": [URL]} if slug in EDIT_SLUGS else {}


def _reject(slug: str, parameters: Any, prompt: str | None = "a red fox") -> SegmindValidationError:
    with pytest.raises(SegmindValidationError) as info:
        build_request_body(slug, parameters, prompt=prompt)
    return info.value


def _allowed(values: list[str]) -> str:
    return "allowed values: " + ", ".join(f"'{value}'" for value in values)


# -- registry ----------------------------------------------------------------------------------


def test_registry_holds_the_six_slugs() -> None:
    assert set(MODEL_PARAMETERS) == set(ALL_SLUGS)
    for slug in GENERATE_SLUGS:
        assert parameters_model_for(slug) is GptImageParameters
    for slug in EDIT_SLUGS:
        assert parameters_model_for(slug) is GptImageEditParameters


@pytest.mark.parametrize("slug", ["flux-1.1-pro", "GPT-IMAGE-1.5", "", "seedream-4"])
def test_unknown_slug_has_no_model(slug: str) -> None:
    assert parameters_model_for(slug) is None


# -- enumerations and defaults -----------------------------------------------------------------


@pytest.mark.parametrize("slug", ALL_SLUGS)
def test_defaults_are_filled_in(slug: str) -> None:
    body = build_request_body(slug, _base(slug), prompt="a red fox")
    expected = {"prompt": "a red fox", **DEFAULTS, **_base(slug)}
    if slug in EDIT_SLUGS:
        expected["mask"] = None
    assert body == expected
    assert list(body) == (EDIT_FIELDS if slug in EDIT_SLUGS else GENERATE_FIELDS)


@pytest.mark.parametrize(
    ("slug", "field", "value"),
    [
        pytest.param(slug, field, value, id=f"{slug}-{field}-{value}")
        for slug in ALL_SLUGS
        for field, values in ENUMS.items()
        for value in values
    ],
)
def test_every_allowed_enum_value_is_accepted(slug: str, field: str, value: str) -> None:
    parameters = {**_base(slug), field: value}
    if field == "background" and value == "transparent":
        parameters["output_format"] = "webp"
    body = build_request_body(slug, parameters, prompt="a red fox")
    assert body[field] == value


@pytest.mark.parametrize(
    ("slug", "field", "value"),
    [
        pytest.param(slug, field, value, id=f"{slug}-{field}-{value!r}")
        for slug in ALL_SLUGS
        for field in ENUMS
        for value in ["bogus", "", "PNG" if field == "output_format" else "AUTO", 1, None]
    ],
)
def test_every_invalid_enum_value_is_rejected_naming_all_allowed_values(
    slug: str, field: str, value: Any
) -> None:
    err = _reject(slug, {**_base(slug), field: value})
    assert err.field == field
    assert f"Invalid parameter '{field}' for model '{slug}'" in err.message
    assert _allowed(ENUMS[field]) in err.message
    assert "pydantic" not in str(err)
    assert "https://errors" not in str(err)


def test_enum_message_reads_as_documented() -> None:
    err = _reject("gpt-image-1.5", {"size": "512x512"})
    assert err.message == (
        "Invalid parameter 'size' for model 'gpt-image-1.5': got '512x512'; allowed values: "
        "'1024x1024', '1536x1024', '1024x1536', 'auto'."
    )
    assert isinstance(err, ValueError)


# -- cross-field rule ----------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["gpt-image-1.5", "gpt-image-1-edit"])
@pytest.mark.parametrize(
    ("background", "output_format", "ok"),
    [
        ("transparent", "png", True),
        ("transparent", "webp", True),
        ("transparent", "jpeg", False),
        ("opaque", "png", True),
        ("opaque", "webp", True),
        ("opaque", "jpeg", True),
    ],
)
def test_transparent_background_needs_png_or_webp(
    slug: str, background: str, output_format: str, ok: bool
) -> None:
    parameters = {**_base(slug), "background": background, "output_format": output_format}
    if ok:
        body = build_request_body(slug, parameters, prompt="a logo")
        assert (body["background"], body["output_format"]) == (background, output_format)
        return
    err = _reject(slug, parameters)
    assert err.field == "background"
    for text in ("'background'", "'output_format'", "'png'", "'webp'", "'jpeg'", slug):
        assert text in err.message


# -- output_compression ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 50, 99, 100])
@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
def test_compression_in_range_is_accepted_for_every_format(value: int, output_format: str) -> None:
    body = build_request_body(
        "gpt-image-1.5", {"output_compression": value, "output_format": output_format}, prompt="p"
    )
    assert body["output_compression"] == value


def test_png_with_compression_100_is_accepted_as_in_segmind_example() -> None:
    body = build_request_body(
        "gpt-image-1.5", {"output_format": "png", "output_compression": 100}, prompt="p"
    )
    assert body["output_format"] == "png"
    assert body["output_compression"] == 100


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (-1, "got -1;"),
        (101, "got 101;"),
        ("50", "got '50' (text);"),
        (50.5, "got 50.5 (a decimal number);"),
        (50.0, "got 50.0 (a decimal number);"),
        (True, "got True (a boolean);"),
        (False, "got False (a boolean);"),
        (None, "got null;"),
    ],
)
def test_compression_out_of_range_or_not_an_int_is_rejected(value: Any, shown: str) -> None:
    err = _reject("gpt-image-1.5", {"output_compression": value})
    assert err.field == "output_compression"
    assert shown in err.message
    assert "from 0 to 100" in err.message


# -- prompt ------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", GENERATE_SLUGS)
@pytest.mark.parametrize("length", [1, 32000])
def test_prompt_up_to_32000_characters_is_accepted(slug: str, length: int) -> None:
    body = build_request_body(slug, None, prompt="x" * length)
    assert len(body["prompt"]) == length


@pytest.mark.parametrize(
    ("prompt", "shown"),
    [
        ("", "got an empty prompt"),
        ("   \n\t", "got a prompt of only whitespace"),
        ("x" * 32001, "got a prompt of 32001 characters"),
        ("x" * 40000, "got a prompt of 40000 characters"),
    ],
    ids=["empty", "whitespace", "32001", "40000"],
)
def test_bad_prompt_is_rejected(prompt: str, shown: str) -> None:
    err = _reject("gpt-image-1.5", None, prompt=prompt)
    assert err.field == "prompt"
    assert shown in err.message
    assert "at most 32000 characters" in err.message
    assert "xxxxxxxxxx" not in err.message  # the text of a long prompt is never shown


def test_prompt_is_sent_unchanged() -> None:
    assert build_request_body("gpt-image-1.5", None, prompt="  a fox  ")["prompt"] == "  a fox  "


def test_missing_prompt_is_reported() -> None:
    err = _reject("gpt-image-1.5", {}, prompt=None)
    assert err.field == "prompt"
    assert "Missing required parameter 'prompt' for model 'gpt-image-1.5'" in err.message


def test_non_text_prompt_is_rejected() -> None:
    err = _reject("gpt-image-1.5", {"prompt": 42}, prompt=None)
    assert err.field == "prompt"
    assert "42 (a whole number)" in err.message


def test_prompt_in_parameters_only_is_used() -> None:
    assert build_request_body("gpt-image-1", {"prompt": "a fox"})["prompt"] == "a fox"


def test_same_prompt_twice_is_fine() -> None:
    assert build_request_body("gpt-image-1", {"prompt": "a fox"}, prompt="a fox")["prompt"] == "a fox"


@pytest.mark.parametrize("slug", ["gpt-image-1.5", "flux-1.1-pro"])
def test_conflicting_prompts_are_rejected(slug: str) -> None:
    err = _reject(slug, {"prompt": "a dog"}, prompt="a fox")
    assert err.field == "prompt"
    assert "'a dog'" in err.message
    assert "'a fox'" in err.message
    assert slug in err.message


# -- unknown fields and several errors at once ---------------------------------------------------


@pytest.mark.parametrize("slug", ALL_SLUGS)
def test_unknown_field_is_rejected_listing_allowed_fields(slug: str) -> None:
    err = _reject(slug, {**_base(slug), "n": 2})
    assert err.field == "n"
    assert f"Unknown parameter 'n' for model '{slug}'" in err.message
    allowed = EDIT_FIELDS if slug in EDIT_SLUGS else GENERATE_FIELDS
    assert "allowed parameters: " + ", ".join(f"'{name}'" for name in allowed) in err.message
    if slug in GENERATE_SLUGS:
        assert "'image_urls'" not in err.message


def test_all_errors_are_collected_one_sentence_per_field() -> None:
    err = _reject("gpt-image-1.5", {"size": "big", "quality": "ultra", "qualty": "high", "n": 1})
    assert err.field == "size"
    assert err.message.count("Invalid parameter") == 2
    assert "Unknown parameters 'qualty', 'n'" in err.message
    assert err.message.count(".") >= 3


def test_error_survives_pickling() -> None:
    err = _reject("gpt-image-1.5", {"size": "big"})
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, SegmindValidationError)
    assert (copy.field, copy.message) == (err.field, err.message)


def test_parameters_are_not_modified() -> None:
    parameters = {"size": "auto"}
    build_request_body("gpt-image-1.5", parameters, prompt="p")
    assert parameters == {"size": "auto"}


def test_a_parameters_model_instance_is_accepted() -> None:
    model = GptImageParameters(prompt="a fox", quality="low")
    assert build_request_body("gpt-image-1.5", model)["quality"] == "low"


@pytest.mark.parametrize("parameters", [["size", "auto"], "size=auto", 3])
def test_parameters_must_be_a_mapping(parameters: Any) -> None:
    err = _reject("gpt-image-1.5", parameters)
    assert err.field == "parameters"


def test_field_names_must_be_text() -> None:
    err = _reject("gpt-image-1.5", {1: "x"})
    assert err.field == "parameters"
    assert "1 (a whole number)" in err.message


# -- edit slugs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", EDIT_SLUGS)
@pytest.mark.parametrize("count", [1, 2, 16])
def test_edit_accepts_1_to_16_urls(slug: str, count: int) -> None:
    urls = [f"https://cdn.example.com/{index}.png" for index in range(count)]
    body = build_request_body(slug, {"image_urls": urls}, prompt="add a hat")
    assert body["image_urls"] == urls
    assert body["mask"] is None


@pytest.mark.parametrize("slug", EDIT_SLUGS)
@pytest.mark.parametrize(
    ("image_urls", "shown"),
    [
        ([], "got a list of 0 items"),
        ([URL] * 17, "got a list of 17 items"),
        (["not a url"], "[0] 'not a url'"),
        ([URL, "ftp://example.com/a.png"], "[1] 'ftp://example.com/a.png'"),
        (["/relative/a.png"], "[0] '/relative/a.png'"),
        (["https://"], "[0] 'https://'"),
        ([URL, 7], "[1] 7"),
        (URL, f"got '{URL}' (text)"),
    ],
    ids=["0", "17", "not-url", "ftp", "relative", "no-host", "number", "bare-string"],
)
def test_edit_rejects_bad_image_urls(slug: str, image_urls: Any, shown: str) -> None:
    err = _reject(slug, {"image_urls": image_urls})
    assert err.field == "image_urls"
    assert shown in err.message
    assert "1 to 16 absolute http(s) URLs" in err.message


@pytest.mark.parametrize("slug", EDIT_SLUGS)
def test_edit_requires_image_urls(slug: str) -> None:
    err = _reject(slug, {})
    assert err.field == "image_urls"
    assert f"Missing required parameter 'image_urls' for model '{slug}'" in err.message


@pytest.mark.parametrize("mask", [None, "https://cdn.example.com/mask.png", "HTTP://cdn.example.com/m.png"])
def test_edit_accepts_url_or_null_mask(mask: str | None) -> None:
    body = build_request_body("gpt-image-1.5-edit", {"image_urls": [URL], "mask": mask}, prompt="p")
    assert body["mask"] == mask


@pytest.mark.parametrize("mask", ["", "mask.png", "ftp://example.com/m.png", 3])
def test_edit_rejects_bad_mask(mask: Any) -> None:
    err = _reject("gpt-image-1.5-edit", {"image_urls": [URL], "mask": mask})
    assert err.field == "mask"
    assert "absolute http(s) URL, or null" in err.message


def test_generate_slug_rejects_edit_fields() -> None:
    err = _reject("gpt-image-1.5", {"image_urls": [URL]})
    assert err.field == "image_urls"
    assert "Unknown parameter 'image_urls'" in err.message


def test_models_can_be_used_directly() -> None:
    params = GptImageEditParameters(prompt="p", image_urls=[URL])
    assert params.output_format == "png"
    with pytest.raises(ValidationError):
        GptImageParameters(prompt="p", output_compression="50")  # type: ignore[arg-type]


# -- unregistered slugs ------------------------------------------------------------------------


def test_unregistered_slug_passes_parameters_through() -> None:
    parameters = {"steps": 30, "seed": None, "nested": {"a": [1, 2.5, True]}, "size": "512x512"}
    body = build_request_body("flux-1.1-pro", parameters, prompt="a fox")
    assert body == {**parameters, "prompt": "a fox"}
    assert body is not parameters
    assert "prompt" not in parameters


def test_unregistered_slug_adds_no_defaults() -> None:
    assert build_request_body("flux-1.1-pro", {"prompt": "a fox"}) == {"prompt": "a fox"}


@pytest.mark.parametrize(
    ("parameters", "prompt"),
    [({}, None), (None, None), ({"prompt": ""}, None), ({}, "   "), ({"prompt": 3}, None)],
    ids=["missing", "none", "empty", "whitespace", "number"],
)
def test_unregistered_slug_requires_a_prompt(parameters: Any, prompt: str | None) -> None:
    err = _reject("flux-1.1-pro", parameters, prompt=prompt)
    assert err.field == "prompt"
    assert "'flux-1.1-pro'" in err.message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (object(), "type object"),
        ({1: "a"}, "mapping key 1"),
        ([b"bytes"], "type bytes"),
        ({1, 2}, "type set"),
    ],
    ids=["nan", "inf", "object", "int-key", "bytes", "set"],
)
def test_unregistered_slug_requires_json(value: Any, shown: str) -> None:
    err = _reject("flux-1.1-pro", {"extra": value})
    assert err.field == "extra"
    assert shown in err.message
    assert "JSON" in err.message


def test_unregistered_slug_rejects_cycles() -> None:
    loop: list[Any] = []
    loop.append(loop)
    err = _reject("flux-1.1-pro", {"loop": loop})
    assert err.field == "loop"


@pytest.mark.parametrize("slug", ["gpt-image-1.5", "flux-1.1-pro"])
def test_parameters_that_contain_themselves_are_refused(slug: str) -> None:
    parameters: dict[str, Any] = {"size": "1024x1024"}
    parameters["self"] = parameters
    err = _reject(slug, parameters)
    assert err.field == "parameters"
    assert "contains itself" in err.message
    assert "parameters['self']" in err.message
    assert f"'{slug}'" in err.message


@pytest.mark.parametrize("slug", ["gpt-image-1.5-edit", "flux-1.1-pro"])
def test_a_value_that_contains_itself_is_refused_by_name(slug: str) -> None:
    loop: list[Any] = [URL]
    loop.append(loop)
    err = _reject(slug, {"image_urls": loop})
    assert err.field == "image_urls"
    assert "contains itself" in err.message
    assert "parameters['image_urls'][1]" in err.message


def test_shared_values_are_not_cycles() -> None:
    shared = {"a": [1, 2]}
    body = build_request_body("flux-1.1-pro", {"x": shared, "y": [shared, shared]}, prompt="a fox")
    assert body["y"] == [shared, shared]


def test_unregistered_slug_requires_text_field_names() -> None:
    err = _reject("flux-1.1-pro", {("a",): 1})
    assert err.field == "parameters"


# -- slugs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["gpt-image-1.5", "flux-1.1-pro", "sdxl1.0-txt2img", "nano_banana", "..x"])
def test_valid_slugs(slug: str) -> None:
    assert validate_model_slug(slug) == slug


@pytest.mark.parametrize(
    "slug",
    [
        "",
        "../x",
        "a/b",
        "/abs",
        ".",
        "..",
        "a\\b",
        "a b",
        "a?b=1",
        "a#b",
        "a%2Fb",
        "gpt-image-1.5\n",
        "x" * 201,
    ],
)
def test_invalid_slugs(slug: str) -> None:
    with pytest.raises(SegmindValidationError) as info:
        validate_model_slug(slug)
    assert info.value.field == "model"


@pytest.mark.parametrize("slug", [None, 3])
def test_non_text_slug(slug: Any) -> None:
    with pytest.raises(SegmindValidationError) as info:
        validate_model_slug(slug)
    assert info.value.field == "model"


# -- expected_output_format ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"output_format": "png"}, "png"),
        ({"output_format": "jpeg"}, "jpeg"),
        ({"output_format": "jpg"}, "jpeg"),
        ({"output_format": "JPG"}, "jpeg"),
        ({"output_format": "webp"}, "webp"),
        ({"output_format": " WEBP "}, "webp"),
        ({"output_format": "gif"}, None),
        ({"output_format": None}, None),
        ({"output_format": 1}, None),
        ({}, None),
    ],
)
def test_expected_output_format(body: dict[str, Any], expected: str | None) -> None:
    assert expected_output_format(body) == expected


def test_expected_output_format_of_a_default_body() -> None:
    assert expected_output_format(build_request_body("gpt-image-1.5", prompt="p")) == "png"


# -- v2 answers ------------------------------------------------------------------------------------


def test_request_status() -> None:
    assert set(TERMINAL_STATUSES) == {RequestStatus.COMPLETED, RequestStatus.FAILED}
    assert "COMPLETED" in TERMINAL_STATUSES
    assert "PROCESSING" not in TERMINAL_STATUSES
    assert RequestStatus.FAILED == "FAILED"
    assert str(RequestStatus.QUEUED) == "QUEUED"
    assert f"{RequestStatus.QUEUED}" == "QUEUED"


SUBMIT = {
    "request_id": "abc-123",
    "status": "QUEUED",
    "poll_url": "https://api.segmind.com/v1/requests/abc-123",
    "status_url": "https://api.segmind.com/v2/requests/abc-123/status",
    "response_url": "https://api.segmind.com/v2/requests/abc-123",
}


def test_submit_response() -> None:
    handle = V2SubmitResponse.model_validate({**SUBMIT, "queue_position": 3})
    assert handle.request_id == "abc-123"
    assert handle.status == RequestStatus.QUEUED
    assert handle.status_url.endswith("/status")
    assert handle.model_extra == {"queue_position": 3}


def test_submit_response_defaults_and_case() -> None:
    answer = {key: value for key, value in SUBMIT.items() if key not in ("status", "poll_url")}
    handle = V2SubmitResponse.model_validate(answer)
    assert handle.status == "QUEUED"
    assert handle.poll_url is None
    assert V2SubmitResponse.model_validate({**SUBMIT, "status": "queued"}).status == "QUEUED"


@pytest.mark.parametrize("missing", ["request_id", "status_url", "response_url"])
def test_submit_response_requires_handle_fields(missing: str) -> None:
    with pytest.raises(ValidationError):
        V2SubmitResponse.model_validate({key: value for key, value in SUBMIT.items() if key != missing})


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("queued", "QUEUED"), ("Processing", "PROCESSING"), ("completed", "COMPLETED"), (" failed ", "FAILED")],
)
def test_status_response_normalises_case(raw: str, normalised: str) -> None:
    status = V2StatusResponse.model_validate_json(f'{{"status": "{raw}", "request_id": "r1"}}')
    assert status.status == normalised
    assert status.metrics == {}
    assert status.error is None


def test_status_response_failed() -> None:
    status = V2StatusResponse.model_validate(
        {"status": "FAILED", "error": "moderation", "request_id": "r1", "metrics": None, "x": 1}
    )
    assert status.status in TERMINAL_STATUSES
    assert status.status == RequestStatus.FAILED
    assert status.error == "moderation"
    assert status.metrics == {}
    assert status.model_extra == {"x": 1}


def test_status_response_requires_status() -> None:
    with pytest.raises(ValidationError):
        V2StatusResponse.model_validate({"request_id": "r1"})


A = "https://images.segmind.com/a.png"
B = "https://images.segmind.com/b.png"


@pytest.mark.parametrize(
    ("output", "urls"),
    [
        (A, [A]),
        ([A, B], [A, B]),
        ({"url": A}, [A]),
        ({"urls": [A, B]}, [A, B]),
        ({"image": A}, [A]),
        ({"images": [A, B]}, [A, B]),
        ([{"url": A}, {"url": B}], [A, B]),
        ({"images": [{"url": A}, {"image": B}]}, [A, B]),
        ({"url": A, "image": A}, [A]),
        ([A, "iVBORw0KGgo=", 3, None, "ftp://x/y.png"], [A]),
        ("data:image/png;base64,iVBOR", []),
        ({"other": A}, []),
        (None, []),
        (42, []),
        ([], []),
        ("HTTP://Images.segmind.com/c.png", ["HTTP://Images.segmind.com/c.png"]),
    ],
)
def test_result_output_urls(output: Any, urls: list[str]) -> None:
    result = V2ResultResponse.model_validate({"status": "completed", "output": output})
    assert result.status == "COMPLETED"
    assert result.output_urls == urls


def test_result_response_keeps_metrics_and_extra_keys() -> None:
    result = V2ResultResponse.model_validate(
        {"status": "COMPLETED", "metrics": {"inference_time": 12.5}, "output": A, "seed": 7}
    )
    assert result.metrics == {"inference_time": 12.5}
    assert result.model_extra == {"seed": 7}
    assert result.request_id is None


def test_result_response_without_output() -> None:
    result = V2ResultResponse.model_validate({"status": "PROCESSING"})
    assert result.output is None
    assert result.output_urls == []


def test_credits_response_reads_hyphenated_key() -> None:
    credits = CreditsResponse.model_validate_json('{"credits": 0.0, "free-credits": 0.0184921035}')
    assert credits.credits == 0.0
    assert credits.free_credits == pytest.approx(0.0184921035)


def test_credits_response_by_name_default_and_extra() -> None:
    assert CreditsResponse(credits=5, free_credits=1.5).free_credits == 1.5
    credits = CreditsResponse.model_validate({"credits": 3, "plan": "pro"})
    assert credits.free_credits == 0.0
    assert credits.model_extra == {"plan": "pro"}
    with pytest.raises(ValidationError):
        CreditsResponse.model_validate({"free-credits": 1})


# -- the package -------------------------------------------------------------------------------


def test_package_re_exports_every_public_name() -> None:
    from airflow_provider_segmind import models
    from airflow_provider_segmind.models import answers, parameters

    assert set(models.__all__) == set(answers.__all__) | set(parameters.__all__)
    for name in models.__all__:
        home = answers if name in answers.__all__ else parameters
        assert getattr(models, name) is getattr(home, name)
    assert set(models.__all__) <= set(dir(models))
    with pytest.raises(AttributeError, match="no_such_name"):
        models.no_such_name  # noqa: B018
