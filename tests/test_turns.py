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
    turns: Turns,
    tickets: list[tuple[str, float]],
    deadline: float = 30,
    send_after: float | None = 0.05,
) -> dict[str, float]:
    """Every ticket waits for its turn; a granted one "sends" ``send_after`` seconds later and
    its polling trigger reports the send (None: nobody reports)."""

    async def one(ticket: str, enqueued_at: float) -> tuple[str, float | None]:
        granted = await turns.wait_turn(ticket, enqueued_at, time.time() + deadline)
        if granted is not None and send_after is not None:
            await asyncio.sleep(send_after)
            turns.note_sent(time.time(), ticket)
        return ticket, granted

    return {t: at for t, at in await asyncio.gather(*(one(t, e) for t, e in tickets)) if at is not None}


async def test_turns_come_in_order_and_keep_to_the_limit_in_every_window() -> None:
    turns = Turns(RateLimit(2, 0.5))
    now = time.time()
    tickets = [(f"t{i}", now + i * 0.001) for i in (3, 0, 5, 4, 1, 2)]  # asked in another order
    granted = await _gather_turns(turns, tickets)
    order = sorted(granted, key=granted.__getitem__)
    assert order == ["t0", "t1", "t2", "t3", "t4", "t5"]  # first come, first served
    times = sorted(granted.values())
    # No window of 0.5 s holds three sends (each is sent 0.05 s after its turn).
    assert all(times[i + 2] - times[i] >= 0.5 for i in range(len(times) - 2))
    # Turns within a window are spread, a tenth of 0.5 / 2 s apart at least.
    assert all(b - a >= 0.025 - 0.005 for a, b in itertools.pairwise(times))
    # The limit is used, not halved: two turns in the first window (after a new queue's grace).
    assert times[1] - now < 0.25 + 0.25
    assert turns.pending == 0


async def test_a_turn_holds_its_place_until_its_send_is_reported() -> None:
    """A worker takes seconds to start: the window counts from the send, not from the turn."""
    turns = Turns(RateLimit(1, 0.3))
    first = await _gather_turns(turns, [("a", time.time())], send_after=None)
    assert turns.pending == 1
    waiting = asyncio.ensure_future(turns.wait_turn("b", time.time(), time.time() + 30))
    await asyncio.sleep(0.8)  # far past a window after the turn: still no turn for b
    assert not waiting.done()
    sent = time.time()
    turns.note_sent(sent, "a")
    granted = await waiting
    assert granted is not None and granted >= sent + 0.3
    assert granted - first["a"] >= 0.8


async def test_a_turn_never_reported_frees_its_place_in_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its task died before sending, or sent through another triggerer: the queue goes on."""
    import airflow_provider_segmind.turns as turns_module

    monkeypatch.setattr(turns_module, "_PENDING_MIN", 0.5)
    turns = Turns(RateLimit(1, 0.1))
    granted = await _gather_turns(turns, [("a", time.time()), ("b", time.time() + 0.001)], send_after=None)
    assert granted["b"] - granted["a"] >= 0.5 - 0.01


async def test_a_rejected_turn_frees_its_place() -> None:
    turns = Turns(RateLimit(1, 0.2))
    await _gather_turns(turns, [("a", time.time())], send_after=None)
    assert turns.pending == 1
    turns.note_rejected(None, rejections=2, ticket="a")  # a 429 after its turn
    assert turns.pending == 0


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
    assert turns.budget == RateLimit(5, pytest.approx(3.0 * 1.02))  # a 3 s window, 5 sends
    granted = await _gather_turns(turns, [(f"t{i}", now + i) for i in range(6)])
    times = sorted(granted.values())
    assert times[0] >= now + 1.5
    assert times[5] - times[0] >= 3.0  # the sixth waits for the first's place to free


async def test_sends_reported_after_the_429_still_teach_the_limit() -> None:
    """Polling triggers of the accepted tasks may start after the rejected task's turn trigger."""
    turns = Turns(None)
    now = time.time()
    turns.note_rejected(now + 10, rejections=1, now=now)
    assert turns.budget == RateLimit(1, pytest.approx(10 * 1.02))  # nothing seen: one per remaining window
    for i in range(5):
        turns.note_sent(now - 5 + i * 0.01)
    assert turns.budget == RateLimit(5, pytest.approx(15 * 1.02))


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


