"""SegmindHook against requests-mock: settings, every status code, every answer shape, retries."""

from __future__ import annotations

import base64
import json
import logging
import pickle
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from airflow_provider_segmind import exceptions as exc
from airflow_provider_segmind.hooks.segmind import SegmindHook
from airflow_provider_segmind.policy import RetryPolicy
from tests.hooks.conftest import API_KEY, BASE, CDN, image_bytes

V1 = f"{BASE}/v1/gpt-image-1.5"
V2 = f"{BASE}/v2/gpt-image-1.5"
PROMPT = "a lighthouse at dawn"


def _submit_answer(request_id: str = "req-1") -> dict[str, Any]:
    return {
        "request_id": request_id,
        "status": "QUEUED",
        "poll_url": f"{BASE}/v1/requests/{request_id}",
        "status_url": f"{BASE}/v2/requests/{request_id}/status",
        "response_url": f"{BASE}/v2/requests/{request_id}",
    }


def _assert_no_key(*texts: str) -> None:
    for text in texts:
        assert API_KEY not in text


# -- settings ---------------------------------------------------------------------------------


class TestSettings:
    def test_connection_host_replaces_base_url(self, segmind_env: str) -> None:
        settings = SegmindHook().settings
        assert settings.base_url == BASE
        assert settings.api_key == API_KEY
        assert API_KEY not in repr(settings)

    @pytest.mark.parametrize(
        ("host", "port", "expected"),
        [
            (None, None, "https://api.segmind.com"),
            ("", None, "https://api.segmind.com"),
            ("api.segmind.com", None, "https://api.segmind.com"),
            ("http://127.0.0.1:8080", None, "http://127.0.0.1:8080"),
            ("http://127.0.0.1", 9000, "http://127.0.0.1:9000"),
            ("https://proxy.example.com/v1/", None, "https://proxy.example.com"),
        ],
    )
    def test_base_url_from_host(
        self, monkeypatch: pytest.MonkeyPatch, host: str | None, port: int | None, expected: str
    ) -> None:
        conn: dict[str, Any] = {"conn_type": "segmind", "password": API_KEY}
        if host is not None:
            conn["host"] = host
        if port is not None:
            conn["port"] = port
        monkeypatch.setenv("AIRFLOW_CONN_SEGMIND_DEFAULT", json.dumps(conn))
        assert SegmindHook().settings.base_url == expected

    def test_timeouts_from_extra_and_overrides(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SEGMIND_DEFAULT",
            json.dumps(
                {
                    "conn_type": "segmind",
                    "password": API_KEY,
                    "extra": {"connect_timeout": 3, "read_timeout": "90"},
                }
            ),
        )
        assert (SegmindHook().settings.connect_timeout, SegmindHook().settings.read_timeout) == (3.0, 90.0)
        hook = SegmindHook(connect_timeout=1.5, read_timeout=200)
        assert (hook.settings.connect_timeout, hook.settings.read_timeout) == (1.5, 200.0)

    def test_default_timeouts_fit_a_long_generation(self, segmind_env: str) -> None:
        settings = SegmindHook().settings
        assert settings.read_timeout >= 90
        assert settings.connect_timeout <= 30

    def test_bad_timeout_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SEGMIND_DEFAULT",
            json.dumps({"conn_type": "segmind", "password": API_KEY, "extra": {"read_timeout": "soon"}}),
        )
        with pytest.raises(exc.SegmindConfigurationError, match="read_timeout"):
            _ = SegmindHook().settings

    def test_env_key_when_default_connection_missing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_SEGMIND_DEFAULT", raising=False)
        monkeypatch.setenv("SEGMIND_API_KEY", API_KEY)
        settings = SegmindHook().settings
        assert settings.api_key == API_KEY
        assert settings.base_url == "https://api.segmind.com"

    def test_missing_named_connection_is_an_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SEGMIND_API_KEY", API_KEY)
        with pytest.raises(exc.SegmindConfigurationError, match="'my_segmind' does not exist"):
            _ = SegmindHook("my_segmind").settings

    def test_no_key_anywhere_says_both_ways(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_SEGMIND_DEFAULT", raising=False)
        monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
        with pytest.raises(exc.SegmindConfigurationError) as info:
            _ = SegmindHook().settings
        assert "password" in str(info.value)
        assert "SEGMIND_API_KEY" in str(info.value)

    def test_key_registered_with_secret_masker(
        self, segmind_env: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        masked: list[Any] = []
        monkeypatch.setattr("airflow_provider_segmind.hooks.segmind.mask_secret", masked.append)
        _ = SegmindHook().settings
        assert masked == [API_KEY]

    def test_hook_metadata(self) -> None:
        assert SegmindHook.conn_name_attr == "segmind_conn_id"
        assert SegmindHook.default_conn_name == "segmind_default"
        assert SegmindHook.conn_type == "segmind"
        assert SegmindHook.hook_name == "Segmind"
        behaviour = SegmindHook.get_ui_field_behaviour()
        assert set(behaviour["hidden_fields"]) == {"schema", "port", "login"}
        assert behaviour["relabeling"]["password"] == "API Key"
        assert behaviour["placeholders"]["host"] == "https://api.segmind.com"

    def test_session_is_built_once(self, hook: SegmindHook) -> None:
        assert hook.session is hook.session


# -- v1 generation: answer shapes -------------------------------------------------------------


class TestGenerateAnswers:
    def test_image_bytes_answer(self, hook: SegmindHook, requests_mock: Any) -> None:
        png = image_bytes("png")
        requests_mock.post(
            V1, content=png, headers={"Content-Type": "image/png", "X-remaining-credits": "9.5"}
        )
        result = hook.generate("gpt-image-1.5", {"size": "1024x1024"}, prompt=PROMPT)
        assert [img.data for img in result.images] == [png]
        assert result.images[0].format == "png"
        assert result.images[0].extension == "png"
        assert result.remaining_credits == 9.5
        assert result.model == "gpt-image-1.5"
        sent = requests_mock.last_request
        assert sent.headers["x-api-key"] == API_KEY
        body = sent.json()
        assert body["prompt"] == PROMPT
        assert body["size"] == "1024x1024"
        # defaults are sent explicitly, so the asked format is known and checked
        assert body["output_format"] == "png"
        assert body["quality"] == "high"

    @pytest.mark.parametrize("fmt", ["jpeg", "webp"])
    def test_other_formats(self, hook: SegmindHook, requests_mock: Any, fmt: str) -> None:
        data = image_bytes(fmt)
        requests_mock.post(V1, content=data, headers={"Content-Type": f"image/{fmt}"})
        result = hook.generate("gpt-image-1.5", {"output_format": fmt}, prompt=PROMPT)
        assert result.images[0].format == fmt

    @pytest.mark.parametrize(
        "shape",
        [
            lambda b64: {"image": b64},
            lambda b64: {"image": [b64, b64]},
            lambda b64: {"images": [b64]},
            lambda b64: {"image": f"data:image/png;base64,{b64}"},
            lambda b64: [b64],
        ],
    )
    def test_json_base64_answers(self, hook: SegmindHook, requests_mock: Any, shape: Any) -> None:
        png = image_bytes("png")
        payload = shape(base64.b64encode(png).decode())
        requests_mock.post(V1, json=payload)
        result = hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert result.images
        assert all(img.data == png and img.format == "png" for img in result.images)

    @pytest.mark.parametrize("key", ["output", "image", "url"])
    def test_json_url_answer_downloads_without_key(
        self, hook: SegmindHook, requests_mock: Any, key: str
    ) -> None:
        png = image_bytes("png")
        url = f"{CDN}/out/abc.png"
        requests_mock.post(V1, json={key: url})
        requests_mock.get(url, content=png, headers={"Content-Type": "image/png"})
        result = hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert result.images[0].data == png
        assert result.images[0].source_url == url
        cdn_request = requests_mock.request_history[-1]
        assert cdn_request.url == url
        assert "x-api-key" not in {k.lower() for k in cdn_request.headers}

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"text": "<html>oops</html>", "headers": {"Content-Type": "text/html"}}, "Content-Type"),
            ({"text": "{not json", "headers": {"Content-Type": "application/json"}}, "not valid JSON"),
            ({"json": {"status": "ok"}}, "without an image"),
            (
                {"content": b"GIF? no, garbage", "headers": {"Content-Type": "image/png"}},
                "did not return an image",
            ),
            ({"json": {"image": "bm90IGFuIGltYWdl"}}, "without an image"),
        ],
    )
    def test_unusable_answers(self, hook: SegmindHook, requests_mock: Any, kwargs: Any, match: str) -> None:
        requests_mock.post(V1, **kwargs)
        with pytest.raises(exc.SegmindBadResponseError, match=match):
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert requests_mock.call_count == 1  # a paid POST is not re-sent for a bad answer

    def test_wrong_format_is_refused(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.post(V1, content=image_bytes("png"), headers={"Content-Type": "image/png"})
        with pytest.raises(exc.SegmindBadResponseError, match="output_format='webp'"):
            hook.generate("gpt-image-1.5", {"output_format": "webp"}, prompt=PROMPT)

    def test_unregistered_model_passes_parameters_through(
        self, hook: SegmindHook, requests_mock: Any
    ) -> None:
        url = f"{BASE}/v1/flux-1.1-pro"
        requests_mock.post(url, content=image_bytes("jpeg"), headers={"Content-Type": "image/jpeg"})
        result = hook.generate("flux-1.1-pro", {"prompt": PROMPT, "seed": 7, "steps": 20})
        assert requests_mock.last_request.json() == {"prompt": PROMPT, "seed": 7, "steps": 20}
        assert result.images[0].format == "jpeg"


class TestValidationBeforeHttp:
    @pytest.mark.parametrize(
        ("model", "params", "field"),
        [
            ("gpt-image-1.5", {"size": "512x512"}, "size"),
            ("gpt-image-1.5", {"background": "transparent", "output_format": "jpeg"}, "background"),
            ("gpt-image-1.5", {"colour": "red"}, "colour"),
            ("../v1/get-user-credits", {}, "model"),
            ("flux-1.1-pro", {"seed": 1}, "prompt"),
        ],
    )
    def test_invalid_input_sends_nothing(
        self, hook: SegmindHook, requests_mock: Any, model: str, params: dict[str, Any], field: str
    ) -> None:
        prompt = None if model == "flux-1.1-pro" else PROMPT
        with pytest.raises(exc.SegmindValidationError) as info:
            hook.generate(model, params, prompt=prompt)
        assert field in str(info.value)
        with pytest.raises(exc.SegmindValidationError):
            hook.submit(model, params, prompt=prompt)
        assert requests_mock.call_count == 0

    def test_bad_request_id(self, hook: SegmindHook, requests_mock: Any) -> None:
        with pytest.raises(exc.SegmindValidationError, match="request_id"):
            hook.get_status("../../v1/get-user-credits")
        assert requests_mock.call_count == 0


# -- status codes -----------------------------------------------------------------------------

STATUS_TABLE = [
    (400, exc.SegmindValidationError),
    (401, exc.SegmindAuthenticationError),
    (403, exc.SegmindAuthenticationError),
    (404, exc.SegmindNotFoundError),
    (406, exc.SegmindInsufficientCreditsError),
    (410, exc.SegmindNotFoundError),
    (422, exc.SegmindValidationError),
    (429, exc.SegmindRateLimitError),
    (500, exc.SegmindServerError),
    (502, exc.SegmindServerError),
    (503, exc.SegmindServerError),
    (504, exc.SegmindServerError),
]
BODIES = [
    pytest.param({"json": {"error": "Segmind explains"}}, "Segmind explains", id="json"),
    pytest.param(
        {
            "text": "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "headers": {"Content-Type": "text/html"},
        },
        "502 Bad Gateway",
        id="html",
    ),
    pytest.param({"text": ""}, None, id="empty"),
]


class TestStatusCodes:
    @pytest.mark.parametrize(("status", "error_cls"), STATUS_TABLE)
    @pytest.mark.parametrize(("body", "quoted"), BODIES)
    def test_each_status_maps_to_a_typed_error(
        self,
        hook: SegmindHook,
        requests_mock: Any,
        sleeps: list[float],
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
        status: int,
        error_cls: type[exc.SegmindError],
        body: dict[str, Any],
        quoted: str | None,
    ) -> None:
        requests_mock.post(V1, status_code=status, **body)
        caplog.set_level(logging.DEBUG)
        with pytest.raises(error_cls) as info:
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        err = info.value
        assert err.status_code == status
        assert f"HTTP {status}" in str(err)
        assert err.hint and err.hint in str(err)
        if quoted:
            assert quoted in str(err)
            assert err.error_text == quoted
        logged = caplog.text + capsys.readouterr().out
        _assert_no_key(str(err), repr(err), logged)

    def test_error_text_echoing_the_key_is_redacted(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.post(V1, status_code=401, json={"error": f"key {API_KEY} is not valid"})
        with pytest.raises(exc.SegmindAuthenticationError) as info:
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        _assert_no_key(str(info.value), repr(info.value), str(info.value.error_text))
        assert "***" in str(info.value)

    def test_errors_survive_pickling(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.post(V1, status_code=429, json={"error": "slow down"}, headers={"Retry-After": "7"})
        with pytest.raises(exc.SegmindRateLimitError) as info:
            SegmindHook(retry_policy=RetryPolicy(retry_rate_limits=False)).generate(
                "gpt-image-1.5", prompt=PROMPT
            )
        copy = pickle.loads(pickle.dumps(info.value))
        assert type(copy) is exc.SegmindRateLimitError
        assert (copy.status_code, copy.retry_after, copy.error_text) == (429, 7.0, "slow down")
        assert str(copy) == str(info.value)


# -- retries: counted calls -------------------------------------------------------------------

OK_PNG = {"content": image_bytes("png"), "headers": {"Content-Type": "image/png"}}


class TestRetries:
    @pytest.mark.parametrize("status", [429, 502, 503])
    def test_post_retried_where_nothing_can_have_started(
        self, hook: SegmindHook, requests_mock: Any, sleeps: list[float], status: int
    ) -> None:
        requests_mock.post(
            V1, [{"status_code": status, "json": {"error": "x"}}, {"status_code": 200, **OK_PNG}]
        )
        hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert requests_mock.call_count == 2
        assert len(sleeps) == 1

    @pytest.mark.parametrize("status", [500, 504])
    def test_post_not_retried_when_it_may_have_been_charged(
        self, hook: SegmindHook, requests_mock: Any, sleeps: list[float], status: int
    ) -> None:
        requests_mock.post(
            V1, [{"status_code": status, "json": {"error": "x"}}, {"status_code": 200, **OK_PNG}]
        )
        with pytest.raises(exc.SegmindServerError) as info:
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert requests_mock.call_count == 1
        assert info.value.may_have_been_charged
        assert "may have reached Segmind and been charged" in str(info.value)
        assert sleeps == []

    def test_post_read_timeout_not_retried(
        self, hook: SegmindHook, requests_mock: Any, sleeps: list[float]
    ) -> None:
        requests_mock.post(
            V1, [{"exc": requests.exceptions.ReadTimeout("read timed out")}, {"status_code": 200, **OK_PNG}]
        )
        with pytest.raises(exc.SegmindTimeoutError) as info:
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert requests_mock.call_count == 1
        assert info.value.may_have_been_charged

    def test_post_dropped_after_sending_not_retried(
        self, hook: SegmindHook, requests_mock: Any, sleeps: list[float]
    ) -> None:
        requests_mock.post(
            V1,
            [{"exc": requests.exceptions.ConnectionError("reset by peer")}, {"status_code": 200, **OK_PNG}],
        )
        with pytest.raises(exc.SegmindConnectionError) as info:
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert requests_mock.call_count == 1
        assert info.value.sent and info.value.may_have_been_charged

    def test_post_connect_timeout_retried(
        self, hook: SegmindHook, requests_mock: Any, sleeps: list[float]
    ) -> None:
        requests_mock.post(
            V1,
            [
                {"exc": requests.exceptions.ConnectTimeout("connect timed out")},
                {"status_code": 200, **OK_PNG},
            ],
        )
        hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert requests_mock.call_count == 2

    @pytest.mark.parametrize(
        "failure",
        [
            {"status_code": 500, "json": {"error": "x"}},
            {"status_code": 504, "text": ""},
            {"status_code": 429, "json": {"error": "x"}},
            {"exc": requests.exceptions.ReadTimeout("slow")},
            {"exc": requests.exceptions.ConnectionError("reset")},
        ],
    )
    def test_get_retried_on_transient_failures(
        self, hook: SegmindHook, requests_mock: Any, sleeps: list[float], failure: dict[str, Any]
    ) -> None:
        url = f"{BASE}/v1/get-user-credits"
        requests_mock.get(url, [failure, failure, {"json": {"credits": 3.5, "free-credits": 0.1}}])
        assert hook.get_credits().credits == 3.5
        assert requests_mock.call_count == 3
        assert len(sleeps) == 2

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 406, 410])
    def test_never_retried(
        self, hook: SegmindHook, requests_mock: Any, sleeps: list[float], status: int
    ) -> None:
        requests_mock.post(V1, status_code=status, json={"error": "no"})
        requests_mock.get(f"{BASE}/v1/get-user-credits", status_code=status, json={"error": "no"})
        with pytest.raises(exc.SegmindError):
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        with pytest.raises(exc.SegmindError):
            hook.get_credits()
        assert requests_mock.call_count == 2
        assert sleeps == []

    def test_retry_after_seconds_honoured(
        self, patient_hook: SegmindHook, requests_mock: Any, sleeps: list[float]
    ) -> None:
        hook = patient_hook
        requests_mock.post(
            V1, [{"status_code": 429, "headers": {"Retry-After": "3"}}, {"status_code": 200, **OK_PNG}]
        )
        hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert len(sleeps) == 1
        assert 3.0 <= sleeps[0] <= 3.3

    def test_retry_after_http_date_honoured(
        self, patient_hook: SegmindHook, requests_mock: Any, sleeps: list[float]
    ) -> None:
        hook = patient_hook
        when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
        requests_mock.post(
            V1, [{"status_code": 429, "headers": {"Retry-After": when}}, {"status_code": 200, **OK_PNG}]
        )
        hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert 17.0 <= sleeps[0] <= 22.5

    def test_attempts_are_bounded(self, hook: SegmindHook, requests_mock: Any, sleeps: list[float]) -> None:
        requests_mock.post(V1, status_code=503, json={"error": "busy"})
        with pytest.raises(exc.SegmindServerError):
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert requests_mock.call_count == hook.retry_policy.max_attempts == 4

    def test_rate_limits_are_bounded_by_the_wait_budget_not_attempts(
        self, segmind_env: str, requests_mock: Any, sleeps: list[float]
    ) -> None:
        """A long window is waited out as far as max_wait allows, however many 429s that takes."""
        hook = SegmindHook(retry_policy=RetryPolicy(max_attempts=2, max_wait=100, initial_backoff=1))
        requests_mock.post(V1, status_code=429, headers={"Retry-After": "9"})
        with pytest.raises(exc.SegmindRateLimitError):
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert requests_mock.call_count > 2  # more than max_attempts: 429 is not a failed attempt
        assert 90 - 11 <= sum(sleeps) <= 100
        assert all(9 <= s <= 9.9 for s in sleeps)

    def test_retry_after_zero_is_not_a_busy_loop(
        self, segmind_env: str, requests_mock: Any, sleeps: list[float]
    ) -> None:
        hook = SegmindHook(retry_policy=RetryPolicy(max_wait=10, initial_backoff=1))
        requests_mock.post(V1, status_code=429, headers={"Retry-After": "0"})
        with pytest.raises(exc.SegmindRateLimitError):
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert sleeps and min(sleeps) >= 1.0
        assert requests_mock.call_count <= 11

    @pytest.mark.parametrize(
        "reset_at",
        [
            lambda when: when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            lambda when: when.isoformat(),
            lambda when: format_datetime(when, usegmt=True),
            lambda when: str(int(when.timestamp())),
            lambda when: str(int(when.timestamp() * 1000)),
        ],
        ids=["iso-z", "iso-offset", "http-date", "unix-s", "unix-ms"],
    )
    def test_segmind_reset_header_honoured(
        self, patient_hook: SegmindHook, requests_mock: Any, sleeps: list[float], reset_at: Any
    ) -> None:
        """Segmind's real 429: no Retry-After, the reset moment in x-rate-limit-reset-at-utc."""
        when = datetime.now(timezone.utc) + timedelta(seconds=20)
        requests_mock.post(
            V1,
            [
                {
                    "status_code": 429,
                    "json": {"error": "rate_limit_exceeded"},
                    "headers": {"x-rate-limit-reset-at-utc": reset_at(when)},
                },
                {"status_code": 200, **OK_PNG},
            ],
        )
        patient_hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert len(sleeps) == 1
        assert 17.0 <= sleeps[0] <= 22.5

    def test_total_wait_is_bounded(self, segmind_env: str, requests_mock: Any, sleeps: list[float]) -> None:
        hook = SegmindHook(retry_policy=RetryPolicy(max_attempts=10, max_wait=60))
        requests_mock.post(V1, status_code=429, headers={"Retry-After": "45"})
        with pytest.raises(exc.SegmindRateLimitError) as info:
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert requests_mock.call_count == 2  # 45 s fits the budget once, a second 45 s does not
        assert sum(sleeps) <= 60
        assert info.value.retry_after == 45.0


# -- v2: queued requests ----------------------------------------------------------------------


class TestQueued:
    def test_submit_returns_handle(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.post(V2, json=_submit_answer())
        handle = hook.submit("gpt-image-1.5", {"quality": "low"}, prompt=PROMPT)
        assert handle.request_id == "req-1"
        assert handle.status == "QUEUED"
        assert requests_mock.last_request.json()["quality"] == "low"

    def test_submit_answer_without_request_id(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.post(V2, json={"status": "QUEUED"})
        with pytest.raises(exc.SegmindBadResponseError, match="V2SubmitResponse"):
            hook.submit("gpt-image-1.5", prompt=PROMPT)
        assert requests_mock.call_count == 1

    def test_status_and_result(self, hook: SegmindHook, requests_mock: Any) -> None:
        handle_json = _submit_answer()
        requests_mock.post(V2, json=handle_json)
        requests_mock.get(handle_json["status_url"], json={"status": "processing", "request_id": "req-1"})
        requests_mock.get(
            handle_json["response_url"],
            json={"status": "COMPLETED", "output": f"{CDN}/o/1.png", "metrics": {"inference_time": 3.2}},
        )
        handle = hook.submit("gpt-image-1.5", prompt=PROMPT)
        assert hook.get_status(handle).status == "PROCESSING"
        result = hook.get_result(handle)
        assert result.output_urls == [f"{CDN}/o/1.png"]
        assert requests_mock.request_history[1].headers["x-api-key"] == API_KEY

    def test_status_by_request_id(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.get(f"{BASE}/v2/requests/abc123/status", json={"status": "QUEUED"})
        assert hook.get_status("abc123").status == "QUEUED"

    def test_failed_is_an_answer_not_a_transport_error(
        self, hook: SegmindHook, requests_mock: Any, sleeps: list[float]
    ) -> None:
        body = {
            "status": "FAILED",
            "error": "moderation refused the prompt",
            "request_id": "r9",
            "metrics": {},
        }
        requests_mock.get(f"{BASE}/v2/requests/r9/status", status_code=422, json=body)
        requests_mock.get(f"{BASE}/v2/requests/r9", status_code=422, json=body)
        status = hook.get_status("r9")
        assert (status.status, status.error) == ("FAILED", "moderation refused the prompt")
        assert hook.get_result("r9").status == "FAILED"
        assert requests_mock.call_count == 2
        with pytest.raises(exc.SegmindRequestFailedError, match="moderation refused the prompt"):
            hook.wait_for_result("r9")

    def test_wait_for_result_polls_until_done(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.get(
            f"{BASE}/v2/requests/r1/status",
            [
                {"json": {"status": "QUEUED"}},
                {"json": {"status": "PROCESSING"}},
                {"json": {"status": "COMPLETED"}},
            ],
        )
        requests_mock.get(f"{BASE}/v2/requests/r1", json={"status": "COMPLETED", "output": [f"{CDN}/a.png"]})
        naps: list[float] = []
        result = hook.wait_for_result("r1", poll_interval=5, sleep=naps.append)
        assert result.output_urls == [f"{CDN}/a.png"]
        assert naps == [5, 5]
        assert all(r.method == "GET" for r in requests_mock.request_history)

    def test_wait_for_result_deadline(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.get(f"{BASE}/v2/requests/r1/status", json={"status": "QUEUED"})
        with pytest.raises(exc.SegmindTimeoutError, match="still QUEUED"):
            hook.wait_for_result("r1", poll_interval=0.01, timeout=0.05, sleep=lambda _s: None)

    def test_422_without_failed_is_validation(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.post(V2, status_code=422, json={"error": "bad field"})
        with pytest.raises(exc.SegmindValidationError, match="bad field"):
            hook.submit("gpt-image-1.5", prompt=PROMPT)

    def test_expired_result_is_not_found(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.get(
            f"{BASE}/v2/requests/old/status", status_code=404, json={"error": "Request not found"}
        )
        with pytest.raises(exc.SegmindNotFoundError, match="one hour"):
            hook.get_status("old")


# -- downloads, credits, test_connection, logs ------------------------------------------------


class TestDownloadsAndAccount:
    def test_redirect_off_the_api_origin_drops_the_key(self, hook: SegmindHook, requests_mock: Any) -> None:
        png = image_bytes("png")
        requests_mock.get(f"{BASE}/v2/files/x.png", status_code=302, headers={"Location": f"{CDN}/x.png"})
        requests_mock.get(f"{CDN}/x.png", content=png, headers={"Content-Type": "image/png"})
        image = hook.download_image(f"{BASE}/v2/files/x.png")
        assert image.data == png
        first, second = requests_mock.request_history
        assert first.headers["x-api-key"] == API_KEY
        assert "x-api-key" not in {k.lower() for k in second.headers}

    def test_download_checks_format(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.get(f"{CDN}/x.png", content=image_bytes("jpeg"))
        with pytest.raises(exc.SegmindBadResponseError, match="jpeg"):
            hook.download_image(f"{CDN}/x.png", expected_format="png")

    def test_credits(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.get(f"{BASE}/v1/get-user-credits", json={"credits": 0.0, "free-credits": 0.0184921035})
        credits = hook.get_credits()
        assert (credits.credits, credits.free_credits) == (0.0, 0.0184921035)

    def test_test_connection_ok(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.get(f"{BASE}/v1/get-user-credits", json={"credits": 12.5, "free-credits": 0})
        ok, message = hook.test_connection()
        assert ok
        assert "12.5" in message
        assert BASE in message

    def test_test_connection_bad_key(self, hook: SegmindHook, requests_mock: Any) -> None:
        requests_mock.get(f"{BASE}/v1/get-user-credits", status_code=401, json={"error": "Invalid API key"})
        ok, message = hook.test_connection()
        assert not ok
        assert "401" in message and "Invalid API key" in message
        _assert_no_key(message)

    def test_test_connection_without_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_SEGMIND_DEFAULT", raising=False)
        monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
        ok, message = SegmindHook().test_connection()
        assert not ok
        assert "SEGMIND_API_KEY" in message

    def test_one_log_line_per_call(
        self,
        hook: SegmindHook,
        requests_mock: Any,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        requests_mock.post(
            V1,
            content=image_bytes("png"),
            headers={"Content-Type": "image/png", "X-remaining-credits": "41.2"},
        )
        caplog.set_level(logging.INFO)
        hook.generate("gpt-image-1.5", prompt=PROMPT)
        # Airflow's structlog set-up writes task-hook logs to stdout; caplog sees stdlib logging.
        logged = caplog.text + capsys.readouterr().out
        lines = [line for line in logged.splitlines() if "Segmind POST" in line]
        assert len(lines) == 1
        assert "/v1/gpt-image-1.5" in lines[0]
        assert "HTTP 200" in lines[0]
        assert "41.2" in lines[0]
        assert " s;" in lines[0]
        _assert_no_key(logged)
