"""Spend and capacity guards: message rates, daily token budgets, and a cap on streams at once.

The rates and budgets count in `Counters`: in memory for one process (`MemoryCounters`), or in
the conversation store (`chat.store.Store`), where they outlive a restart and every process
shares them. `Quota` holds the rules and the wording; the counters only count, atomically.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from chat.attachments import pdf_page_count
from chat.errors import ChatError, ErrorKind

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
APP_SCOPE = "app"  # the budget every caller shares


def utc_today() -> dt.date:
    """Today's date in UTC: the budget's day."""
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class Caller:
    """Who sends a message: the owner of the conversation (a visitor or a user), from which address."""

    owner: str = "local"
    address: str | None = None


@dataclass(frozen=True)
class Limit:
    """At most `limit` in the scope (a count of messages a minute, or of tokens a day)."""

    scope: str
    limit: int


@dataclass(frozen=True)
class OverLimit:
    """The scope a count would take past its limit, and how far it had come."""

    scope: str
    used: float  # tokens spent today, or the time of the oldest message in the window


@dataclass(frozen=True)
class Reservation:
    """Tokens held for one request in these scopes on this day, until the request settles."""

    day: str
    scopes: tuple[str, ...]
    tokens: int


class Counters(Protocol):
    """Where the rates and budgets count; each call is atomic across every caller it serves."""

    async def take_events(self, limits: Sequence[Limit], now: float) -> OverLimit | None:
        """Count one message in each scope, unless one already has its limit in the last minute:
        then count none, and return that scope with the time of its oldest message."""
        ...

    async def add_tokens(self, day: str, limits: Sequence[Limit], tokens: int) -> OverLimit | None:
        """Add tokens to each scope's day, unless that takes one past its limit: then add none,
        and return that scope with what it had spent."""
        ...

    async def adjust_tokens(self, day: str, scopes: Sequence[str], change: int) -> None:
        """Add `change` (negative to give back) to each scope's day, whatever the limits."""
        ...


class MemoryCounters:
    """Counters in this process's memory: gone with it, and not shared with another process."""

    def __init__(self) -> None:
        self._events: dict[str, deque[float]] = {}
        self._tokens: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()  # a sync front end may count from several threads

    async def take_events(self, limits: Sequence[Limit], now: float) -> OverLimit | None:
        """See `Counters.take_events`."""
        with self._lock:
            for limit in limits:
                events = self._events.get(limit.scope)
                while events and now - events[0] >= WINDOW_SECONDS:
                    events.popleft()
                if events is not None and not events:
                    del self._events[limit.scope]  # an idle scope costs no memory
                elif events is not None and len(events) >= limit.limit:
                    return OverLimit(limit.scope, events[0])
            for limit in limits:
                self._events.setdefault(limit.scope, deque()).append(now)
            return None

    async def add_tokens(self, day: str, limits: Sequence[Limit], tokens: int) -> OverLimit | None:
        """See `Counters.add_tokens`."""
        with self._lock:
            for key in [key for key in self._tokens if key[1] != day]:
                del self._tokens[key]  # an earlier day's counts are never read again
            for limit in limits:
                spent = self._tokens.get((limit.scope, day), 0)
                if spent + tokens > limit.limit:
                    return OverLimit(limit.scope, spent)
            for limit in limits:
                self._tokens[(limit.scope, day)] = self._tokens.get((limit.scope, day), 0) + tokens
            return None

    async def adjust_tokens(self, day: str, scopes: Sequence[str], change: int) -> None:
        """See `Counters.adjust_tokens`."""
        with self._lock:
            for scope in scopes:
                self._tokens[(scope, day)] = max(0, self._tokens.get((scope, day), 0) + change)

    def spent(self, scope: str, day: str) -> int:
        """Tokens counted in a scope on a day."""
        with self._lock:
            return self._tokens.get((scope, day), 0)


@dataclass(frozen=True)
class QuotaRules:
    """The limits a `Quota` applies; 0 turns one off."""

    per_minute: int = 20  # messages a minute, per owner
    per_address: int = 120  # messages a minute, per client address
    daily_tokens: int = 2_000_000  # tokens a day, the whole app
    owner_daily_tokens: int = 0  # tokens a day, per owner


