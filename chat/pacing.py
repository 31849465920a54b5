"""Pacing screen updates: the first delta at once, then at most one update per interval."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Pump(Generic[T]):
    """Reads the source in a task of its own, so buffered deltas can go out while it waits."""

    def __init__(self, source: AsyncIterator[T]) -> None:
        self.source = source
        self.buffer: list[T] = []
        self.error: BaseException | None = None
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    @property
    def done(self) -> bool:
        return self.task.done()

    def take(self) -> list[T]:
        batch, self.buffer = self.buffer, []
        self.arrived.clear()
        return batch

    async def wait_for_delta(self) -> None:
        waiter = asyncio.ensure_future(self.arrived.wait())
        try:
            await asyncio.wait({waiter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    async def wait_for_end(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.wait({self.task}, timeout=seconds)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task})
        await _aclose(self.source)

    async def _run(self) -> None:
        try:
            async for delta in self.source:
                self.buffer.append(delta)
                self.arrived.set()
        except Exception as exc:
            self.error = exc


async def coalesce(source: AsyncIterator[T], interval: float) -> AsyncIterator[list[T]]:
    """Yield the deltas of `source` in batches: one update per `interval` seconds at most.

    The first delta goes out at once. Deltas that arrive within `interval` of the previous
    update wait for the next one, and the stream's end flushes whatever is left without waiting.
    A failure of the source is raised after the deltas that came before it. Closing or cancelling
    this generator closes the source at once (for a Reply: the HTTP stream to the API).
    """
    pump = _Pump(source)
    last_update = -float("inf")
    try:
        while True:
            await pump.wait_for_delta()
            await pump.wait_for_end(last_update + interval - time.monotonic())
            batch = pump.take()
            if batch:
                last_update = time.monotonic()
                yield batch
            elif pump.done:
                break
        if pump.error is not None:
            raise pump.error
    finally:
        await pump.close()


async def _aclose(source: Any) -> None:
    close = getattr(source, "aclose", None)
    if close is not None:
        await close()
