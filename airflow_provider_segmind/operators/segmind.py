"""SegmindGenerateImageOperator: a templated prompt in, image files in storage out, paths to XCom.

Importing this module is cheap (it is imported on every DAG parse): the hook, ``requests``,
``httpx``, the trigger and ObjectStoragePath are imported inside the methods that use them.
Parameters given as literals are validated at parse time, so a typo in ``size`` is an import
error in the UI rather than a failed run; after rendering they are validated again, before any
HTTP call.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider_segmind.connection import DEFAULT_CONN_ID
from airflow_provider_segmind.exceptions import (
    SegmindBadResponseError,
    SegmindError,
    SegmindNotFoundError,
    SegmindRateLimitError,
    SegmindTimeoutError,
)
from airflow_provider_segmind.models.parameters import (
    build_request_body,
    expected_output_format,
    reject_self_reference,
    validate_model_slug,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath

    from airflow_provider_segmind.hooks.segmind import SegmindHook
    from airflow_provider_segmind.models.answers import V2SubmitResponse
    from airflow_provider_segmind.outputs import ImageTargets
    from airflow_provider_segmind.responses import DownloadedImage

DEFAULT_MODEL = "gpt-image-1.5"
#: XCom key of the request metadata (the return value holds the image URIs).
METADATA_XCOM_KEY = "segmind_metadata"
#: task_state_store key holding the v2 request a retry may resume.
REQUEST_RECORD_KEY = "segmind_request"
#: Segmind keeps a queued request's result for one hour; resume only well inside that.
RESULT_WINDOW = timedelta(minutes=55)
#: Beyond this size (a very long prompt), the request's metadata is not put in the polling
#: trigger's kwargs, and a worker stores the images instead of the triggerer.
MAX_FINISH_KWARGS_BYTES = 16_384
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


def _has_template(value: Any) -> bool:
    """Whether a value (or anything inside it) still holds Jinja, or is not a plain literal."""
    if isinstance(value, str):
        return any(marker in value for marker in _TEMPLATE_MARKERS)
    if isinstance(value, Mapping):
        return any(_has_template(k) or _has_template(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_template(v) for v in value)
    return not (value is None or isinstance(value, (int, float, bool)))


class SegmindGenerateImageOperator(BaseOperator):
    """Generate images with a Segmind model and write them to any storage Airflow can reach.

    Returns (XCom ``return_value``) the list of written image URIs; pushes the request's metadata
    (model, rendered prompt, parameters, request id, elapsed time, remaining credits, images) under
    the XCom key ``segmind_metadata``. No image bytes go to XCom.

    :param prompt: what to draw (templated). May also be the path of a ``.txt`` or ``.j2`` template
        file, found through the DAG's ``template_searchpath``.
    :param model: the Segmind model slug (templated), ``gpt-image-1.5`` by default. Known slugs
        (the GPT Image family) are validated field by field; any other slug is sent as given.
    :param parameters: the model's other inputs, e.g. ``{"size": "1024x1024", "quality": "low"}``
        (templated; shown as JSON in the UI). Unset fields take the model's defaults.
    :param output_dir: where images are written (templated): a local path or any URI that
        Airflow's ObjectStoragePath or fsspec understands (``s3://``, ``gs://``, ``file://``,
        ``memory://``). Default: ``$AIRFLOW_HOME/segmind_output/<dag_id>/<run_id>``.
    :param output_conn_id: Airflow connection for the storage of ``output_dir`` (e.g. an AWS
        connection for ``s3://``); default: the storage provider's own default.
    :param segmind_conn_id: the Segmind connection (templated); its password is the API key.
    :param deferrable: submit with the queued v2 API and wait in the triggerer, so no worker slot
        is held during the generation or a rate-limit wait. Default: ``[operators]
        default_deferrable``.
    :param poll_interval: seconds between status checks while waiting for a queued request.
    :param timeout: seconds one try may spend on a generation before failing, from sending it to
        the last image stored: every network wait (the POST and its answer, each status poll,
        each download) ends by then, however slowly the server answers (at most 3600: Segmind
        keeps a result for one hour). Rate-limit waits before a generation is accepted are
        bounded by ``rate_limit_max_wait`` instead.
    :param rate_limit_max_wait: seconds in all that the task may wait out HTTP 429 answers before
        it fails, in the worker (``deferrable=False``) or in the triggerer's turn queue
        (``deferrable=True``).
    :param end_from_trigger: with ``deferrable=True``, the triggerer stores the images and ends the
        task itself (XComs included), so a worker runs only to send the request. Default True. A
        task with ``outlets`` always ends in a worker, where Airflow records asset events; set
        False to end in a worker anyway (e.g. for listeners that run there). If the triggerer
        cannot store the images, the task resumes in a worker, which does.
    """

    template_fields: Sequence[str] = ("prompt", "model", "parameters", "output_dir", "segmind_conn_id")
    template_fields_renderers = {"parameters": "json"}
    template_ext: Sequence[str] = (".txt", ".j2")
    ui_color = "#e9d5ff"
    ui_fgcolor = "#1e1b4b"

    def __init__(
        self,
        *,
        prompt: str,
        model: str = DEFAULT_MODEL,
        parameters: dict[str, Any] | None = None,
        output_dir: str | ObjectStoragePath | None = None,
        output_conn_id: str | None = None,
        segmind_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5.0,
        timeout: float = 900.0,
        rate_limit_max_wait: float = 600.0,
        end_from_trigger: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.model = model
        self.parameters = parameters
        self.output_dir = output_dir
        self.output_conn_id = output_conn_id
        self.segmind_conn_id = segmind_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.rate_limit_max_wait = rate_limit_max_wait
        self.end_from_trigger = end_from_trigger
        self._check_numbers()
        self._validate_literals()

    # -- validation -----------------------------------------------------------------------

    def _check_numbers(self) -> None:
        if not self.poll_interval > 0:
            raise ValueError(
                f"poll_interval must be a positive number of seconds, got {self.poll_interval!r}"
            )
        if not 0 < self.timeout <= 3600:
            raise ValueError(
                "timeout must be between 0 and 3600 seconds (Segmind keeps results one hour), "
                f"got {self.timeout!r}"
            )
        if self.rate_limit_max_wait < 0:
            raise ValueError(f"rate_limit_max_wait must not be negative, got {self.rate_limit_max_wait!r}")

    def _validate_literals(self) -> None:
        """Validate at parse time whatever holds no Jinja, so mistakes show as import errors."""
        # Templated or not: right after __init__ Airflow walks the template fields (for upstream
        # XComArgs), and later renders them, recursing without a guard.
        reject_self_reference(self.parameters)
        if _has_template(self.model) or _has_template(self.parameters):
            return
        prompt = self.prompt
        if not isinstance(prompt, str) or _has_template(prompt) or prompt.endswith(tuple(self.template_ext)):
            prompt = "(rendered at run time)"
        validate_model_slug(self.model)
        build_request_body(self.model, self.parameters, prompt=prompt)

    def _request_body(self) -> dict[str, Any]:
        """The rendered request, validated again before anything is sent."""
        if self.parameters is not None and not isinstance(self.parameters, Mapping):
            from airflow_provider_segmind.exceptions import SegmindValidationError

            raise SegmindValidationError(
                f"parameters must be a dict after rendering, got {type(self.parameters).__name__}: "
                f"{str(self.parameters)[:100]!r}. Templated dicts need render_template_as_native_obj=True "
                "on the DAG, or template the values rather than the whole dict.",
                field="parameters",
            )
        validate_model_slug(self.model)
        return build_request_body(self.model, self.parameters, prompt=self.prompt)

    # -- hooks -------------------------------------------------------------------------------

    @cached_property
    def hook(self) -> SegmindHook:
        """The hook for this task; 429s are waited out in the worker up to rate_limit_max_wait."""
        return self._make_hook(retry_rate_limits=True)

    def _make_hook(self, *, retry_rate_limits: bool) -> SegmindHook:
        from airflow_provider_segmind.hooks.segmind import SegmindHook
        from airflow_provider_segmind.policy import RetryPolicy

        policy = RetryPolicy(max_wait=self.rate_limit_max_wait, retry_rate_limits=retry_rate_limits)
        return SegmindHook(self.segmind_conn_id, retry_policy=policy)

    # -- execution ---------------------------------------------------------------------------

    def execute(self, context: Context) -> list[str]:
        body = self._request_body()
        if self.deferrable:
            if not self.retries:
                self.log.warning(
                    "deferrable=True with retries=0: a task that Airflow fails while it resumes from a "
                    "deferral (apache/airflow#66374, #71580) is not retried, and its paid image waits "
                    "for a manual clear. With retries, a retry resumes the paid request instead of "
                    "paying again; set retries=2."
                )
            return self._submit_and_defer(context, body)
        return self._execute_sync(context, body)

    def _execute_sync(self, context: Context, body: dict[str, Any]) -> list[str]:
        from airflow_provider_segmind.outputs import request_metadata
        from airflow_provider_segmind.storage import uri_of, write_atomically

        written: list[tuple[str, DownloadedImage]] = []

        targets = self._image_targets(context, body)

        def store(index: int, extension: str, fill: Callable[[BinaryIO], DownloadedImage]) -> DownloadedImage:
            target = targets.path(index, extension)
            image = write_atomically(target, fill)
            written.append((uri_of(target), image))
            return image

        result = self.hook.generate_into(self.model, body, sink=store, timeout=self.timeout)
        uris = [uri for uri, _ in written]
        metadata = request_metadata(
            model=self.model,
            body=body,
            images=[
                {"uri": uri, "format": image.format, "bytes": image.size_bytes} for uri, image in written
            ],
            request_id=result.request_id,
            elapsed=result.elapsed_seconds,
            credits=result.remaining_credits,
            api="v1",
        )
        context["ti"].xcom_push(key=METADATA_XCOM_KEY, value=metadata)
        self.log.info("Wrote %d image(s): %s", len(uris), ", ".join(uris))
        return uris

    # -- deferrable path -----------------------------------------------------------------------

    def _submit_and_defer(
        self,
        context: Context,
        body: dict[str, Any],
        *,
        queue: dict[str, Any] | None = None,
        turn_taken: bool = False,
    ) -> Any:
        """Resume an earlier try's request, or submit one; then defer to the polling trigger.

        With a rate limit set on the connection, the task first waits for its turn in the
        triggerer; a 429 on submit (set or not) queues it for a turn as well. No worker slot is
        held while waiting. The triggers never POST, so a restarted triggerer never pays twice.

        :param queue: the task's place in the turn queue, once it has one: ``enqueued_at``,
            ``deadline`` (``rate_limit_max_wait`` from the first wait) and ``rejections``.
        :param turn_taken: back from a turn: send now.
        """
        started = time.time()
        resumed = self._resumable_request(context, body)
        finish = self._finish_in_trigger(context, body)
        if resumed is not None:
            handle, status = resumed
            sent_at = None  # sent by an earlier try: already counted in its window
            if status == "COMPLETED":  # done while nobody watched: no deferral needed
                return self._complete_resumed(context, handle, started)
        else:
            if not turn_taken and self.hook.settings.rate_limit is not None:
                return self._defer_for_turn(context, queue, rejected_by=None)
            submit_hook = self._make_hook(retry_rate_limits=False)
            try:
                handle = submit_hook.submit(self.model, body)
            except SegmindRateLimitError as err:
                return self._defer_for_turn(context, queue, rejected_by=err)
            # Taken after the answer, so it is never before Segmind counted the request: the turn
            # queue frees this send's place in the window from here.
            sent_at = time.time()
            self._save_request(context, handle, body, ends_in_trigger=finish is not None)
        from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger

        self.defer(
            trigger=SegmindRequestTrigger(
                segmind_conn_id=self.segmind_conn_id,
                request_id=handle.request_id,
                status_url=handle.status_url,
                response_url=handle.response_url,
                poll_interval=self.poll_interval,
                deadline=started + self.timeout,
                submitted_at=sent_at,
                ticket=self._ticket(context) if turn_taken else None,
                finish=finish,
            ),
            method_name="execute_complete",
            kwargs={"submitted_at": started, "request": handle.model_dump(mode="json")},
        )
        return None  # pragma: no cover - defer() raises

    def _finish_in_trigger(self, context: Context, body: dict[str, Any]) -> dict[str, Any] | None:
        """What the polling trigger needs to store the images and end the task, or None when a
        worker must: ``end_from_trigger=False``, outlets (asset events are recorded by a worker),
        an ``output_dir`` given as an ObjectStoragePath (its options do not fit in kwargs), or
        metadata too big for a trigger's kwargs."""
        if not self.end_from_trigger or self.outlets:
            return None
        if self.output_dir is not None and not isinstance(self.output_dir, str):
            return None
        finish = {
            "targets": self._image_targets(context, body).to_kwargs(),
            "model": self.model,
            "body": body,
        }
        if len(json.dumps(finish, default=str)) > MAX_FINISH_KWARGS_BYTES:
            self.log.info(
                "The request's metadata is too big for the trigger; a worker will store the images."
            )
            return None
        return finish

    def _complete_resumed(self, context: Context, handle: V2SubmitResponse, started: float) -> list[str]:
        event = self._event_from_result(handle, "Completed before this try.")
        return self.execute_complete(context, event=event, submitted_at=started)

    def _submitted_request(self, context: Context, request: dict[str, Any] | None) -> V2SubmitResponse:
        """The request this try submitted: from the deferral's kwargs, else from its record."""
        from airflow_provider_segmind.models.answers import V2SubmitResponse

        if request is None:
            store = context.get("task_state_store")
            record = self._read_record(context, store) if store is not None else None
            request = record.get("handle") if isinstance(record, dict) else None
        if request is None:
            raise SegmindBadResponseError(
                "The task resumed with an event that names no request, and no request of this try is "
                "recorded; cannot tell which images to store."
            )
        return V2SubmitResponse.model_validate(request)

    def _event_from_result(self, handle: V2SubmitResponse, message: str) -> dict[str, Any]:
        """The polling trigger's success event, made from the completed request's result."""
        from airflow_provider_segmind.hooks.segmind import raise_for_failed

        result = raise_for_failed(self.hook.get_result(handle), handle.request_id)
        return {
            "status": "success",
            "request_id": handle.request_id,
            "message": message,
            "output_urls": result.output_urls,
        }

    def _ticket(self, context: Context) -> str:
        """Who waits in the turn queue: one task instance of one run."""
        map_index = getattr(context["ti"], "map_index", -1)
        return f"{self.dag_id}.{self.task_id}[{map_index}] {context.get('run_id')}"

    def _defer_for_turn(
        self, context: Context, queue: dict[str, Any] | None, rejected_by: SegmindRateLimitError | None
    ) -> Any:
        """Queue for a turn to send (see ``airflow_provider_segmind.turns``), holding no slot."""
        from airflow_provider_segmind.triggers.segmind import SegmindTurnTrigger

        now = time.time()
        queue = dict(queue) if queue else {"enqueued_at": now, "deadline": now + self.rate_limit_max_wait}
        queue["rejections"] = int(queue.get("rejections", 0)) + (1 if rejected_by is not None else 0)
        if now >= queue["deadline"]:
            raise SegmindRateLimitError(
                "Still rate limited after waiting up to "
                f"rate_limit_max_wait={self.rate_limit_max_wait:.0f} s.",
                retry_after=rejected_by.retry_after if rejected_by else None,
                status_code=429 if rejected_by else None,
                error_text=rejected_by.error_text if rejected_by else None,
            )
        reset_at = (
            now + rejected_by.retry_after if rejected_by and rejected_by.retry_after is not None else None
        )
        if rejected_by is not None:
            self.log.info(
                "Segmind answered 429 (rejection %d of this task); queueing for a turn, holding no "
                "worker slot (window reopens in %s s).",
                queue["rejections"],
                f"{rejected_by.retry_after:.1f}" if rejected_by.retry_after is not None else "?",
            )
        else:
            self.log.info("Waiting for a turn under the connection's rate limit, holding no worker slot.")
        self.defer(
            trigger=SegmindTurnTrigger(
                segmind_conn_id=self.segmind_conn_id,
                ticket=self._ticket(context),
                enqueued_at=queue["enqueued_at"],
                deadline=queue["deadline"],
                reset_at=reset_at,
                rejections=queue["rejections"],
            ),
            method_name="execute_after_turn",
            kwargs={"queue": queue},
        )
        return None  # pragma: no cover - defer() raises

    def execute_after_turn(
        self, context: Context, event: dict[str, Any] | None = None, queue: dict[str, Any] | None = None
    ) -> Any:
        """Back from the turn queue: submit now (validation first, as always)."""
        if not isinstance(event, dict) or event.get("status") != "turn":
            raise SegmindRateLimitError(
                f"No turn to send within rate_limit_max_wait={self.rate_limit_max_wait:.0f} s.",
                hint="Raise rate_limit_max_wait, or send fewer generations at once.",
            )
        return self._submit_and_defer(context, self._request_body(), queue=queue, turn_taken=True)

    def execute_after_rate_limit(self, context: Context, event: Any = None, **_: Any) -> Any:
        """Back from the rate-limit timer of a task deferred by an earlier version: submit now."""
        return self._submit_and_defer(context, self._request_body(), turn_taken=True)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | str | None = None,
        submitted_at: float | None = None,
        request: dict[str, Any] | None = None,
    ) -> list[str]:
        """Back from the trigger: download the output(s) atomically, or fail with Segmind's words.

        :param request: the submitted request's handle (absent in deferrals of older versions).
        """
        from airflow_provider_segmind.triggers.segmind import output_urls_from_event

        if isinstance(event, str):
            # The trigger ended the task itself (TaskSuccessEvent), yet the task resumed with the
            # event's payload: ``dag.test()`` runs triggers inline, resumes with any event, and
            # drops the deferral's kwargs. Storing again is idempotent: a download, not a generation.
            event = self._event_from_result(
                self._submitted_request(context, request), "Completed (resumed by the trigger's end event)."
            )

        def timed_out(request_id: str, message: str) -> SegmindTimeoutError:
            return SegmindTimeoutError(
                message or f"Request {request_id} did not finish within {self.timeout:.0f} s.",
                request_id=request_id,
                hint="Raise timeout; a retry of this task resumes the same request while Segmind keeps it.",
            )

        request_id, output_urls = output_urls_from_event(event, on_timeout=timed_out)
        body = self._request_body()
        from airflow_provider_segmind.deadline import Deadline
        from airflow_provider_segmind.outputs import request_metadata, store_outputs

        # The downloads end by the same deadline as the wait: ``timeout`` bounds the whole try.
        started = submitted_at if submitted_at else time.time()
        deadline = Deadline(started + self.timeout, f"timeout={self.timeout:g} s")
        images = store_outputs(self.hook, self._image_targets(context, body), output_urls, deadline)
        uris = [image["uri"] for image in images]
        elapsed = time.time() - submitted_at if submitted_at else None
        metadata = request_metadata(
            model=self.model,
            body=body,
            images=images,
            request_id=request_id,
            elapsed=elapsed,
            credits=None,
            api="v2",
        )
        context["ti"].xcom_push(key=METADATA_XCOM_KEY, value=metadata)
        self._forget_request(context)
        self.log.info("Wrote %d image(s) from request %s: %s", len(uris), request_id, ", ".join(uris))
        return uris

    # -- retry resume (task_state_store) --------------------------------------------------------

    def _resumable_request(
        self, context: Context, body: dict[str, Any]
    ) -> tuple[V2SubmitResponse, str] | None:
        """An earlier try's request for the same body, still in Segmind's result window, and its
        status; None when there is none to resume, or when an earlier try already stored its
        images from the triggerer (the task was cleared: a re-run asks for new images)."""
        store = context.get("task_state_store")
        if store is None:
            self.log.warning(
                "This Airflow has no task_state_store (3.3+): a retry of this task will submit, and pay "
                "for, a new request."
            )
            return None
        record = self._read_record(context, store)
        if not isinstance(record, dict) or record.get("body_sha256") != _fingerprint(self.model, body):
            return None
        if time.time() - float(record.get("submitted_at", 0)) > RESULT_WINDOW.total_seconds():
            return None
        from airflow_provider_segmind.models.answers import V2SubmitResponse

        handle = V2SubmitResponse.model_validate(record["handle"])
        try:
            status = self.hook.get_status(handle)
        except SegmindNotFoundError:
            return None
        if status.status == "FAILED":
            return None
        if (
            status.status == "COMPLETED"
            and record.get("ends_in_trigger")
            and self._already_stored(context, body, handle)
        ):
            self.log.info(
                "Request %s of an earlier try completed and its images are stored: this is a re-run, "
                "which asks for (and pays for) new images.",
                handle.request_id,
            )
            return None
        self.log.info(
            "Resuming request %s submitted by an earlier try (%s); not submitting, nor paying, again.",
            handle.request_id,
            status.status,
        )
        return handle, str(status.status)

    def _already_stored(self, context: Context, body: dict[str, Any], handle: V2SubmitResponse) -> bool:
        """Whether every output of a completed request is already in storage. A triggerer that
        ended the task could not drop the record (task_state_store is a worker's), so this tells a
        cleared task from a retried one."""
        try:
            urls = self.hook.get_result(handle).output_urls
            return self._image_targets(context, body).all_exist(urls)
        except Exception as err:  # unsure: resume, which never pays twice
            self.log.warning(
                "Could not check whether request %s is already stored (%s).", handle.request_id, err
            )
            return False

    def _read_record(self, context: Context, store: Any) -> Any:
        """The earlier try's record, read through the API server, which can fail under load
        (seen: a 404 without a body for a key not yet written, on a first try).

        A failed read is tried three times. A first try has no earlier request to find, so it
        goes on without one; a retry fails instead: failing costs a retry, guessing "no record"
        could pay twice.
        """
        failure: Exception | None = None
        for attempt in range(3):
            try:
                return store.get(REQUEST_RECORD_KEY)
            except Exception as err:  # AirflowRuntimeError from the execution API, whatever its cause
                failure = err
                time.sleep(0.5 * (attempt + 1))
        if getattr(context["ti"], "try_number", 1) <= 1:
            self.log.warning(
                "Could not read task_state_store (%s); a first try has no earlier request.", failure
            )
            return None
        raise SegmindError(
            f"Could not read this task's task_state_store record of an earlier try's request ({failure}); "
            "failing this try rather than risk paying twice.",
        ) from failure

    def _save_request(
        self, context: Context, handle: V2SubmitResponse, body: dict[str, Any], *, ends_in_trigger: bool
    ) -> None:
        store = context.get("task_state_store")
        if store is None:
            return
        try:
            store.set(
                REQUEST_RECORD_KEY,
                {
                    "handle": handle.model_dump(mode="json"),
                    "body_sha256": _fingerprint(self.model, body),
                    "submitted_at": time.time(),
                    "ends_in_trigger": ends_in_trigger,
                },
                retention=timedelta(hours=2),
            )
        except Exception as err:  # the request is paid for: go on waiting for it rather than fail
            self.log.error(
                "Could not record request %s in task_state_store (%s): a retry of this task would submit, "
                "and pay for, a new one.",
                handle.request_id,
                err,
            )

    def _forget_request(self, context: Context) -> None:
        """The images are stored: a later re-run of this task asks for new ones."""
        store = context.get("task_state_store")
        if store is None:
            return
        try:
            store.delete(REQUEST_RECORD_KEY)
        except Exception as err:  # the images are stored; the record expires on its own
            self.log.warning(
                "Could not drop the request record (%s): a re-run within 55 minutes resumes the same "
                "request instead of asking for new images.",
                err,
            )

    # -- outputs -------------------------------------------------------------------------------

    def _image_targets(self, context: Context, body: dict[str, Any]) -> ImageTargets:
        """Where this task instance's images go; the same on every try, in a worker or a triggerer."""
        from airflow_provider_segmind.outputs import ImageTargets
        from airflow_provider_segmind.storage import default_output_dir

        location = self.output_dir
        if location is None or (isinstance(location, str) and not location.strip()):
            location = default_output_dir(self.dag_id, context["run_id"])
        return ImageTargets(
            directory=location,
            conn_id=self.output_conn_id,
            task_id=self.task_id,
            map_index=getattr(context["ti"], "map_index", -1),
            expected_format=expected_output_format(body),
        )


def _fingerprint(model: str, body: Mapping[str, Any]) -> str:
    """Identifies the request, so a retry resumes only a request for exactly the same input."""
    return hashlib.sha256(json.dumps([model, body], sort_keys=True).encode()).hexdigest()