async def test_a_restarted_triggerer_counts_sends_it_did_not_see() -> None:
    """Polling triggers re-created after a restart report their sends; the window holds them."""
    turns = Turns(RateLimit(2, 1.0))
    sent = time.time()
    turns.note_sent(sent)
    turns.note_sent(sent)
    granted = await _gather_turns(turns, [("a", sent)])
    assert granted["a"] >= sent + 1.0


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


async def test_the_limit_is_learned_from_the_last_window_only() -> None:
    """Sends of earlier windows do not stretch the learned window (10 per 31 s is not 5 per 15 s)."""
    turns = Turns(None)
    now = time.time()
    for i in range(5):
        turns.note_sent(now - 31 + i * 0.1)  # window 1 opened 31 s ago
    turns.note_rejected(now - 30, rejections=1, now=now - 31 + 1)  # ... and reopened 30 s ago
    for i in range(5):
        turns.note_sent(now - 15 + i * 0.1)  # window 2 opened 15 s ago
    turns.note_rejected(now + 0.0001, rejections=1, now=now - 14)
    assert turns.budget == RateLimit(5, pytest.approx(15 * 1.02, rel=0.01))


async def test_a_waiter_not_yet_eligible_lets_the_next_one_go() -> None:
    turns = Turns(RateLimit(100, 1.0))
    turns._not_before = 0.0  # no start-up grace here
    now = time.time()
    late = asyncio.ensure_future(turns.wait_turn("first-asked", now - 1, now + 30, not_before=now + 0.5))
    early = asyncio.ensure_future(turns.wait_turn("second-asked", now, now + 30))
    early_at, late_at = await early, await late
    assert early_at is not None and late_at is not None
    assert early_at < now + 0.3 and late_at >= now + 0.5


@pytest.mark.turn_dwell
async def test_a_turn_trigger_dwells_before_its_turn(segmind_connection: object) -> None:
    """Against Airflow's resume race: even with the queue free, no turn within min_wait."""
    from airflow_provider_segmind.triggers.segmind import SegmindTurnTrigger

    assert SegmindTurnTrigger.min_wait == 5.0
    trigger = SegmindTurnTrigger(
        segmind_conn_id="segmind_default", ticket="t", enqueued_at=time.time(), deadline=time.time() + 60
    )
    trigger.min_wait = 0.4
    started = time.time()
    event = await anext(aiter(trigger.run()))
    assert event.payload["status"] == "turn"
    assert event.payload["granted_at"] >= started + 0.4


async def test_a_turn_comes_ahead_of_its_place_by_half_the_shortest_start_up() -> None:
    """Workers take a while from turn to send; a turn may come that much earlier (halved), and
    the sends still keep to the limit."""
    turns = Turns(RateLimit(1, 0.5))
    turns._not_before = 0.0
    now = time.time()
    granted = await _gather_turns(turns, [(f"t{i}", now + i * 0.001) for i in range(6)], send_after=0.3)
    times = sorted(granted.values())
    sends = [t + 0.3 for t in times]
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(sends))  # never two sends in a window
    budget = turns.budget
    assert budget is not None and turns.lead(budget) == pytest.approx(0.15, abs=0.03)
    # The first turns wait for the place to free; once three start-ups were seen, turns come early.
    assert times[1] - sends[0] >= 0.51 - 0.01
    assert times[5] - sends[4] < 0.51 - 0.1


async def test_many_rejections_in_one_window_slow_the_queue_once_and_boundedly() -> None:
    """Seen with 60 tasks: rejections after turns, multiplied per task, stalled a queue for
    four minutes. One slowdown per Segmind window, and a bounded one."""
    turns = Turns(RateLimit(10, 10.0))
    now = time.time()
    for _ in range(20):
        turns.note_rejected(now + 5, rejections=2, now=now)
    assert turns.slowdown == pytest.approx(1.5)
    for window in range(1, 10):
        turns.note_rejected(now + 5 + 10 * window, rejections=2, now=now + 10 * window)
    assert turns.slowdown == pytest.approx(2.25)


async def test_a_slowdown_wears_off() -> None:
    turns = Turns(RateLimit(10, 0.2))
    turns.note_rejected(time.time() + 0.1, rejections=2)
    assert turns.budget == RateLimit(10, pytest.approx(0.2 * 1.02 * 1.5))
    await asyncio.sleep(3 * 0.2 * 1.5 + 0.1)  # three (slowed) windows without another rejection
    assert turns.budget == RateLimit(10, pytest.approx(0.2 * 1.02))
