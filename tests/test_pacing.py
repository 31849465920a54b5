"""Coalescing deltas into screen updates: first at once, then one per interval, nothing lost."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import pytest

from chat import coalesce
from tests.conftest import Chat
from tests.upstream import text_reply

STEP = 5.0  # generous bound for a step that should take milliseconds: a loaded box is slow, not hung


class Source:
    """Deltas on demand: the test releases them and sees whether the source was closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        self.closed = False

    def send(self, *deltas: str | BaseException | None) -> None:
        for delta in deltas:
            self.queue.put_nowait(delta)

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            while (delta := await self.queue.get()) is not None:
                if isinstance(delta, BaseException):
                    raise delta
                yield delta
        finally:
            self.closed = True


async def next_update(updates: AsyncIterator[list[str]]) -> list[str]:
    return await asyncio.wait_for(anext(updates), STEP)


async def collect(updates: AsyncIterator[list[str]]) -> list[list[str]]:
    return await asyncio.wait_for(_all(updates), STEP * 4)


async def _all(updates: AsyncIterator[list[str]]) -> list[list[str]]:
    return [batch async for batch in updates]


async def paced(deltas: list[str], gap: float) -> AsyncIterator[str]:
    for delta in deltas:
        await asyncio.sleep(gap)
        yield delta


async def test_final_text_equals_the_joined_deltas():
    deltas = [f"d{number} " for number in range(200)]
    batches = await collect(coalesce(paced(deltas, 0.0005), interval=0.02))
    assert "".join(delta for batch in batches for delta in batch) == "".join(deltas)


async def test_the_first_delta_is_shown_at_once():
    source = Source()
    updates = coalesce(aiter(source), interval=3600)
    source.send("Hel")  # no second delta and no end: only an immediate update can arrive
    assert await next_update(updates) == ["Hel"]
    await asyncio.wait_for(updates.aclose(), STEP)


async def test_deltas_within_the_interval_are_batched_into_one_update():
    source = Source()
    updates = coalesce(aiter(source), interval=0.2)
    source.send("a")
    assert await next_update(updates) == ["a"]
    source.send("b", "c", "d")
    assert await next_update(updates) == ["b", "c", "d"]
    await asyncio.wait_for(updates.aclose(), STEP)


async def test_a_pause_in_the_stream_does_not_hold_back_buffered_deltas():
    source = Source()
    updates = coalesce(aiter(source), interval=0.05)
    source.send("a")
    await next_update(updates)
    source.send("b")  # then the source goes quiet (the model pauses): "b" must still be shown
    assert await next_update(updates) == ["b"]
    await asyncio.wait_for(updates.aclose(), STEP)


async def test_the_end_of_the_stream_flushes_without_waiting_for_the_interval():
    source = Source()
    updates = coalesce(aiter(source), interval=3600)
    source.send("a")
    await next_update(updates)
    source.send("b", "c", None)  # the last deltas, then the end, well inside the interval
    assert await next_update(updates) == ["b", "c"]
    with pytest.raises(StopAsyncIteration):
        await next_update(updates)


async def test_updates_come_at_most_once_per_interval():
    interval = 0.03
    started = time.monotonic()
    batches = await collect(coalesce(paced(["x"] * 150, 0.001), interval))
    elapsed = time.monotonic() - started
    assert len(batches) <= math.ceil(elapsed / interval) + 2  # the first at once, the last at the end
    assert len(batches) < 150 / 3


async def test_a_failure_is_raised_after_the_deltas_before_it():
    source = Source()
    updates = coalesce(aiter(source), interval=3600)
    source.send("a")
    await next_update(updates)
    source.send("b", RuntimeError("connection lost"))
    assert await next_update(updates) == ["b"]
    with pytest.raises(RuntimeError, match="connection lost"):
        await next_update(updates)
    assert source.closed


async def test_closing_the_updates_closes_the_source_at_once():
    source = Source()
    updates = coalesce(aiter(source), interval=0.05)
    source.send("a")
    await next_update(updates)
    await asyncio.wait_for(updates.aclose(), STEP)
    assert source.closed


async def test_cancelling_the_consumer_closes_the_source_at_once():
    source = Source()
    first_update = asyncio.Event()

    async def show() -> None:
        async for _ in coalesce(aiter(source), interval=0.05):
            first_update.set()

    consumer = asyncio.create_task(show())
    source.send("a")
    await asyncio.wait_for(first_update.wait(), STEP)
    consumer.cancel()
    await asyncio.wait({consumer}, timeout=STEP)
    assert consumer.cancelled() and source.closed


async def test_stopping_a_paced_reply_closes_its_upstream_stream_and_keeps_the_text():
    chat = Chat(text_reply("The first ", "half", " never sent", delay=0.2))  # still streaming at Stop
    async with chat.stream("tell me") as reply:
        async for _ in coalesce(reply, interval=3600):
            break
    assert chat.upstream.calls[0].client_left_at is not None
    assert chat.messages[-1]["content"] == [{"type": "text", "text": reply.text}]
    assert reply.text.startswith("The first ")
