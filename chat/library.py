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
from chat.exchange import Exchange, Status, Timings
from chat.limits import Caller
from chat.options import TurnOptions
from chat.peers import Alone, News, Notice, Peers, PostgresPeers
from chat.reply import Reply
from chat.service import ChatService, FileInput
from chat.store import ConversationInfo, Store, not_found, title_for

log = logging.getLogger(__name__)

MAX_CACHED = 256
SWEEP_SECONDS = 5.0  # how often a replica looks for answers whose replica is gone
STOP_WAIT_SECONDS = 5.0  # how long a Stop waits for another replica to end its answer
COUNTS_IDLE_SECONDS = 3600.0  # a message scope idle this long is forgotten (its window is a minute)


class Answering:
    """An answer still coming; follow it with `async for _ in changes()`, or `wait()` for its end."""

    def __init__(self, owner: str, conversation_id: str, position: int) -> None:
        self.owner = owner
        self.conversation_id = conversation_id
        self.position = position  # the exchange's index in its conversation
        self.done = False  # True once the answer ended and its final exchange was saved
        self.version = 0  # counts changes: each delta batch, then the end
        self._changed = asyncio.Event()
        self._finished = asyncio.Event()  # set with `done`

    @property
    def exchange(self) -> Exchange:
        """The exchange being answered (its response is filled in when the answer ends)."""
        raise NotImplementedError

    @property
    def content(self) -> builtins.list[dict[str, Any]]:
        """The answer's content blocks so far."""
        raise NotImplementedError

    @property
    def timings(self) -> Timings:
        """When the answer started, and its first text came."""
        raise NotImplementedError

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

    def _end(self) -> None:
        self.done = True
        self._finished.set()
        self._bump()


class LiveAnswer(Answering):
    """One answer this process streams and saves."""

    def __init__(self, owner: str, conversation_id: str, position: int, reply: Reply) -> None:
        super().__init__(owner, conversation_id, position)
        self.reply = reply
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
    def content(self) -> builtins.list[dict[str, Any]]:
        """The answer's content blocks so far."""
        return self.reply.content

    @property
    def timings(self) -> Timings:
        """When the answer started, and its first text came."""
        return self.reply.timings

    @property
    def text(self) -> str:
        """The answer's text so far."""
        return self.reply.text


