"""One streamed answer: iterate it for deltas as they arrive, then read the whole."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from anthropic.types import Message

from chat.client import ChatClient
from chat.config import Settings
from chat.errors import ChatError, explain
from chat.limits import StreamSlots, estimate_tokens


class ReplyStatus(enum.Enum):
    """Where a reply is in its life."""

    PENDING = "pending"
    STREAMING = "streaming"
    COMPLETE = "complete"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class TextDelta:
    """Answer text that just arrived."""

    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    """Thinking text that just arrived."""

    text: str


Delta = TextDelta | ThinkingDelta


class Reply:
    """A streamed answer. Use as `async with reply: async for delta in reply: ...`.

    Leaving the `async with` early (Stop, a closed generator, a cancelled task) closes the
    HTTP stream at once, so the API stops generating.
    """

    def __init__(
        self,
        client: ChatClient,
        request: dict[str, Any],
        on_done: Callable[[Reply], None],
        settings: Settings | None = None,
        slots: StreamSlots | None = None,
    ) -> None:
        self.request = request
        self.text = ""
        self.thinking = ""
        self.message: Message | None = None
        self.status = ReplyStatus.PENDING
        self.error: ChatError | None = None
        self.started_at = time.monotonic()
        self.first_token_at: float | None = None
        self.answer_started_at: float | None = None  # the first text delta: thinking ends here
        self.finished_at: float | None = None
        self.started_usage: Any = None  # usage from message_start: input and cache tokens, known at once
        self._done = asyncio.Event()
        self._settings = settings
        self._client = client
        self._on_done = on_done
        self._slots = slots
        self._events: AsyncIterator[Delta] | None = None

    async def __aenter__(self) -> Reply:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Delta]:
        if self._events is None:
            self._events = self._stream()
        return self._events

    async def aclose(self) -> None:
        """Stop the reply: close the upstream stream and keep what arrived."""
        if self._events is not None:
            await self._events.aclose()  # type: ignore[attr-defined]
        if self.status in (ReplyStatus.PENDING, ReplyStatus.STREAMING):
            self._finish(ReplyStatus.STOPPED)

    @property
    def ended(self) -> bool:
        """True once the reply is complete, stopped or failed."""
        return self.status in (ReplyStatus.COMPLETE, ReplyStatus.STOPPED, ReplyStatus.FAILED)

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

    async def _stream(self) -> AsyncIterator[Delta]:
        self.status = ReplyStatus.STREAMING
        try:
            with self._slot():
                async with self._client.messages.stream(**self.request) as stream:
                    async for event in stream:
                        delta = self._take(event)
                        if delta is not None:
                            yield delta
                    self.message = await stream.get_final_message()
            if self.message.stop_reason is None:
                raise ChatError("The answer was cut off: the stream ended early. Try again.")
        except Exception as exc:
            self.error = explain(exc, self._settings)
            self._finish(ReplyStatus.FAILED)
            raise self.error from exc
        finally:
            if self.status is ReplyStatus.STREAMING:
                done = self.message is not None and self.message.stop_reason is not None
                self._finish(ReplyStatus.COMPLETE if done else ReplyStatus.STOPPED)

    @property
    def tokens_used(self) -> int:
        """Tokens this reply cost: the API's usage when complete, an estimate when cut short."""
        if self.message is not None:
            return _billed_input(self.message.usage) + self.message.usage.output_tokens
        if self.started_usage is None and not (self.text or self.thinking):
            return 0  # nothing reached Claude, or nothing came back
        if self.started_usage is not None:
            prompt = _billed_input(self.started_usage)
        else:
            prompt = estimate_tokens(str(self.request.get("messages", "")))
        return prompt + estimate_tokens(self.thinking + self.text)

    def _slot(self) -> AbstractContextManager[None]:
        return nullcontext() if self._slots is None else self._slots.hold()

    def _take(self, event: Any) -> Delta | None:
        if event.type == "message_start":
            self.started_usage = event.message.usage
            return None
        if event.type == "text":
            self.text += event.text
            delta: Delta = TextDelta(event.text)
            if self.answer_started_at is None:
                self.answer_started_at = time.monotonic()
        elif event.type == "thinking":
            self.thinking += event.thinking
            delta = ThinkingDelta(event.thinking)
        else:
            return None
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        return delta

    def _finish(self, status: ReplyStatus) -> None:
        self.status = status
        self.finished_at = time.monotonic()
        try:
            self._on_done(self)
        finally:
            self._done.set()


def _billed_input(usage: Any) -> int:
    cached = (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
    return usage.input_tokens + cached