class Quota:
    """Message rates per owner and per address, and token budgets per day for the app and per owner.

    A request reserves its worst case before it is sent and settles on what it cost, so answers
    streaming at once can never together spend past a budget.
    """

    def __init__(
        self,
        rules: QuotaRules,
        counters: Counters | None = None,
        *,
        clock: Callable[[], float] = time.time,
        today: Callable[[], dt.date] = utc_today,
    ) -> None:
        self.rules = rules
        self.counters: Counters = counters if counters is not None else MemoryCounters()
        self._clock = clock
        self._today = today

    async def admit(self, caller: Caller) -> None:
        """Count one message against the caller's rates, or raise ChatError (RATE_LIMITED)."""
        rules, limits = self.rules, []
        if rules.per_minute:
            limits.append(Limit(_owner_scope(caller.owner), rules.per_minute))
        if rules.per_address and caller.address:
            limits.append(Limit("address:" + caller.address, rules.per_address))
        if not limits:
            return
        now = self._clock()
        over = await self.counters.take_events(limits, now)
        if over is None:
            return
        wait = max(1, math.ceil(WINDOW_SECONDS - (now - over.used)))
        if over.scope.startswith("address:"):
            raise ChatError(
                ErrorKind.RATE_LIMITED,
                f"Slow down: your network address has sent {rules.per_address} messages in the last "
                f"minute, the most this app takes from one address. Try again in {wait} seconds; "
                "nothing was sent.",
                per_minute=rules.per_address,
                retry_after=wait,
                scope="address",
            )
        raise ChatError(
            ErrorKind.RATE_LIMITED,
            f"Slow down: you can send at most {rules.per_minute} messages a minute. "
            f"Try again in {wait} seconds; nothing was sent.",
            per_minute=rules.per_minute,
            retry_after=wait,
            scope="owner",
        )

    async def reserve(self, caller: Caller, tokens: int) -> Reservation:
        """Hold `tokens` (a request's worst case) in today's budgets, or raise ChatError (BUDGET_SPENT)."""
        rules, day = self.rules, self._today().isoformat()
        limits = []
        if rules.daily_tokens:
            limits.append(Limit(APP_SCOPE, rules.daily_tokens))
        if rules.owner_daily_tokens:
            limits.append(Limit(_owner_scope(caller.owner), rules.owner_daily_tokens))
        over = await self.counters.add_tokens(day, limits, tokens) if limits else None
        if over is None:
            return Reservation(day, tuple(limit.scope for limit in limits), tokens)
        per_day = next(limit.limit for limit in limits if limit.scope == over.scope)
        whose = "this app's budget" if over.scope == APP_SCOPE else "your own budget"
        left = max(0, per_day - int(over.used))
        if left == 0:
            opening = f"{whose[0].upper()}{whose[1:]} for today ({per_day:,} tokens) is used up"
        else:
            opening = (
                f"This message could cost up to {tokens:,} tokens, more than is left of {whose} "
                f"for today ({left:,} of {per_day:,} tokens); lower Max tokens in Settings, or wait"
            )
        raise ChatError(
            ErrorKind.BUDGET_SPENT,
            f"{opening}. It resets at midnight UTC; nothing was sent.",
            per_day=per_day,
            left=left,
            needed=tokens,
            scope="app" if over.scope == APP_SCOPE else "owner",
        )

    async def settle(self, reservation: Reservation, tokens: int) -> None:
        """Replace a reservation by what the request really cost."""
        change = max(0, tokens) - reservation.tokens
        if reservation.scopes and change:
            await self.counters.adjust_tokens(reservation.day, reservation.scopes, change)


def _owner_scope(owner: str) -> str:
    return "owner:" + owner


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


# A request's worst case, reserved before it is sent (the API's count replaces it at the end):
# max_tokens of output, plus an input bound well above what Claude's tokenizer counts.
TEXT_BYTES_PER_TOKEN_AT_LEAST = 2  # English runs about 4 characters a token, CJK about 2.5 bytes
IMAGE_TOKENS_AT_MOST = 4_800  # the largest image current models read (about 2576 px on the long edge)
PDF_PAGE_TOKENS_AT_MOST = 8_000  # a page's text plus its picture


def worst_case_tokens(request: Mapping[str, Any]) -> int:
    """The most tokens a Messages API request can cost: its max_tokens plus a bound on its input."""
    files = 0
    text_bytes = 0
    for message in request.get("messages", []):
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list):
            text_bytes += len(str(content).encode("utf-8"))
            continue
        for block in content:
            kind = block.get("type") if isinstance(block, Mapping) else None
            if kind == "image":
                files += IMAGE_TOKENS_AT_MOST
            elif kind == "document":
                data = str(block.get("source", {}).get("data", ""))
                pages = pdf_page_count(_decoded(data)) or 1
                files += pages * PDF_PAGE_TOKENS_AT_MOST
            else:
                text_bytes += len(json.dumps(block, ensure_ascii=False).encode("utf-8"))
    rest = {key: value for key, value in request.items() if key != "messages"}
    text_bytes += len(json.dumps(rest, ensure_ascii=False, default=str).encode("utf-8"))
    return int(request.get("max_tokens", 0)) + files + math.ceil(text_bytes / TEXT_BYTES_PER_TOKEN_AT_LEAST)


def _decoded(data: str) -> bytes:
    try:
        return base64.b64decode(data)
    except (ValueError, binascii.Error):
        return b""
