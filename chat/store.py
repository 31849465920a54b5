"""Conversations kept on the server: SQLite by default, PostgreSQL when given its URL.

Every call names the owner, and a conversation is seen and changed only by its owner: another
owner's id behaves exactly like one that does not exist. Each exchange is stored as its
`to_dict()` JSON, beside folded copies of its prompt and answer text for search.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import hashlib
import os
import re
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    delete,
    event,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chat.errors import ChatError, ErrorKind
from chat.exchange import Exchange, Status
from chat.limits import WINDOW_SECONDS, Limit, OverLimit

TITLE_LIMIT = 60
BUSY_TIMEOUT_SECONDS = 30.0
UNENDED = (Status.STREAMING.value, Status.PENDING.value)
INTERRUPTED_MESSAGE = (
    "The server answering went away mid-answer (a restart or a crash), so the answer stops here."
)
REPLICA_LIMIT = 96  # characters of a replica's name (the streamed_by column)


# Control characters (NUL among them: PostgreSQL's text keeps none), direction overrides, surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """The text on one line without control characters (NUL, escapes, direction overrides)."""
    return " ".join(_UNPRINTABLE.sub(" ", text).split())


def title_for(text: str) -> str:
    """A conversation title from its first message: the first line, printable, at most 60 characters."""
    line = next((printable(part) for part in text.splitlines() if printable(part)), "")
    return line if len(line) <= TITLE_LIMIT else line[: TITLE_LIMIT - 1].rstrip() + "…"


@dataclass(frozen=True)
class ConversationInfo:
    """A stored conversation's facts, without its exchanges."""

    id: str
    owner: str
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime
    exchange_count: int


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime in and out (SQLite keeps it naive in UTC, so it sorts as text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """The value in UTC, naive for SQLite; a naive value is refused."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime cannot be stored: {value!r}")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """The stored value as an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("title_search", Text, nullable=False),  # the title casefolded
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("conversations_owner_updated", "owner", "updated_at"),
    Index("conversations_updated", "updated_at"),
)


def _exchanges_table(meta: MetaData, *later: Column[Any]) -> Table:
    return Table(
        "exchanges",
        meta,
        Column(
            "conversation_id",
            String(64),
            ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("exchange_id", String(64), nullable=False),
        Column("status", String(16), nullable=False),
        Column("prompt_search", Text, nullable=False),  # the prompt text casefolded
        Column("answer_search", Text, nullable=False),  # the answer text casefolded
        Column("record", JSON, nullable=False),  # Exchange.to_dict()
        Index("exchanges_status", "status"),
        *later,
    )


# The replica streaming an unended answer (None once it ended): when that process is gone, the
# answer is stopped where its last save left it (`Store.stop_orphans`).
exchanges = _exchanges_table(metadata, Column("streamed_by", String(REPLICA_LIMIT), nullable=True))


# The rates and budgets (chat/limits.py Counters): one row per message in the last minute, one
# row per scope that counts messages (locked while counting, so two processes count in turn),
# and one row per scope and UTC day of tokens spent or reserved.
rate_events = Table(
    "rate_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", Text, nullable=False),
    Column("at", Float, nullable=False),  # seconds since the epoch
    Index("rate_events_scope_at", "scope", "at"),
)

rate_scopes = Table(
    "rate_scopes",
    metadata,
    Column("scope", Text, primary_key=True),
    Column("touched", Float, nullable=False),
    Index("rate_scopes_touched", "touched"),
)

token_days = Table(
    "token_days",
    metadata,
    Column("scope", Text, primary_key=True),
    Column("day", String(10), primary_key=True),  # ISO date, UTC
    Column("tokens", BigInteger, nullable=False),
)


def _create_version_1(conn: Connection) -> None:
    # Version 1's conversations table is today's; its exchanges table had no streamed_by yet.
    version_1 = MetaData()
    conversations.to_metadata(version_1)
    _exchanges_table(version_1)
    version_1.create_all(conn)


def _create_version_2(conn: Connection) -> None:
    metadata.create_all(conn, tables=[rate_events, rate_scopes, token_days])


def _add_streamed_by(conn: Connection) -> None:
    conn.execute(text(f"ALTER TABLE exchanges ADD COLUMN streamed_by VARCHAR({REPLICA_LIMIT})"))


