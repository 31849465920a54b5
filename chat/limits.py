"""Spend and capacity guards: a message rate per session, a token budget per day, a cap on streams."""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chat.errors import ChatError, ErrorKind

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0


def utc_today() -> dt.date:
    """Today's date in UTC: the budget's day."""
    return dt.datetime.now(dt.UTC).date()


class RateLimit:
    """At most `per_minute` messages in any 60 seconds; 0 turns the limit off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sent: deque[float] = deque()

    def admit(self) -> None:
        """Count one message, or raise ChatError if this one would go over the limit."""
        if not self.per_minute:
            return
        now = self._clock()
        while self._sent and now - self._sent[0] >= WINDOW_SECONDS:
            self._sent.popleft()
        if len(self._sent) >= self.per_minute:
            wait = max(1, math.ceil(WINDOW_SECONDS - (now - self._sent[0])))
            raise ChatError(
                ErrorKind.RATE_LIMITED,
                f"Slow down: this chat takes at most {self.per_minute} messages a minute. "
                f"Try again in {wait} seconds; nothing was sent.",
                per_minute=self.per_minute,
                retry_after=wait,
            )
        self._sent.append(now)


class TokenBudget:
    """Tokens the whole process may spend per UTC day, shared by every session; 0 turns it off."""

    def __init__(self, per_day: int, today: Callable[[], dt.date] = utc_today) -> None:
        self.per_day = per_day
        self._today = today
        self._day = today()
        self._spent = 0
        self._lock = threading.Lock()

    @property
    def spent(self) -> int:
        """Tokens counted so far today."""
        with self._lock:
            self._roll_over()
            return self._spent

    def check(self) -> None:
        """Raise ChatError once today's budget is used up."""
        if self.per_day and self.spent >= self.per_day:
            raise ChatError(
                ErrorKind.BUDGET_SPENT,
                f"This app has used its token budget for today ({self.per_day:,} tokens), so it "
                "is not sending more messages to Claude. It resets at midnight UTC.",
                per_day=self.per_day,
            )

    def charge(self, tokens: int) -> None:
        """Count tokens a reply used."""
        with self._lock:
            self._roll_over()
            self._spent += max(0, tokens)

    def _roll_over(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self._spent = today, 0


BUSY_MESSAGE = "The chat is busy: too many answers are streaming right now. Try again in a moment."


class StreamSlots:
    """At most `capacity` streams at once; one more is refused with a ChatError at once."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.in_use = 0
        self._lock = threading.Lock()  # sync UI frameworks may stream from several threads

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Take a slot for the duration of the block, or raise ChatError when none is free."""
        with self._lock:
            if self.in_use >= self.capacity:
                log.warning("refused a reply: all %d stream slots are in use", self.capacity)
                raise ChatError(ErrorKind.APP_BUSY, BUSY_MESSAGE, capacity=self.capacity)
            self.in_use += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_use -= 1