class RemoteAnswer(Answering):
    """An answer another replica streams, followed in the store as that replica saves it."""

    def __init__(
        self, store: Store, owner: str, conversation_id: str, position: int, exchange: Exchange
    ) -> None:
        super().__init__(owner, conversation_id, position)
        self._store = store
        self._exchange = exchange
        self._looking: asyncio.Task[None] | None = None
        self._look_again = False

    @property
    def exchange(self) -> Exchange:
        """The exchange as its replica last saved it."""
        return self._exchange

    @property
    def content(self) -> builtins.list[dict[str, Any]]:
        """The answer's content blocks, as far as its last save."""
        return self._exchange.content

    @property
    def timings(self) -> Timings:
        """When the answer started, and its first text came."""
        return self._exchange.timings

    def look(self) -> None:
        """Read the exchange again (its replica saved it): one read at a time, the latest wins."""
        if self.done:
            return
        if self._looking is not None and not self._looking.done():
            self._look_again = True
            return
        self._looking = asyncio.create_task(self._read(), name=f"following {self.conversation_id}")

    async def _read(self) -> None:
        while True:
            self._look_again = False
            try:
                now = await self._store.exchange_at(self.owner, self.conversation_id, self.position)
            except Exception:
                log.exception("could not read the answer of conversation %s", self.conversation_id)
                return
            if now is None or now.id != self._exchange.id:  # cut or deleted meanwhile
                self._exchange = dataclasses.replace(self._exchange, status=Status.STOPPED)
                self._end()
                return
            if now.to_dict() != self._exchange.to_dict():
                self._exchange = now
                if now.status.ended:
                    self._end()
                    return
                self._bump()
            if not self._look_again:
                return


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
        sweep_interval: float = SWEEP_SECONDS,
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
        self._remote: dict[str, RemoteAnswer] = {}  # by conversation id: answers other replicas stream
        self.peers: Peers = Alone()
        self.sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None
        self._errands: set[asyncio.Task[Any]] = set()  # stops asked by other replicas, while they run

    @classmethod
    async def open(
        cls, service: ChatService, url: str, replica: str | None = None, **options: Any
    ) -> Library:
        """The library over the store at this URL (opened: its schema made, interrupted answers marked).

        On PostgreSQL it joins the other replicas of the same database: it hears their Stops and
        saves, and stops the answers of a replica that went away. `replica` names this process.
        """
        store = await Store.open(url, replica)
        library = cls(service, store, **options)
        if store.shared:
            try:
                library.peers = await PostgresPeers.open(url, store.replica, library.hear)
            except BaseException:
                await store.close()
                raise
            library._sweeper = asyncio.create_task(library._sweep(), name="stopping orphaned answers")
        return library

    def hear(self, notice: Notice) -> None:
        """Act on what another replica says: stop an answer streaming here, or forget a stale copy."""
        if notice.news is News.CHANGED:
            self._changed_elsewhere(notice.conversations)
            return
        for conversation_id in notice.conversations:
            live = self._live.get(conversation_id)
            if live is not None:
                self._errand(self._stop(live))

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
        await self.peers.tell(News.CHANGED, [conversation_id])

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
            # An answer left unended by a replica that is gone is stopped now, before anyone reads on.
            if (
                conversation_id not in self._live
                and await self.store.unended(owner, conversation_id)
                and await self.store.stop_orphans(conversation_id)
            ):
                await self.peers.tell(News.CHANGED, [conversation_id])
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
        if busy is None and self.store.shared and await self.store.unended(owner, conversation_id):
            busy = _answering_here(conversation_id)  # another replica streams it
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

    async def answering(self, owner: str, conversation_id: str) -> Answering | None:
        """The answer coming in this conversation of this owner, streamed here or by another replica."""
        live = self.live(owner, conversation_id)
        if live is not None:
            return live
        remote = self._remote.get(conversation_id)
        if remote is not None and not remote.done:
            return remote if remote.owner == owner else None
        if not self.store.shared:
            return None
        try:
            await self.conversation(owner, conversation_id)  # which stops a gone replica's answer
        except ChatError:
            return None
        positions = await self.store.unended(owner, conversation_id)
        stored = await self.store.exchange_at(owner, conversation_id, positions[-1]) if positions else None
        if stored is None or conversation_id in self._live:
            return self.live(owner, conversation_id)
        remote = RemoteAnswer(self.store, owner, conversation_id, positions[-1], stored)
        self._remote[conversation_id] = remote
        self._errand(self._forget_when_done(remote))
        remote.look()  # it may have ended between the read and now
        return remote

    async def stop(self, owner: str, conversation_id: str) -> bool:
        """Stop the conversation's answer at once, keeping and saving its partial text.

        An answer another replica streams is stopped by that replica (waiting a few seconds for
        it to say so). False when this owner has no answer coming there (another owner's is left alone).
        """
        live = self.live(owner, conversation_id)
        if live is not None:
            await self._stop(live)
            return True
        remote = await self.answering(owner, conversation_id)
        if remote is None:
            return False
        await self.peers.tell(News.STOP, [conversation_id])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(remote.wait(), STOP_WAIT_SECONDS)
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
        await self.peers.tell(News.CHANGED, [conversation_id])

    async def close(self) -> None:
        """Stop every live answer and save it (the store stays open: its opener closes it)."""
        await asyncio.gather(*(self._stop(live) for live in list(self._live.values())))
        for task in (self._saver, self._sweeper, *self._errands):
            if task is not None:
                task.cancel()
                await asyncio.wait({task})
        await self.peers.close()

    # --- inside ----------------------------------------------------------------------------------

    def _busy(self, owner: str, conversation_id: str) -> ChatError | None:
        if conversation_id in self._live:
            return _answering_here(conversation_id)
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
        live._end()

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
            await self.peers.tell(News.CHANGED, [live.conversation_id for live in due])

    async def _save(self, owner: str, conversation_id: str, position: int, exchange: Exchange) -> None:
        try:
            await self.store.save(owner, conversation_id, position, exchange)
        except Exception:
            log.exception("could not save exchange %s of conversation %s", position, conversation_id)
            return
        await self.peers.tell(News.CHANGED, [conversation_id])

    async def _sweep(self) -> None:
        # The store marks what a gone replica was streaming; whoever holds a copy is told.
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                stopped = await self.store.stop_orphans()
            except Exception:
                log.exception("could not look for answers whose replica is gone")
                continue
            if stopped:
                changed = list(dict.fromkeys(conversation_id for conversation_id, _ in stopped))
                log.warning("stopped %s answers whose replica went away", len(stopped))
                self._changed_elsewhere(changed)
                await self.peers.tell(News.CHANGED, changed)

    def _changed_elsewhere(self, conversation_ids: Sequence[str]) -> None:
        # Not by this process: a copy held here is stale, and a follower here looks again.
        for conversation_id in conversation_ids:
            if conversation_id in self._live:
                continue
            self._cache.pop(conversation_id, None)
            remote = self._remote.get(conversation_id)
            if remote is not None:
                remote.look()

    def _errand(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._errands.add(task)
        task.add_done_callback(self._errands.discard)

    async def _forget_when_done(self, remote: RemoteAnswer) -> None:
        await remote.wait()
        if self._remote.get(remote.conversation_id) is remote:
            del self._remote[remote.conversation_id]


def _answering_here(conversation_id: str) -> ChatError:
    return ChatError(
        ErrorKind.VISITOR_BUSY,
        "An answer is still coming in this conversation: wait for it or stop it, then send "
        "again. Nothing was sent.",
        conversation_id=conversation_id,
    )


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