# Step n (counting from 1) upgrades a database at version n - 1 to version n; append, never edit.
UPGRADES: tuple[Callable[[Connection], None], ...] = (_create_version_1, _create_version_2, _add_streamed_by)
SCHEMA_VERSION = len(UPGRADES)


def database_url(url: str) -> URL:
    """The URL with its async driver: sqlite+aiosqlite or postgresql+asyncpg."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ChatError(ErrorKind.CONFIG, f"The database URL {url!r} is not a URL.") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ChatError(
        ErrorKind.CONFIG,
        f"The database URL must be SQLite or PostgreSQL, not {parsed.drivername}.",
        url=parsed.render_as_string(hide_password=True),
    )


def _sqlite_engine(url: URL) -> AsyncEngine:
    if url.database and url.database != ":memory:" and not url.query.get("uri"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # Every write commits or rolls back itself and a read opens no transaction, so a connection
    # going back to the pool needs no rollback (a round trip to the driver's thread each time).
    # One connection (one driver thread): SQLite writes one at a time anyway, and every extra
    # thread competes with the event loop for the GIL while chats stream.
    engine = create_async_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_SECONDS},
        pool_reset_on_return=None,
        pool_size=1,
        max_overflow=0,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front, so it waits its turn (busy_timeout) instead of
        # failing when a read lock cannot be upgraded; readers never block under WAL.
        # A read is one statement, atomic on its own: it needs no transaction (one round trip less).
        if conn.get_execution_options().get("chat_writes", False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def replica_name(name: str | None = None) -> str:
    """A name for this process among those sharing a database: the given one (or the host's), made unique."""
    base = printable(name or socket.gethostname() or "replica")[: REPLICA_LIMIT - 24]
    return f"{base}/{os.getpid()}/{secrets.token_hex(4)}"


def presence_key(replica: str) -> int:
    """The PostgreSQL advisory lock a replica holds while it runs (a signed 64-bit number)."""
    return int.from_bytes(hashlib.sha256(replica.encode()).digest()[:8], "big", signed=True)


class Store:
    """Conversations and their exchanges in one database, safe for concurrent tasks and processes.

    On PostgreSQL, several processes (replicas) may share it: each holds an advisory lock while it
    runs, so an answer whose replica is gone (killed, crashed) is told from one still streaming.
    """

    interrupted_on_open: int
    """How many exchanges left streaming or pending were marked stopped when the store opened."""

    def __init__(self, engine: AsyncEngine, replica: str | None = None) -> None:
        self.replica = replica or replica_name()
        self._presence: AsyncConnection | None = None  # holds this replica's lock (PostgreSQL)
        self._engine = engine
        self._writer = engine.execution_options(chat_writes=True)
        # SQLite has one writer at a time: this process's writers queue here, in order, instead
        # of polling the file lock (its busy handler sleeps up to 100 ms a try under load).
        self._one_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._last_time = dt.datetime.min.replace(tzinfo=dt.UTC)
        self.interrupted_on_open = 0
        self.version = 0

    @classmethod
    async def open(cls, url: str, replica: str | None = None) -> Store:
        """Connect, create or upgrade the schema, and stop every answer whose process is gone."""
        parsed = database_url(url)
        engine = (
            _sqlite_engine(parsed) if parsed.get_backend_name() == "sqlite" else create_async_engine(parsed)
        )
        store = cls(engine, replica)
        try:
            store.version = await store._upgrade()
            if engine.dialect.name == "postgresql":
                store._presence = await engine.connect()
                await store._presence.execute(
                    text("SELECT pg_advisory_lock(:key)"), {"key": presence_key(store.replica)}
                )
                await store._presence.commit()  # the lock is the session's: it outlives the transaction
            store.interrupted_on_open = len(await store.stop_orphans())
        except BaseException:
            await store.close()
            raise
        return store

    @property
    def shared(self) -> bool:
        """True when other processes may use this database at once (PostgreSQL)."""
        return self._engine.dialect.name == "postgresql"

    async def close(self) -> None:
        """Close every connection (releasing this replica's lock)."""
        if self._presence is not None:
            presence, self._presence = self._presence, None
            await presence.close()
        await self._engine.dispose()

    # --- conversations ---------------------------------------------------------------------------

    async def create(self, owner: str, title: str) -> ConversationInfo:
        """A new empty conversation of this owner."""
        now = self._now()
        info = ConversationInfo(secrets.token_urlsafe(16), owner, title, now, now, 0)
        async with self._write() as conn:
            await conn.execute(
                conversations.insert().values(
                    id=info.id,
                    owner=owner,
                    title=title,
                    title_search=title.casefold(),
                    created_at=now,
                    updated_at=now,
                )
            )
        return info

    async def ensure(self, owner: str, conversation_id: str, title: str) -> ConversationInfo:
        """The owner's conversation with this id, created (with this title) if there is none yet.

        An id another owner holds is NOT_FOUND, as everywhere.
        """
        now = self._now()
        async with self._write() as conn:
            insert = self._insert(conn, conversations)
            made = await conn.execute(
                insert.values(
                    id=conversation_id,
                    owner=owner,
                    title=title,
                    title_search=title.casefold(),
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=[conversations.c.id])
                .returning(conversations.c.id)
            )
            if made.first() is not None:  # made now: nothing more to read
                return ConversationInfo(conversation_id, owner, title, now, now, 0)
        info = await self.get(owner, conversation_id)
        if info is None:
            raise not_found(conversation_id)
        return info

    async def list(
        self, owner: str, query: str | None = None, limit: int = 100
    ) -> builtins.list[ConversationInfo]:
        """This owner's conversations, newest updated first; a query must match a title or message text."""
        statement = self._infos().where(conversations.c.owner == owner)
        needle = (query or "").strip().casefold()
        if needle:
            in_messages = exists().where(
                exchanges.c.conversation_id == conversations.c.id,
                or_(
                    exchanges.c.prompt_search.contains(needle, autoescape=True),
                    exchanges.c.answer_search.contains(needle, autoescape=True),
                ),
            )
            statement = statement.where(
                or_(conversations.c.title_search.contains(needle, autoescape=True), in_messages)
            )
        statement = statement.order_by(conversations.c.updated_at.desc(), conversations.c.id).limit(
            max(limit, 0)
        )
        async with self._read() as conn:
            rows = (await conn.execute(statement)).all()
        return [_info(row) for row in rows]

    async def get(self, owner: str, conversation_id: str) -> ConversationInfo | None:
        """The conversation's facts, or None when this owner has no such conversation."""
        statement = self._infos().where(conversations.c.id == conversation_id, conversations.c.owner == owner)
        async with self._read() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _info(row)

    async def rename(self, owner: str, conversation_id: str, title: str) -> None:
        """Give the conversation a new title."""
        async with self._write() as conn:
            result = await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id, conversations.c.owner == owner)
                .values(title=title, title_search=title.casefold())
            )
            _found(result.rowcount, conversation_id)

    async def delete(self, owner: str, conversation_id: str) -> None:
        """Delete the conversation and its exchanges."""
        async with self._write() as conn:
            await self._claim(conn, owner, conversation_id)
            await conn.execute(delete(exchanges).where(exchanges.c.conversation_id == conversation_id))
            await conn.execute(delete(conversations).where(conversations.c.id == conversation_id))

    async def expire(self, older_than: dt.datetime) -> builtins.list[str]:
        """Delete every conversation not updated since `older_than`; return their ids."""
        if older_than.tzinfo is None:
            raise ValueError("older_than must be an aware datetime")
        async with self._write() as conn:  # their exchanges go by the foreign key's cascade
            result = await conn.execute(
                delete(conversations)
                .where(conversations.c.updated_at < older_than)
                .returning(conversations.c.id)
            )
            return sorted(result.scalars().all())

    async def referenced_files(self) -> set[str]:
        """The SHA-256 of every file some stored exchange refers to."""
        async with self._read() as conn:
            records = (await conn.execute(select(exchanges.c.record))).scalars().all()
        return {ref["sha256"] for record in records for ref in record.get("prompt", {}).get("files", [])}

    # --- exchanges -------------------------------------------------------------------------------

    async def exchanges(self, owner: str, conversation_id: str) -> builtins.list[Exchange]:
        """The conversation's exchanges in position order (none for another owner's)."""
        statement = (
            select(exchanges.c.record)
            .join(conversations, conversations.c.id == exchanges.c.conversation_id)
            .where(exchanges.c.conversation_id == conversation_id, conversations.c.owner == owner)
            .order_by(exchanges.c.position)
        )
        async with self._read() as conn:
            records = (await conn.execute(statement)).scalars().all()
        return [Exchange.from_dict(record) for record in records]

    async def exchange_at(self, owner: str, conversation_id: str, position: int) -> Exchange | None:
        """The exchange at this position as stored: one still streaming says so (None if there is none)."""
        statement = (
            select(exchanges.c.record, exchanges.c.status)
            .join(conversations, conversations.c.id == exchanges.c.conversation_id)
            .where(
                exchanges.c.conversation_id == conversation_id,
                exchanges.c.position == position,
                conversations.c.owner == owner,
            )
        )
        async with self._read() as conn:
            row = (await conn.execute(statement)).first()
        if row is None:
            return None
        exchange = Exchange.from_dict(row.record)  # which reads an unended record as stopped
        exchange.status = Status(row.status)
        return exchange

    async def unended(self, owner: str, conversation_id: str) -> builtins.list[int]:
        """The positions of the conversation's answers still streaming or pending, in order."""
        statement = (
            select(exchanges.c.position)
            .join(conversations, conversations.c.id == exchanges.c.conversation_id)
            .where(
                exchanges.c.conversation_id == conversation_id,
                exchanges.c.status.in_(UNENDED),
                conversations.c.owner == owner,
            )
            .order_by(exchanges.c.position)
        )
        async with self._read() as conn:
            return list((await conn.execute(statement)).scalars())

    async def save(self, owner: str, conversation_id: str, position: int, exchange: Exchange) -> None:
        """Store the exchange at this position, replacing any there, and mark the conversation updated."""
        if position < 0:
            raise ValueError(f"a position is never negative: {position}")
        values = _exchange_row(exchange, self.replica)
        async with self._write() as conn:
            await self._claim(conn, owner, conversation_id)
            insert = self._insert(conn, exchanges)
            await conn.execute(
                insert.values(
                    conversation_id=conversation_id, position=position, **values
                ).on_conflict_do_update(
                    index_elements=[exchanges.c.conversation_id, exchanges.c.position], set_=values
                )
            )

    async def save_partials(self, partials: Sequence[tuple[str, str, int, Exchange]]) -> None:
        """Store how far answers still streaming have come, all in one transaction.

        Each is (owner, conversation id, position, exchange). Only an exchange stored as
        streaming is replaced: an answer that ended meanwhile keeps its end.
        """
        async with self._write() as conn:
            for owner, conversation_id, position, exchange in partials:
                owned = exists().where(conversations.c.id == conversation_id, conversations.c.owner == owner)
                await conn.execute(
                    update(exchanges)
                    .where(
                        exchanges.c.conversation_id == conversation_id,
                        exchanges.c.position == position,
                        exchanges.c.status == Status.STREAMING.value,
                        owned,
                    )
                    .values(_exchange_row(exchange, self.replica))
                )

    async def keep(self, owner: str, conversation_id: str, count: int) -> None:
        """Keep the first `count` exchanges, deleting those at later positions."""
        async with self._write() as conn:
            await self._claim(conn, owner, conversation_id)
            await conn.execute(
                delete(exchanges).where(
                    exchanges.c.conversation_id == conversation_id, exchanges.c.position >= max(count, 0)
                )
            )

    async def stop_orphans(self, conversation_id: str | None = None) -> builtins.list[tuple[str, int]]:
        """Stop every unended answer whose replica is gone (in one conversation, if given), keeping
        what its last save held; return each one stopped as (conversation id, position)."""
        error = ChatError(ErrorKind.INTERRUPTED, INTERRUPTED_MESSAGE, cause="server lost")
        unended = exchanges.c.status.in_(UNENDED)
        if conversation_id is not None:
            unended = unended & (exchanges.c.conversation_id == conversation_id)
        stopped: builtins.list[tuple[str, int]] = []
        async with self._write() as conn:
            streaming = set((await conn.execute(select(exchanges.c.streamed_by).where(unended))).scalars())
            gone = await self._gone(conn, streaming)
            if not gone:
                return stopped
            named = [replica for replica in gone if replica is not None]
            whose = exchanges.c.streamed_by.in_(named)
            if None in gone:
                whose = whose | exchanges.c.streamed_by.is_(None)
            rows = (
                await conn.execute(
                    select(exchanges.c.conversation_id, exchanges.c.position, exchanges.c.record)
                    .where(unended, whose)
                    .with_for_update()
                )
            ).all()
            for row in rows:
                exchange = Exchange.from_dict(row.record)  # its response, whatever arrived, is kept
                exchange.status = Status.STOPPED
                exchange.error = error
                await conn.execute(
                    update(exchanges)
                    .where(
                        exchanges.c.conversation_id == row.conversation_id,
                        exchanges.c.position == row.position,
                    )
                    .values(_exchange_row(exchange, None))
                )
                stopped.append((row.conversation_id, row.position))
        return stopped

    # --- counters (chat/limits.py Counters: the quota counts here, shared by every process) ------

    async def take_events(self, limits: Sequence[Limit], now: float) -> OverLimit | None:
        """Count one message in each scope, unless one already has its limit in the last minute:
        then count none, and return that scope with the time of its oldest message."""
        async with self._write() as conn:
            for scope in sorted({limit.scope for limit in limits}):  # one order: no deadlock
                # On PostgreSQL the upsert locks the scope's row until the commit.
                insert = self._insert(conn, rate_scopes).values(scope=scope, touched=now)
                await conn.execute(
                    insert.on_conflict_do_update(index_elements=[rate_scopes.c.scope], set_={"touched": now})
                )
            for limit in limits:
                await conn.execute(
                    delete(rate_events).where(
                        rate_events.c.scope == limit.scope, rate_events.c.at <= now - WINDOW_SECONDS
                    )
                )
                count, oldest = (
                    await conn.execute(
                        select(func.count(), func.min(rate_events.c.at)).where(
                            rate_events.c.scope == limit.scope
                        )
                    )
                ).one()
                if count >= limit.limit:
                    return OverLimit(limit.scope, oldest)
            await conn.execute(rate_events.insert(), [{"scope": limit.scope, "at": now} for limit in limits])
            return None

    async def add_tokens(self, day: str, limits: Sequence[Limit], tokens: int) -> OverLimit | None:
        """Add tokens to each scope's day, unless that takes one past its limit: then add none,
        and return that scope with what it had spent."""
        try:
            async with self._write() as conn:
                for limit in sorted(limits, key=lambda limit: limit.scope):  # one order: no deadlock
                    insert = self._insert(conn, token_days).values(scope=limit.scope, day=day, tokens=0)
                    await conn.execute(insert.on_conflict_do_nothing())
                    # One statement: on PostgreSQL it waits for the row's lock, then checks the newest count.
                    added = await conn.execute(
                        update(token_days)
                        .where(
                            token_days.c.scope == limit.scope,
                            token_days.c.day == day,
                            token_days.c.tokens + tokens <= limit.limit,
                        )
                        .values(tokens=token_days.c.tokens + tokens)
                    )
                    if added.rowcount == 0:
                        spent = await conn.scalar(
                            select(token_days.c.tokens).where(
                                token_days.c.scope == limit.scope, token_days.c.day == day
                            )
                        )
                        raise _OverLimit(OverLimit(limit.scope, int(spent or 0)))  # rolls back the others
        except _OverLimit as refused:
            return refused.over
        return None

    async def adjust_tokens(self, day: str, scopes: Sequence[str], change: int) -> None:
        """Add `change` (negative to give back) to each scope's day, whatever the limits."""
        async with self._write() as conn:
            for scope in sorted(scopes):
                await conn.execute(
                    update(token_days)
                    .where(token_days.c.scope == scope, token_days.c.day == day)
                    .values(tokens=token_days.c.tokens + change)
                )

    async def spent(self, scope: str, day: str) -> int:
        """Tokens counted in a scope on a day."""
        async with self._read() as conn:
            found = await conn.execute(
                select(token_days.c.tokens).where(token_days.c.scope == scope, token_days.c.day == day)
            )
            return int(found.scalar() or 0)

    async def forget_counts(self, before_day: str, idle_since: float) -> None:
        """Drop token days before `before_day`, and message scopes idle since `idle_since`."""
        async with self._write() as conn:
            await conn.execute(delete(token_days).where(token_days.c.day < before_day))
            idle = select(rate_scopes.c.scope).where(rate_scopes.c.touched < idle_since)
            await conn.execute(delete(rate_events).where(rate_events.c.scope.in_(idle)))
            await conn.execute(delete(rate_scopes).where(rate_scopes.c.touched < idle_since))

    # --- inside ----------------------------------------------------------------------------------

    @staticmethod
    def _insert(conn: AsyncConnection, table: Table) -> Any:
        return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._one_writer is None:
            async with self._writer.begin() as conn:
                yield conn
            return
        async with self._one_writer, self._writer.begin() as conn:
            yield conn

    def _now(self) -> dt.datetime:
        # Strictly increasing within the process, so "newest first" never ties.
        now = dt.datetime.now(dt.UTC)
        if now <= self._last_time:
            now = self._last_time + dt.timedelta(microseconds=1)
        self._last_time = now
        return now

    async def _claim(self, conn: AsyncConnection, owner: str, conversation_id: str) -> None:
        # Marks the conversation updated, and on PostgreSQL locks its row until the commit, so
        # writes to one conversation go one at a time and a delete cannot interleave.
        result = await conn.execute(
            update(conversations)
            .where(conversations.c.id == conversation_id, conversations.c.owner == owner)
            .values(updated_at=self._now())
        )
        _found(result.rowcount, conversation_id)

    @staticmethod
    def _infos() -> Any:
        count = (
            select(func.count())
            .select_from(exchanges)
            .where(exchanges.c.conversation_id == conversations.c.id)
            .scalar_subquery()
        )
        return select(
            conversations.c.id,
            conversations.c.owner,
            conversations.c.title,
            conversations.c.created_at,
            conversations.c.updated_at,
            count.label("exchange_count"),
        )

    async def _upgrade(self) -> int:
        async with self._write() as conn:
            if conn.dialect.name == "postgresql":  # one upgrader at a time across processes
                await conn.execute(text("SELECT pg_advisory_xact_lock(7264011)"))
            await conn.run_sync(lambda sync: schema_version.create(sync, checkfirst=True))
            current = (await conn.execute(select(func.max(schema_version.c.version)))).scalar() or 0
            if current > SCHEMA_VERSION:
                raise ChatError(
                    ErrorKind.CONFIG,
                    f"The database is at schema version {current}, newer than this app's "
                    f"{SCHEMA_VERSION}: upgrade the app.",
                    version=current,
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                await conn.run_sync(UPGRADES[version - 1])
                await conn.execute(schema_version.insert().values(version=version, applied_at=self._now()))
            return SCHEMA_VERSION

    async def _gone(self, conn: AsyncConnection, replicas: set[str | None]) -> set[str | None]:
        # SQLite serves one process: every other name is an earlier run's. On PostgreSQL a replica
        # is gone when nobody holds its lock; the lock taken to find out goes with the transaction.
        if conn.dialect.name != "postgresql":
            return {replica for replica in replicas if replica != self.replica}
        gone: set[str | None] = set()
        for replica in replicas:
            if replica is None:
                gone.add(replica)  # saved before replicas were named (schema version 2)
            elif replica != self.replica:
                taken = await conn.execute(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": presence_key(replica)}
                )
                if taken.scalar():
                    gone.add(replica)
        return gone


def _exchange_row(exchange: Exchange, replica: str | None) -> dict[str, Any]:
    return {
        "streamed_by": None if exchange.status.ended else replica,
        "exchange_id": exchange.id,
        "status": exchange.status.value,
        "prompt_search": exchange.prompt.text.replace(
            "\x00", ""
        ).casefold(),  # PostgreSQL's text keeps no NUL
        "answer_search": exchange.text.replace("\x00", "").casefold(),
        "record": exchange.to_dict(),
    }


def _info(row: Any) -> ConversationInfo:
    return ConversationInfo(
        id=row.id,
        owner=row.owner,
        title=row.title,
        created_at=row.created_at,
        updated_at=row.updated_at,
        exchange_count=int(row.exchange_count),
    )


class _OverLimit(Exception):
    def __init__(self, over: OverLimit) -> None:
        self.over = over


def not_found(conversation_id: str) -> ChatError:
    """The error for a conversation this owner does not have (another owner's, or none at all)."""
    return ChatError(ErrorKind.NOT_FOUND, "There is no such conversation.", conversation_id=conversation_id)


def _found(rowcount: int, conversation_id: str) -> None:
    if rowcount == 0:
        raise not_found(conversation_id)
