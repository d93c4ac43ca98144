"""The turn queue of a connection in the triggerer: order, spacing, 429s, learning, restarts."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from airflow_provider_segmind.connection import RateLimit, parse_rate_limit
from airflow_provider_segmind.exceptions import SegmindConfigurationError
from airflow_provider_segmind.turns import Turns, turns_for


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50/60", RateLimit(50, 60.0)),
        ("5/15", RateLimit(5, 15.0)),
        ("120", RateLimit(120, 60.0)),
        (10, RateLimit(10, 60.0)),
    ],
)
def test_rate_limit_setting(text: object, expected: RateLimit) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize("text", ["0/60", "fast", "5/0", "-1", "5/x"])
def test_bad_rate_limit_names_the_field(text: str) -> None:
    with pytest.raises(SegmindConfigurationError, match="rate_limit"):
        parse_rate_limit(text)


@pytest.mark.parametrize("text", [None, "", "  "])
def test_no_rate_limit_means_learn(text: object) -> None:
    assert parse_rate_limit(text) is None


async def _gather_turns(
    turns: Turns, tickets: list[tuple[str, float]], deadline: float = 30
) -> dict[str, float]:
    async def one(ticket: str, enqueued_at: float) -> tuple[str, float | None]:
        return ticket, await turns.wait_turn(ticket, enqueued_at, time.time() + deadline)

    return {t: at for t, at in await asyncio.gather(*(one(t, e) for t, e in tickets)) if at is not None}


async def test_turns_come_in_order_and_spaced_by_the_limit() -> None:
    turns = Turns(RateLimit(5, 1.0))  # one every 0.2 s (and 5 % more)
    now = time.time()
    tickets = [(f"t{i}", now + i * 0.001) for i in (3, 0, 4, 1, 2)]  # asked in another order
    granted = await _gather_turns(turns, tickets)
    order = sorted(granted, key=granted.__getitem__)
    assert order == ["t0", "t1", "t2", "t3", "t4"]  # first come, first served
    times = sorted(granted.values())
    assert all(b - a >= 0.2 - 0.01 for a, b in itertools.pairwise(times))
    assert times[0] - now < 0.2 + 0.1  # a new queue's first turn waits one spacing at most


async def test_no_turn_before_the_moment_a_429_named() -> None:
    turns = Turns(RateLimit(100, 1.0))
    reset = time.time() + 0.5
    turns.note_rejected(reset, rejections=1)
    granted = await _gather_turns(turns, [("a", time.time())])
    assert granted["a"] >= reset


async def test_a_task_sent_back_by_a_429_keeps_its_place() -> None:
    turns = Turns(RateLimit(10, 1.0))
    now = time.time()
    first_asked = now - 5  # asked long ago, rejected after its turn, queues again
    granted = await _gather_turns(turns, [("late", now), ("early", first_asked)])
    assert granted["early"] < granted["late"]


async def test_the_limit_is_learned_from_what_got_through_before_the_429() -> None:
    """No setting: 5 sends got through in the window, then a 429 says the window ends in 1.5 s."""
    turns = Turns(None)
    now = time.time()
    for i in range(5):
        turns.note_sent(now - 1.5 + i * 0.01)  # the window opened 1.5 s ago
    turns.note_rejected(now + 1.5, rejections=1, now=now)
    assert turns.spacing == pytest.approx(3.0 / 5, rel=0.05)  # a 3 s window, 5 sends
    granted = await _gather_turns(turns, [(f"t{i}", now + i) for i in range(3)])
    times = sorted(granted.values())
    assert times[0] >= now + 1.5
    assert all(b - a >= 0.6 * 0.95 for a, b in itertools.pairwise(times))


async def test_sends_reported_after_the_429_still_teach_the_limit() -> None:
    """Polling triggers of the accepted tasks may start after the rejected task's turn trigger."""
    turns = Turns(None)
    now = time.time()
    turns.note_rejected(now + 10, rejections=1, now=now)
    assert turns.spacing == pytest.approx(10)  # nothing seen yet: one turn per remaining window
    for i in range(5):
        turns.note_sent(now - 5 + i * 0.01)
    assert turns.spacing == pytest.approx(15 / 5, rel=0.01)


async def test_a_rejection_after_a_turn_slows_the_queue_down() -> None:
    for limit in (None, RateLimit(10, 10.0)):
        turns = Turns(limit)
        now = time.time()
        turns.note_sent(now - 1)
        turns.note_rejected(now + 1, rejections=1, now=now)
        before = turns.spacing
        assert before is not None
        turns.note_rejected(now + 1, rejections=2, now=now)
        assert turns.spacing is not None and turns.spacing > before


async def test_a_restarted_triggerer_waits_after_sends_it_did_not_see() -> None:
    """Polling triggers re-created after a restart report their sends; the first turn waits."""
    turns = Turns(RateLimit(2, 2.0))  # one a second
    sent = time.time()
    turns.note_sent(sent)
    granted = await _gather_turns(turns, [("a", sent)])
    assert granted["a"] >= sent + 1.0 - 0.01


async def test_waiting_ends_at_the_deadline() -> None:
    turns = Turns(RateLimit(1, 60.0))
    turns.note_rejected(time.time() + 60, rejections=1)
    started = time.monotonic()
    assert await turns.wait_turn("a", time.time(), time.time() + 0.3) is None
    assert time.monotonic() - started < 5
    assert turns.waiting == 0


async def test_one_queue_per_connection() -> None:
    a = turns_for("conn_a", RateLimit(5, 60.0))
    assert turns_for("conn_a", RateLimit(5, 60.0)) is a
    assert turns_for("conn_b", None) is not a
    assert turns_for("conn_a", RateLimit(10, 60.0)) is a and a.limit == RateLimit(10, 60.0)
