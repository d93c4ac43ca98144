"""Run the operator, the sensor and the trigger outside a scheduler: a small task context.

``dag.test()`` is the honest end-to-end check, but it runs every task of a DAG; these stand-ins
let a test call ``execute`` / ``execute_complete`` of one operator directly, and resume a deferral
the way Airflow does, against the local server.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskDeferred
    from airflow.triggers.base import BaseTrigger, TriggerEvent


class FakeTaskInstance:
    """Just enough of a TaskInstance for the operator: a map index, a try number, XCom pushes."""

    def __init__(self, map_index: int = -1, try_number: int = 1) -> None:
        self.map_index = map_index
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


class FakeTaskStateStore:
    """Stands in for Airflow 3.3's ``task_state_store``, which survives task retries."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")  # as Airflow's store does
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def task_context(
    *,
    map_index: int = -1,
    run_id: str = "manual__2026-11-25T10:00:00+00:00",
    store: FakeTaskStateStore | None = None,
    with_store: bool = True,
    try_number: int = 1,
) -> dict[str, Any]:
    """A context dict with ``ti``, ``run_id`` and (unless ``with_store=False``) a state store."""
    context: dict[str, Any] = {"ti": FakeTaskInstance(map_index, try_number), "run_id": run_id}
    if with_store:
        context["task_state_store"] = store if store is not None else FakeTaskStateStore()
    return context


def trigger_event(trigger: BaseTrigger) -> TriggerEvent:
    """Run a trigger as the triggerer would, until its first event; return the event."""

    async def first_event() -> TriggerEvent:
        async for event in trigger.run():
            return event
        raise RuntimeError("the trigger ended without an event")

    return asyncio.run(first_event())


def run_trigger(trigger: BaseTrigger) -> dict[str, Any]:
    """Run a trigger as the triggerer would, until its first event; return the event's payload.

    An event that ends the task itself (``TaskSuccessEvent``) has no payload for a method; its
    payload here is ``{"task_instance_state", "xcoms"}``.
    """
    from airflow.triggers.base import BaseTaskEndEvent

    event = trigger_event(trigger)
    if isinstance(event, BaseTaskEndEvent):
        return {"task_instance_state": str(event.task_instance_state), "xcoms": event.xcoms}
    return dict(event.payload)


def resume(operator: BaseOperator, deferred: TaskDeferred, context: dict[str, Any]) -> Any:
    """What Airflow does with a deferral: run its trigger, then either end the task as the event
    says (a ``TaskSuccessEvent`` pushes its XComs; the ``return_value`` one is returned) or call
    the operator's method with the event, as a worker resuming the task does.

    A ``TaskFailedEvent`` or any other end state raises ``RuntimeError``.
    """
    from airflow.triggers.base import BaseTaskEndEvent

    event = trigger_event(deferred.trigger)
    if isinstance(event, BaseTaskEndEvent):
        if str(event.task_instance_state) != "success":
            raise RuntimeError(f"the trigger ended the task {event.task_instance_state}")
        xcoms = dict(event.xcoms or {})
        for key, value in xcoms.items():
            context["ti"].xcom_push(key=key, value=value)
        return xcoms.get("return_value")
    method = getattr(operator, deferred.method_name)
    return method(context, event=event.payload, **(deferred.kwargs or {}))
