"""Turn-taking for the generations of one Segmind connection, inside the triggerer.

Workers share nothing, and pools cap how many tasks run, not how many requests a minute they
send. The triggerer is the one process every deferred task of a deployment passes through, so
the turns are handed out there: a task that must wait for the rate limit defers to a
``SegmindTurnTrigger``, which queues here; the queue hands out turns in the order the tasks
first asked (a task sent back by a 429 keeps its place), never before the moment a 429 named,
and never more than the limit within one window. The task then sends its POST from a worker.
Nothing here sends anything: a turn is only permission.

The window is counted on sends, not on turns. A turn is "pending" until the polling trigger of
its request reports when the POST was really sent (a worker takes a few seconds to start); it
holds its place in the window until then. A window's places free ``seconds`` (and a 2 % margin)
after each send, so a send can never land inside the window of the ``requests``-th send before
it, whatever the workers' start-up jitter: the limit holds for fixed windows (Segmind's reset
moment), sliding windows and token buckets alike. Turns within a window are spread a little
(a tenth of ``seconds / requests`` apart) so that a window that reopens does not start all its
workers in the same instant. Once a few turns have shown how long a worker takes from its turn
to its send, a turn comes up to half of the shortest such time before its place frees (at most a
quarter of the window): its send still lands after the place freed, and the windows do not each
lose a worker's start-up.

The limit is the connection's ``rate_limit`` when set. Otherwise it is learned: tasks send at
once, and when Segmind answers 429, the sends that got through before it (which the polling
triggers report here) give the window and the limit; a task rejected again after its turn
makes the queue's windows longer.

State lives in memory, per event loop and connection. A restarted triggerer re-creates its
triggers from their kwargs: waiting tasks queue again with their original place, and polling
triggers report when their requests were sent, so the first turns after a restart respect
what was already sent (a new queue waits a moment for those reports). Several triggerers each
keep their own queue; together they may send more than the limit, and the 429s that follow are
handled like any other.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
import weakref
from collections import deque
from dataclasses import dataclass, field

from airflow_provider_segmind.connection import RateLimit

#: Sends remembered for learning a limit, and how far back.
_HISTORY = 1000
_HISTORY_SECONDS = 600.0
#: How much longer a queue's window gets when tasks are rejected again after their turns (once
#: per Segmind window, however many were rejected in it), at most in all, and for how many
#: windows after the last such rejection. A rejection after a turn may also mean that sends this
#: queue cannot see (tasks sending without a turn, another triggerer) took the window's places,
#: so the slowdown is bounded and wears off.
_SLOWDOWN = 1.5
_MAX_SLOWDOWN = 2.25
_SLOWDOWN_WINDOWS = 3.0
#: A window's places free this much later than the limit says. A send is recorded when its answer
#: came, after Segmind counted it, so this covers only a window a little longer than stated.
_MARGIN = 1.02
#: Turns within a window are at least this fraction of ``seconds / requests`` apart.
_SPREAD = 0.1
#: How long a new queue with a set limit waits before its first turn, at most.
_STARTUP_GRACE = 2.0
#: The window assumed when a 429 comes before any send was seen.
_DEFAULT_WINDOW = 60.0
#: Turns whose grant-to-send time is remembered, and how much of the shortest one a turn may be
#: given ahead of the moment its place frees (never more than a quarter of the window).
_LATENCIES = 20
_LEAD = 0.5
#: A turn whose send is never reported (its task died, or Segmind rejected it) holds its place
#: this many windows, at least ``_PENDING_MIN`` seconds.
_PENDING_WINDOWS = 2.0
_PENDING_MIN = 30.0


@dataclass(order=True)
class _Waiter:
    enqueued_at: float
    ticket: str
    granted: asyncio.Future[float] = field(compare=False)
    #: No turn before this moment (see ``wait_turn``'s ``not_before``).
    eligible_at: float = field(default=0.0, compare=False)


class Turns:
    """The sends of one Segmind connection through this triggerer: who goes next, and when.

    :param limit: the connection's configured limit, or None to learn it from 429s.
    """

    def __init__(self, limit: RateLimit | None) -> None:
        self.limit = limit
        #: How much longer than the limit's the windows are, after rejections that followed a turn.
        self.slowdown = 1.0
        self.blocked_until = 0.0
        self.granted = 0
        self.last_grant = 0.0
        #: Reported sends (Unix seconds), in the order reported.
        self._sends: deque[float] = deque(maxlen=_HISTORY)
        #: Turns given whose send is not reported yet: ticket -> when the turn was given.
        self._pending: dict[str, float] = {}
        #: Seconds from a turn to its send (a worker's start-up), for the last few turns.
        self._latencies: deque[float] = deque(maxlen=_LATENCIES)
        #: The window Segmind named last: (moment of the 429, moment it reopens).
        self._window: tuple[float, float] | None = None
        #: When the window before that one reopened: the last window's sends came after it.
        self._window_opened = 0.0
        #: The window whose rejections slowed the queue down last, and until when that holds.
        self._slowed_for: tuple[float, float] | None = None
        self._slow_until = 0.0
        self._waiters: list[_Waiter] = []
        self._changed = asyncio.Event()
        self._granter: asyncio.Task[None] | None = None
        self._not_before = 0.0
        if limit is not None:
            # A new queue (a fresh or a restarted triggerer) waits a moment before its first turn,
            # so polling triggers re-created beside it can report the sends of the current window.
            self._not_before = time.time() + min(limit.spacing, _STARTUP_GRACE)

    # -- what the triggers report ----------------------------------------------------------

    def note_sent(self, at: float, ticket: str | None = None) -> None:
        """A request of this connection was accepted at ``at`` (reported by its polling trigger).

        :param ticket: the turn it was sent on, if it had one: that turn is no longer pending.
        """
        if ticket is not None:
            granted_at = self._pending.pop(ticket, None)
            if granted_at is not None and at > granted_at:
                self._latencies.append(at - granted_at)
        self._sends.append(at)
        self._changed.set()

    def note_rejected(
        self,
        reset_at: float | None,
        *,
        rejections: int,
        ticket: str | None = None,
        now: float | None = None,
    ) -> None:
        """A task got a 429 whose window reopens at ``reset_at`` (None: Segmind did not say).

        :param rejections: how many 429s that task has had; more than one means it was
            rejected after a turn, so the turns come too fast.
        :param ticket: the task; a turn it was given is no longer pending (its send was refused).
        """
        now = time.time() if now is None else now
        if ticket is not None:
            self._pending.pop(ticket, None)
        if reset_at is not None and reset_at > self.blocked_until:
            if self._window is not None and self._window[1] <= now:
                self._window_opened = self._window[1]  # a new window: the last one reopened then
            self.blocked_until = reset_at
            self._window = (now, reset_at)
        elif self._window is None:
            self._window = (now, now + _DEFAULT_WINDOW)
        if rejections > 1 and self._slowed_for != self._window:
            if now >= self._slow_until:
                self.slowdown = 1.0  # the last slowdown wore off
            self.slowdown = min(self.slowdown * _SLOWDOWN, _MAX_SLOWDOWN)
            self._slowed_for = self._window
            base = self.limit.seconds if self.limit is not None else self._window[1] - self._window[0]
            self._slow_until = now + _SLOWDOWN_WINDOWS * max(base, 0.1) * self.slowdown
        self._changed.set()

    # -- the limit in force ----------------------------------------------------------------

    @property
    def budget(self) -> RateLimit | None:
        """The configured limit, else the learned one (None before any 429: no need to wait),
        with the margin and any slowdown applied to its window."""
        base = self.limit if self.limit is not None else self._learned()
        if base is None:
            return None
        slowdown = self.slowdown if time.time() < self._slow_until else 1.0
        return RateLimit(base.requests, base.seconds * _MARGIN * slowdown)

    @property
    def spacing(self) -> float | None:
        """The average seconds between two sends under the budget (None: no limit known)."""
        budget = self.budget
        return budget.spacing if budget is not None else None

    def _learned(self) -> RateLimit | None:
        """The sends that got through in the window of the last 429, over that window.

        The sends are those reported after the window before it reopened (and within
        ``_HISTORY_SECONDS``) up to the 429; the window runs from the first of them to the moment
        Segmind named. Before any send is reported (their polling triggers may start after the
        429 did), one send per remaining window.
        """
        if self._window is None:
            return None
        rejected_at, reopens = self._window
        since = max(rejected_at - _HISTORY_SECONDS, self._window_opened, 0.0)
        sent = [t for t in self._sends if since <= t <= rejected_at]
        if not sent:
            return RateLimit(1, max(reopens - rejected_at, 1.0))
        return RateLimit(len(sent), max(reopens - min(sent), 1.0))

    def next_turn_at(self, now: float) -> float:
        """The earliest moment the next turn may be given, as far as is known now."""
        at = max(self.blocked_until, self._not_before)
        budget = self.budget
        if budget is None:
            return at
        at = max(at, self.last_grant + _SPREAD * budget.spacing)
        hold = max(_PENDING_WINDOWS * budget.seconds, _PENDING_MIN)
        for ticket, granted_at in list(self._pending.items()):
            if granted_at + hold <= now:
                del self._pending[ticket]  # never sent, or sent where we cannot see it
        # Each place in the window is taken until ``seconds`` after its send; a pending turn's
        # send is not known yet, so its place is taken until it is reported (or given up). A
        # turn may come a little before a place frees: its worker needs at least the shortest
        # start-up seen lately before it sends, and is given half of that ahead.
        lead = self.lead(budget)
        frees_at = sorted(
            [s + budget.seconds - lead for s in self._sends if s + budget.seconds - lead > now]
            + [granted_at + hold for granted_at in self._pending.values()]
        )
        excess = len(frees_at) - budget.requests
        if excess >= 0:
            at = max(at, frees_at[excess])
        return at

    def lead(self, budget: RateLimit) -> float:
        """How long before a place frees a turn may be given: half the shortest of the last
        turns' start-ups (none before three were seen), at most a quarter of the window."""
        if len(self._latencies) < 3:
            return 0.0
        return min(_LEAD * min(self._latencies), 0.25 * budget.seconds)

    # -- waiting for a turn ----------------------------------------------------------------

    async def wait_turn(
        self, ticket: str, enqueued_at: float, deadline: float, not_before: float = 0.0
    ) -> float | None:
        """Wait for this task's turn; the moment it was given, or None at ``deadline``.

        :param not_before: no turn before this moment; later waiters that may go take the turns
            meanwhile, in their order.
        """
        waiter = _Waiter(enqueued_at, ticket, asyncio.get_running_loop().create_future(), not_before)
        bisect.insort(self._waiters, waiter)
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
            self._waiters = [w for w in self._waiters if not w.granted.done()]  # gave up, cancelled
            if not self._waiters:
                break
            now = time.time()
            waiter = next((w for w in self._waiters if w.eligible_at <= now), None)
            at = self.next_turn_at(now)
            if waiter is None or now < at:
                if waiter is None:
                    at = max(at, min(w.eligible_at for w in self._waiters))
                self._changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=max(at - now, 0.0))
                continue
            self._waiters.remove(waiter)
            waiter.granted.set_result(now)
            self.granted += 1
            self.last_grant = now
            if self.budget is not None:
                self._pending[waiter.ticket] = now

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.granted.done())

    @property
    def pending(self) -> int:
        """Turns given whose send is not reported yet."""
        return len(self._pending)


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
