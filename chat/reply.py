"""One streamed answer: iterate it for deltas as they arrive, then read the whole from its exchange.

The SDK's message snapshot (`current_message_snapshot`) is the one account of what arrived;
the reply reads it and, when the stream ends, writes it into the exchange record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from chat.blocks import block_text
from chat.client import ChatClient
from chat.context import check_fits
from chat.errors import ChatError, ended_early, explain
from chat.exchange import Exchange, Status, Timings
from chat.limits import Caller, Quota, Reservation, StreamSlots, worst_case_tokens
from chat.usage import tokens_used


@dataclass(frozen=True)
class TextDelta:
    """Answer text that just arrived."""

    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    """Thinking text that just arrived."""

    text: str


@dataclass(frozen=True)
class BlockDelta:
    """Any other block changed: it started, its input grew, it got a citation, or it ended."""

    index: int
    event: str  # "start", "delta" or "stop"


Delta = TextDelta | ThinkingDelta | BlockDelta


@dataclass(frozen=True)
class Upstream:
    """What a reply needs of the service: the client, the stream cap, the quota, how to explain failures."""

    client: ChatClient
    slots: StreamSlots | None = None
    read_timeout: float | None = None
    retries: int = 2
    quota: Quota | None = None


class Reply:
    """A streamed answer. Use as `async with reply: async for delta in reply: ...`.

    Leaving the `async with` early (Stop, a closed generator, a cancelled task) closes the
    HTTP stream at once, so the API stops generating. The exchange is complete, stopped or
    failed when the reply ends, and `on_end` is called once with it. Before anything is sent,
    the caller's message is counted against its rates and the request's worst case reserved in
    the budgets; the reservation settles on the API's count when the reply ends. With
    `count_within`, the request is near that context window: it is counted first (between the
    two), and one that does not fit is refused, never sent nor charged to a budget.
    """

    def __init__(
        self,
        upstream: Upstream,
        request: dict[str, Any],
        exchange: Exchange,
        on_end: Callable[[Reply], None] = lambda reply: None,
        caller: Caller | None = None,
        count_within: int | None = None,
    ) -> None:
        # The whole body to send, messages and their base64 files included: dropped once sent,
        # so an ended reply (a conversation keeps its last) holds none of its files.
        self._request: dict[str, Any] | None = request
        self.model = str(request.get("model", ""))
        self.exchange = exchange
        self.caller = caller or Caller()
        self.count_within = count_within
        self.message: Any = None  # the SDK's final message, once complete
        self._upstream = upstream
        self._on_end = on_end
        self._stream: Any = None
        self._started = time.monotonic()
        self._first_token: float | None = None
        self._answer_started: float | None = None
        self._done = asyncio.Event()
        self._events: AsyncIterator[Delta] | None = None
        self._reader: asyncio.Task[Any] | None = None  # the task iterating the events

    async def __aenter__(self) -> Reply:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Delta]:
        if self._events is None:
            self._events = self._run()
        return self._events

    @property
    def status(self) -> Status:
        """Where the answer is in its life."""
        return self.exchange.status

    @property
    def ended(self) -> bool:
        """True once the reply is complete, stopped or failed."""
        return self.exchange.status.ended

    @property
    def error(self) -> ChatError | None:
        """Why the reply failed, if it did."""
        return self.exchange.error

    @property
    def content(self) -> list[dict[str, Any]]:
        """The content blocks so far, as plain data (the SDK's snapshot while streaming)."""
        if self.ended:
            return self.exchange.content
        snapshot = self._snapshot()
        return [block_dict(block) for block in snapshot.content] if snapshot is not None else []

    @property
    def text(self) -> str:
        """The answer's text so far."""
        return block_text(self.content, "text")

    @property
    def thinking(self) -> str:
        """The thinking so far."""
        return block_text(self.content, "thinking")

    @property
    def timings(self) -> Timings:
        """Seconds from the request to the first token, the first text and the end (so far)."""
        return self.exchange.timings if self.ended else self._timings(None)

    async def aclose(self) -> None:
        """Stop the reply: close the upstream stream and keep what arrived."""
        if self._events is not None:
            reader = self._reader
            if getattr(self._events, "ag_running", False) and reader not in (None, asyncio.current_task()):
                # Another task (a pacing pump) is mid-read: stop that read, or aclose() cannot run.
                reader.cancel()  # type: ignore[union-attr]
                await asyncio.wait({reader})  # type: ignore[arg-type]
            await self._events.aclose()  # type: ignore[attr-defined]
        if not self.ended:
            self._finish(Status.STOPPED)

    async def wait_until_ended(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) for the reply to end; return whether it did."""
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def collect(self) -> str:
        """Drain the reply and return its whole text."""
        async for _ in self:
            pass
        return self.text

    async def _run(self) -> AsyncIterator[Delta]:
        self._reader = asyncio.current_task()
        self.exchange.status = Status.STREAMING
        upstream = self._upstream
        reservation: Reservation | None = None
        try:
            if upstream.quota is not None:
                await upstream.quota.admit(self.caller)
            if self.count_within is not None:
                await check_fits(upstream.client, self._request or {}, self.count_within)
            if upstream.quota is not None:
                reservation = await upstream.quota.reserve(
                    self.caller, worst_case_tokens(self._request or {})
                )
            with self._slot():
                request, self._request = self._request or {}, None
                async with upstream.client.messages.stream(**request) as stream:
                    self._stream = stream
                    async for event in stream:
                        delta = self._take(event)
                        if delta is not None:
                            yield delta
                    self.message = await stream.get_final_message()
            if self.message.stop_reason is None:
                raise ended_early()
        except Exception as exc:
            error = explain(
                exc,
                model=self.model or None,
                read_timeout=upstream.read_timeout,
                retries=upstream.retries,
            )
            if not self.ended:
                self._finish(Status.FAILED, error)
            raise error from exc
        finally:
            if not self.ended:
                done = self.message is not None and self.message.stop_reason is not None
                self._finish(Status.COMPLETE if done else Status.STOPPED)
            if reservation is not None and upstream.quota is not None:
                await upstream.quota.settle(reservation, tokens_used(self.exchange))

    def _slot(self) -> AbstractContextManager[None]:
        slots = self._upstream.slots
        return nullcontext() if slots is None else slots.hold()

    def _take(self, event: Any) -> Delta | None:
        kind = event.type
        if kind == "text":
            delta: Delta = TextDelta(event.text)
            if self._answer_started is None:
                self._answer_started = time.monotonic()
        elif kind == "thinking":
            delta = ThinkingDelta(event.thinking)
        elif kind in ("content_block_start", "content_block_stop"):
            block_type = getattr(event.content_block, "type", "")
            if block_type in ("text", "thinking"):
                return None
            delta = BlockDelta(event.index, kind.removeprefix("content_block_"))
        elif kind in ("input_json", "citation"):
            delta = BlockDelta(len(self._snapshot().content) - 1, "delta")
        else:
            return None
        if self._first_token is None:
            self._first_token = time.monotonic()
        return delta

    def _snapshot(self) -> Any:
        stream = self._stream
        return None if stream is None else stream._current_snapshot_or_none()

    def _timings(self, finished: float | None) -> Timings:
        def since(moment: float | None) -> float | None:
            return None if moment is None else round(max(moment - self._started, 0.0), 3)

        return Timings(since(self._first_token), since(self._answer_started), since(finished))

    def _finish(self, status: Status, error: ChatError | None = None) -> None:
        exchange = self.exchange
        final = self.message if status is Status.COMPLETE else self._snapshot()
        exchange.response = message_dict(final) if final is not None else None
        exchange.status = status
        exchange.error = error
        exchange.timings = self._timings(time.monotonic())
        # What arrived is in the exchange now. The SDK's stream holds the HTTP request, files and
        # all; the task that read it holds the context it was started in (a web request's, say).
        self._stream = self._request = self._reader = None
        try:
            self._on_end(self)
        finally:
            self._done.set()


def message_dict(message: Any) -> dict[str, Any]:
    """An SDK message as plain JSON data, each block as it came (unknown types included)."""
    data = message.to_dict(mode="json", exclude_none=True, warnings=False)
    data["content"] = [block_dict(block) for block in message.content]
    return data


def block_dict(block: Any) -> dict[str, Any]:
    """One SDK content block as plain JSON data."""
    data = block.to_dict(mode="json", exclude_none=True, warnings=False)
    data.pop("parsed_output", None)
    return data
