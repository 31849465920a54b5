"""Conversations kept on the server, with answers that go on streaming when every watcher has left.

A `Library` pairs the service with a store. It keeps one in-memory `Conversation` per stored
conversation (every caller of one owner gets the same object), and runs each answer in a task
of its own that saves it as it grows: a watcher follows a `LiveAnswer` and may leave at any
time; only `stop` (or `close`) ends the answer early. Every call names the owner, and another
owner's conversation behaves like one that does not exist.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import datetime as dt
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import Any

from chat.conversation import Conversation
from chat.errors import ChatError, ErrorKind
from chat.exchange import Exchange, Status
from chat.limits import Caller
from chat.options import TurnOptions
from chat.reply import Reply
from chat.service import ChatService, FileInput
from chat.store import ConversationInfo, Store, not_found, title_for

log = logging.getLogger(__name__)

MAX_CACHED = 256
COUNTS_IDLE_SECONDS = 3600.0  # a message scope idle this long is forgotten (its window is a minute)


class LiveAnswer:
    """One answer being streamed and saved by the library; follow it with `async for _ in changes()`."""

    def __init__(self, owner: str, conversation_id: str, position: int, reply: Reply) -> None:
        self.owner = owner
        self.conversation_id = conversation_id
        self.position = position  # the exchange's index in its conversation
        self.reply = reply
        self.done = False  # True once the answer ended and its final exchange was saved
        self.version = 0  # counts changes: each delta batch, then the end
        self._changed = asyncio.Event()
        self._finished = asyncio.Event()  # set with `done`
        self._first_save: asyncio.Task[None] | None = None  # the exchange saved as streaming
        self._saved_version = 0  # the version the last partial save wrote
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()  # set once the task runs it (or the first save failed)

    @property
    def exchange(self) -> Exchange:
        """The exchange being answered (its response is filled in when the answer ends)."""
        return self.reply.exchange

    @property
    def text(self) -> str:
        """The answer's text so far."""
        return self.reply.text

    async def changes(self, now: bool = True, interval: float = 0.0) -> AsyncIterator[None]:
        """Yield now, then whenever the answer changed since the last yield; end when it ends.

        With `now` False, the first yield waits for the first change (the one who asked has seen
        the start). With an `interval`, it yields at most once per `interval` seconds: the first
        change at once, the end without waiting, and in between the latest state (what changed
        meanwhile is taken together). Leaving (break, cancel) never stops the answer.
        """
        seen = -1 if now else 0
        last = -math.inf
        while True:
            if self.version != seen:
                delay = last + interval - time.monotonic()
                if delay > 0 and not self.done:
                    with contextlib.suppress(TimeoutError):  # woken early when it ends
                        await asyncio.wait_for(self._finished.wait(), delay)
                seen, last = self.version, time.monotonic()
                yield
            elif self.done:
                return
            else:
                await self._changed.wait()

    async def wait(self) -> Exchange:
        """Wait for the answer to end and be saved; return its exchange."""
        while not self.done:
            await self._changed.wait()
        return self.exchange

    def _bump(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


@dataclasses.dataclass
class _Entry:
    owner: str
    conversation: Conversation


class Library:
    """Stored conversations, their in-memory copies, and the answers streaming in them."""

    def __init__(
        self,
        service: ChatService,
        store: Store,
        max_live_per_owner: int = 2,
        save_interval: float = 1.0,
        *,
        max_cached: int = MAX_CACHED,
    ) -> None:
        if max_live_per_owner < 1:
            raise ValueError("max_live_per_owner must be at least 1")
        self.service = service
        self.store = store
        service.count_in(store)  # rates and budgets outlive a restart and hold across processes
        self.max_live_per_owner = max_live_per_owner
        self.save_interval = save_interval
        self.max_cached = max_cached
        self._cache: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._live: dict[str, LiveAnswer] = {}  # by conversation id
        self._saver: asyncio.Task[None] | None = None  # saves the partial answers, while any streams

    @classmethod
    async def open(cls, service: ChatService, url: str, **options: Any) -> Library:
        """The library over the store at this URL (opened: its schema made, interrupted answers marked)."""
        return cls(service, await Store.open(url), **options)

    async def new(self, owner: str, title: str) -> ConversationInfo:
        """A new empty conversation of this owner."""
        return await self.store.create(owner, title)

    async def ensure(self, owner: str, conversation_id: str, title: str) -> None:
        """Make sure the owner has a conversation with this id: made now (with this title) if not stored.

        One held in memory for this owner is stored already: that costs no query.
        """
        entry = self._cache.get(conversation_id)
        if entry is not None and entry.owner == owner:
            return
        info = await self.store.ensure(owner, conversation_id, title)
        if info.exchange_count == 0 and conversation_id not in self._cache:  # new: nothing to read back
            self._cache[conversation_id] = _Entry(owner, self.service.conversation())
            self._evict(keep=conversation_id)

    async def adopt(self, owner: str, title: str, exchanges: Sequence[Exchange]) -> ConversationInfo:
        """A new conversation of this owner holding these exchanges (a loaded export)."""
        info = await self.store.create(owner, title)
        for position, exchange in enumerate(exchanges):
            await self.store.save(owner, info.id, position, exchange)
        return info

    async def list(self, owner: str, query: str | None = None) -> builtins.list[ConversationInfo]:
        """The owner's conversations, newest first; with a query, those whose title or text match."""
        return await self.store.list(owner, query)

    async def rename(self, owner: str, conversation_id: str, title: str) -> str:
        """Give the conversation a new title (folded to one line of at most 60 characters); return it."""
        folded = title_for(" ".join(title.split()))  # every line of it, then as a first message's title
        if not folded:
            raise ChatError(ErrorKind.REFUSED, "A title cannot be blank.", conversation_id=conversation_id)
        await self.store.rename(owner, conversation_id, folded)
        return folded

    async def delete(self, owner: str, conversation_id: str) -> None:
        """Delete the conversation, stopping its answer first if one is streaming."""
        if await self.store.get(owner, conversation_id) is None:
            raise not_found(conversation_id)
        live = self.live(owner, conversation_id)
        if live is not None:
            await self._stop(live)
        self._cache.pop(conversation_id, None)
        await self.store.delete(owner, conversation_id)

    async def expire(self, days: int, now: dt.datetime | None = None) -> builtins.list[str]:
        """Delete conversations untouched for `days` days, then files nothing refers to; return their ids."""
        if days <= 0:
            return []
        now = now or dt.datetime.now(dt.UTC)
        expired = await self.store.expire(now - dt.timedelta(days=days))
        for conversation_id in expired:
            self._cache.pop(conversation_id, None)
        self.service.files.remove_unreferenced(await self.store.referenced_files())
        yesterday = (now - dt.timedelta(days=1)).date().isoformat()  # a reservation may settle after midnight
        await self.store.forget_counts(yesterday, idle_since=now.timestamp() - COUNTS_IDLE_SECONDS)
        return expired

    async def refuse(self, owner: str, conversation_id: str, text: object, error: ChatError) -> Exchange:
        """Record and save a message refused before it could be asked (its options were wrong, say)."""
        conversation = await self.conversation(owner, conversation_id)
        exchange = self.service.record(conversation, text, error)
        await self._save(owner, conversation_id, len(conversation.exchanges) - 1, exchange)
        return exchange

    async def conversation(self, owner: str, conversation_id: str) -> Conversation:
        """The one in-memory copy of the conversation, loaded from the store on first use."""
        entry = self._cache.get(conversation_id)
        if entry is None:
            if await self.store.get(owner, conversation_id) is None:
                raise not_found(conversation_id)
            exchanges = await self.store.exchanges(owner, conversation_id)
            entry = self._cache.get(conversation_id)  # another caller may have loaded it meanwhile
            if entry is None:
                entry = _Entry(owner, self.service.conversation(exchanges))
                self._cache[conversation_id] = entry
                self._evict(keep=conversation_id)
        if entry.owner != owner:
            raise not_found(conversation_id)
        self._cache.move_to_end(conversation_id)
        return entry.conversation

    async def ask(
        self,
        owner: str,
        conversation_id: str,
        text: object,
        files: Sequence[FileInput] = (),
        options: TurnOptions | None = None,
        address: str | None = None,
    ) -> LiveAnswer:
        """Send a message (from this client address, if known) and start its answer in a task of its own.

        A message refused by its content, or because this owner has too many answers streaming,
        is saved as a failed exchange and raises ChatError; one over the owner's or the address's
        rate, or over a budget, ends the live answer failed at once. Nothing is sent either way.
        """
        conversation = await self.conversation(owner, conversation_id)
        busy = self._busy(owner, conversation_id)
        if busy is not None:
            await self.refuse(owner, conversation_id, text, busy)
            raise busy
        try:
            reply = self.service.stream_reply(
                conversation, text, files, options=options, caller=Caller(owner, address)
            )
        except ChatError:
            position = len(conversation.exchanges) - 1
            await self._save(owner, conversation_id, position, conversation.exchanges[position])
            raise
        live = LiveAnswer(owner, conversation_id, len(conversation.exchanges) - 1, reply)
        self._live[conversation_id] = live  # counted from here on: no await before this line
        aiter(reply)  # its events exist now, so a stop before the task runs closes them unread
        # Saved as streaming beside the request to Claude, not before it: the first words wait
        # for no database. The answer's own saves come after this one.
        streaming = dataclasses.replace(reply.exchange, status=Status.STREAMING)
        live._first_save = asyncio.create_task(self._save(owner, conversation_id, live.position, streaming))
        live._task = asyncio.create_task(
            self._drive(live, live._first_save), name=f"answer {conversation_id}"
        )
        live._started.set()
        if self._saver is None or self._saver.done():
            self._saver = asyncio.create_task(self._save_partials(), name="saving partial answers")
        return live

    def live(self, owner: str, conversation_id: str) -> LiveAnswer | None:
        """The answer streaming in this conversation of this owner, if any (a reloaded tab re-attaches)."""
        live = self._live.get(conversation_id)
        return live if live is not None and live.owner == owner else None

    async def stop(self, owner: str, conversation_id: str) -> bool:
        """Stop the conversation's answer at once, keeping and saving its partial text.

        False when this owner has no answer streaming there (another owner's is left alone).
        """
        live = self.live(owner, conversation_id)
        if live is None:
            return False
        await self._stop(live)
        return True

    async def keep(self, owner: str, conversation_id: str, count: int) -> None:
        """Keep the first `count` exchanges, in memory and in the store (retry, undo, edit).

        An answer streaming at a position cut off is stopped first.
        """
        conversation = await self.conversation(owner, conversation_id)
        if count >= len(conversation.exchanges):
            return  # nothing to cut (the usual case: a new message under the whole conversation)
        live = self.live(owner, conversation_id)
        if live is not None and live.position >= count:
            await self._stop(live)
        conversation.keep(count)
        await self.store.keep(owner, conversation_id, count)

    async def close(self) -> None:
        """Stop every live answer and save it (the store stays open: its opener closes it)."""
        await asyncio.gather(*(self._stop(live) for live in list(self._live.values())))
        if self._saver is not None:
            self._saver.cancel()
            await asyncio.wait({self._saver})

    # --- inside ----------------------------------------------------------------------------------

    def _busy(self, owner: str, conversation_id: str) -> ChatError | None:
        if conversation_id in self._live:
            return ChatError(
                ErrorKind.VISITOR_BUSY,
                "An answer is still coming in this conversation: wait for it or stop it, then send "
                "again. Nothing was sent.",
                conversation_id=conversation_id,
            )
        streaming = sum(1 for live in self._live.values() if live.owner == owner)
        if streaming >= self.max_live_per_owner:
            return ChatError(
                ErrorKind.VISITOR_BUSY,
                f"You already have {streaming} answers coming, the most at once. Wait for one to "
                "finish or stop it, then send again. Nothing was sent.",
                limit=self.max_live_per_owner,
            )
        return None

    def _evict(self, keep: str) -> None:
        # Least recently used first, never one with a live answer nor the one just asked for.
        for conversation_id in list(self._cache):
            if len(self._cache) <= self.max_cached:
                return
            if conversation_id != keep and conversation_id not in self._live:
                del self._cache[conversation_id]

    async def _stop(self, live: LiveAnswer) -> None:
        live._stopping = True
        await live.reply.aclose()  # closes the upstream; cancels the task if it is mid-read
        await live._started.wait()
        if live._task is not None:
            await asyncio.wait({live._task})  # its final save

    async def _drive(self, live: LiveAnswer, first_save: asyncio.Task[None]) -> None:
        reply = live.reply
        try:
            async with reply:
                async for _ in reply:
                    live._bump()
        except ChatError:
            pass  # failed: the exchange says why, and keeps what arrived
        except asyncio.CancelledError:
            if not live._stopping:
                raise  # cancelled from outside (shutdown): saved below, then cancelled
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # stop() cancelled the read: the answer just ends here
        finally:
            try:
                await asyncio.wait({first_save})  # even when cancelled: the last save must be last
                await self._save(live.owner, live.conversation_id, live.position, live.exchange)
            finally:
                self._ended(live)

    def _ended(self, live: LiveAnswer) -> None:
        if self._live.get(live.conversation_id) is live:
            del self._live[live.conversation_id]
        live._started.set()
        live.done = True
        live._finished.set()
        live._bump()

    async def _save_partials(self) -> None:
        # One write every `save_interval` seconds for all the answers streaming, not one each:
        # what arrived is in the store within that time, at a cost that does not grow with them.
        while self._live:
            await asyncio.sleep(self.save_interval)
            due = [
                live
                for live in self._live.values()
                if not live.done
                and live._first_save is not None
                and live._first_save.done()
                and live.version != live._saved_version
            ]
            if not due:
                continue
            versions = [live.version for live in due]
            partials = [(live.owner, live.conversation_id, live.position, _partial(live)) for live in due]
            try:
                await self.store.save_partials(partials)
            except Exception:
                log.exception("could not save %s partial answers", len(partials))
                continue
            for live, version in zip(due, versions, strict=True):
                live._saved_version = version

    async def _save(self, owner: str, conversation_id: str, position: int, exchange: Exchange) -> None:
        try:
            await self.store.save(owner, conversation_id, position, exchange)
        except Exception:
            log.exception("could not save exchange %s of conversation %s", position, conversation_id)


def _partial(live: LiveAnswer) -> Exchange:
    """The exchange as far as its answer has come, still streaming."""
    exchange = live.exchange
    response: dict[str, Any] = {
        "type": "message",
        "role": "assistant",
        "model": exchange.model,
        "content": live.reply.content,
    }
    return dataclasses.replace(exchange, status=Status.STREAMING, response=response)
