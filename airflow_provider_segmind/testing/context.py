"""Run the operator, the sensor and the trigger outside a scheduler: a small task context.

``dag.test()`` is the honest end-to-end check, but it runs every task of a DAG; these stand-ins
let a test call ``execute`` / ``execute_complete`` of one operator directly, and resume a deferral
the way Airflow does, against the local server.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.triggers.base import BaseTrigger


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


def run_trigger(trigger: BaseTrigger) -> dict[str, Any]:
    """Run a trigger as the triggerer would, until its first event; return the event's payload."""

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise RuntimeError("the trigger ended without an event")

    return asyncio.run(first_event())
