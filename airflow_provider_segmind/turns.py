"""Turn-taking for the generations of one Segmind connection, inside the triggerer.

Workers share nothing, and pools cap how many tasks run, not how many requests a minute they
send. The triggerer is the one process every deferred task of a deployment passes through, so
the turns are handed out there: a task that must wait for the rate limit defers to a
``SegmindTurnTrigger``, which queues here; the queue hands out one turn at a time, in the order
the tasks first asked (a task sent back by a 429 keeps its place), spaced so that no more than
the limit is sent per window, and never before the moment a 429 named. The task then sends its
POST from a worker. Nothing here sends anything: a turn is only permission.

The limit is the connection's ``rate_limit`` when set. Otherwise it is learned: tasks send at
once, and when Segmind answers 429, the sends that got through before it (which the polling
triggers report here) give the window and the limit; a task rejected again after its turn
slows the queue down further.

State lives in memory, per event loop and connection. A restarted triggerer re-creates its
triggers from their kwargs: waiting tasks queue again with their original place, and polling
triggers report when their requests were sent, so the first turns after a restart respect
what was already sent. Several triggerers each keep their own queue; together they may send
more than the limit, and the 429s that follow are handled like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_segmind.connection import RateLimit

#: Sends remembered for learning a limit, and how far back.
_HISTORY = 1000
_HISTORY_SECONDS = 600.0
#: How much a queue slows down when a task is rejected again after its turn.
_SLOWDOWN = 1.5
#: Turns under a set limit are this much further apart than the limit allows.
_MARGIN = 1.05
#: How long a new queue with a set limit waits before its first turn, at most.
_STARTUP_GRACE = 2.0
#: The window assumed when a 429 comes before any send was seen.
_DEFAULT_WINDOW = 60.0


@dataclass(order=True)
class _Waiter:
    enqueued_at: float
    ticket: str
    granted: asyncio.Future[float] = field(compare=False)


class Turns:
    """The sends of one Segmind connection through this triggerer: who goes next, and when.

    :param limit: the connection's configured limit, or None to learn it from 429s.
    """

    def __init__(self, limit: RateLimit | None) -> None:
        self.limit = limit
        #: How much slower than the learned pace turns go, after rejections that followed a turn.
        self.slowdown = 1.0
        self.blocked_until = 0.0
        self.next_at = 0.0
        self.granted = 0
        self._sends: deque[float] = deque(maxlen=_HISTORY)
        #: The window Segmind named last: (moment of the 429, moment it reopens).
        self._window: tuple[float, float] | None = None
        self._waiters: list[_Waiter] = []
        self._changed = asyncio.Event()
        self._granter: asyncio.Task[None] | None = None
        if limit is not None:
            # A new queue (a fresh or a restarted triggerer) waits a moment before its first turn,
            # so polling triggers re-created beside it can report the sends of the current window.
            self.next_at = time.time() + min(limit.spacing, _STARTUP_GRACE)

    # -- what the triggers report ----------------------------------------------------------

    def note_sent(self, at: float) -> None:
        """A request of this connection was accepted at ``at`` (reported by its polling trigger).

        Before this queue has handed out a turn (a fresh triggerer, or one just restarted), a
        send it did not see still counts: the first turn waits a spacing after it.
        """
        self._sends.append(at)
        spacing = self.spacing
        if self.granted == 0 and spacing is not None:
            self.next_at = max(self.next_at, at + spacing)
        self._changed.set()

    def note_rejected(self, reset_at: float | None, *, rejections: int, now: float | None = None) -> None:
        """A task got a 429 whose window reopens at ``reset_at`` (None: Segmind did not say).

        :param rejections: how many 429s that task has had; more than one means it was
            rejected after a turn, so the turns come too fast.
        """
        now = time.time() if now is None else now
        if reset_at is not None and reset_at > self.blocked_until:
            self.blocked_until = reset_at
            self._window = (now, reset_at)
        elif self._window is None:
            self._window = (now, now + _DEFAULT_WINDOW)
        if rejections > 1:
            self.slowdown *= _SLOWDOWN
        self._changed.set()

    @property
    def spacing(self) -> float | None:
        """Seconds between two turns: the configured limit's, else the learned one (None before
        any 429: nothing to wait for)."""
        if self.limit is not None:
            # A little under the limit: sends leave workers with a jitter, and a fixed window
            # that catches one send early counts one too many.
            return self.limit.spacing * _MARGIN * self.slowdown
        learned = self._learned_spacing()
        return learned * self.slowdown if learned is not None else None

    def _learned_spacing(self) -> float | None:
        """The window over the sends that got through in it, from the last 429's window.

        The sends are those reported since the window before it closed; the window runs from
        the first of them to the moment Segmind named. Before any send is reported (their
        polling triggers may start after the 429 did), one turn per remaining window.
        """
        if self._window is None:
            return None
        rejected_at, reopens = self._window
        since = max(rejected_at - _HISTORY_SECONDS, 0.0)
        sent = [t for t in self._sends if since <= t <= rejected_at]
        if not sent:
            return max(reopens - rejected_at, 1.0)
        return max(reopens - min(sent), 1.0) / len(sent)

    # -- waiting for a turn ----------------------------------------------------------------

    async def wait_turn(self, ticket: str, enqueued_at: float, deadline: float) -> float | None:
        """Wait for this task's turn; the moment it was given, or None at ``deadline``."""
        waiter = _Waiter(enqueued_at, ticket, asyncio.get_running_loop().create_future())
        heapq.heappush(self._waiters, waiter)
        self._changed.set()
        if self._granter is None or self._granter.done():
            self._granter = asyncio.get_running_loop().create_task(self._grant())
        try:
            return await asyncio.wait_for(
                asyncio.shield(waiter.granted), timeout=max(0.0, deadline - time.time())
            )
        except asyncio.TimeoutError:
            return None
        finally:
            if not waiter.granted.done():
                waiter.granted.cancel()  # the granter skips it

    async def _grant(self) -> None:
        """Hand out turns, one at a time, while anyone waits."""
        while self._waiters:
            now = time.time()
            at = max(self.next_at, self.blocked_until)
            if now < at:
                self._changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=at - now)
                continue
            waiter = heapq.heappop(self._waiters)
            if waiter.granted.done():  # its trigger gave up or was cancelled
                continue
            waiter.granted.set_result(now)
            self.granted += 1
            spacing = self.spacing
            self.next_at = now + spacing if spacing is not None else now

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.granted.done())


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Turns]] = weakref.WeakKeyDictionary()


def turns_for(conn_id: str, limit: RateLimit | None) -> Turns:
    """The queue of ``conn_id`` in the running event loop (one per connection and loop)."""
    per_loop = _queues.setdefault(asyncio.get_running_loop(), {})
    queue = per_loop.get(conn_id)
    if queue is None:
        queue = per_loop[conn_id] = Turns(limit)
    elif queue.limit != limit:  # a changed setting takes effect at once, for those waiting too
        queue.limit = limit
    return queue
