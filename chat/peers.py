"""What the replicas sharing one PostgreSQL database tell each other, over LISTEN/NOTIFY.

Two kinds of news, each naming conversations: `stop` (whoever streams its answer, stop it) and
`changed` (its stored exchanges changed: drop a cached copy, and look again if you follow its
answer). A process alone with its database (SQLite) has nobody to tell: `Alone` says nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import asyncpg

from chat.store import database_url

log = logging.getLogger(__name__)

CHANNEL = "chat_replicas"
PAYLOAD_LIMIT = 7900  # bytes: PostgreSQL refuses a notification payload of 8000 or more


class News(enum.Enum):
    """What one replica tells the others about some conversations."""

    STOP = "stop"
    CHANGED = "changed"


@dataclasses.dataclass(frozen=True)
class Notice:
    """News about some conversations, from one replica."""

    news: News
    conversations: tuple[str, ...]
    sender: str


Listener = Callable[[Notice], None]


class Peers(Protocol):
    """The other replicas of this process's database, as far as it can tell them things."""

    async def tell(self, news: News, conversations: Sequence[str]) -> None:
        """Tell every other replica this news about these conversations."""

    async def close(self) -> None:
        """Stop listening."""


class Alone:
    """The peers of a process that has its database to itself: nobody to tell, nothing to hear."""

    async def tell(self, news: News, conversations: Sequence[str]) -> None:
        """Tell every other replica this news (here: nobody)."""

    async def close(self) -> None:
        """Stop listening."""


class PostgresPeers:
    """The replicas on one PostgreSQL database, told and heard on one channel of its own connection."""

    def __init__(self, connection: asyncpg.Connection, replica: str, listener: Listener) -> None:
        self.replica = replica
        self._connection = connection
        self._listener = listener
        self._one_at_a_time = asyncio.Lock()  # one connection runs one query at a time

    @classmethod
    async def open(cls, url: str, replica: str, listener: Listener) -> PostgresPeers:
        """Connect to the database at this URL and hear what the other replicas tell (not our own)."""
        dsn = database_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn)
        peers = cls(connection, replica, listener)
        connection.add_termination_listener(peers._lost)
        await connection.add_listener(CHANNEL, peers._heard)
        return peers

    async def tell(self, news: News, conversations: Sequence[str]) -> None:
        """Tell every other replica this news about these conversations (in as many notifications as fit)."""
        for payload in payloads(news, conversations, self.replica):
            try:
                async with self._one_at_a_time:
                    await self._connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                log.exception("could not tell the other replicas: %s", news.value)
                return

    async def close(self) -> None:
        """Stop listening and close the connection."""
        self._connection.remove_termination_listener(self._lost)
        await self._connection.close()

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        notice = parse(payload)
        if notice is None:
            log.warning("ignored a notification on %s that is not ours: %.80r", CHANNEL, payload)
        elif notice.sender != self.replica:
            self._listener(notice)

    def _lost(self, _connection: object) -> None:
        log.error(
            "lost the connection that hears the other replicas: Stop and following an answer "
            "across replicas no longer work until this replica restarts"
        )


def payloads(news: News, conversations: Sequence[str], sender: str) -> list[str]:
    """The notification payloads carrying this news: each under PostgreSQL's size limit."""
    batches: list[list[str]] = [[]]
    size = len(json.dumps({"news": news.value, "conversations": [], "sender": sender}))
    for conversation_id in dict.fromkeys(conversations):
        cost = len(json.dumps(conversation_id)) + 2  # and its ", "
        if batches[-1] and size + cost > PAYLOAD_LIMIT:
            batches.append([])
            size = len(json.dumps({"news": news.value, "conversations": [], "sender": sender}))
        batches[-1].append(conversation_id)
        size += cost
    return [
        json.dumps({"news": news.value, "conversations": batch, "sender": sender})
        for batch in batches
        if batch
    ]


def parse(payload: str) -> Notice | None:
    """The notice in a payload, or None when it is not one of ours."""
    try:
        message = json.loads(payload)
        return Notice(
            News(message["news"]), tuple(str(c) for c in message["conversations"]), str(message["sender"])
        )
    except (ValueError, KeyError, TypeError):
        return None
