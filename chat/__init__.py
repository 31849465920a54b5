"""A streaming Claude chat service: no UI inside, the Anthropic client handed in.

Build a `ChatService` once (client, settings, models, guards), ask it for a `Conversation`
per visitor, and stream each answer with `service.stream_reply(conversation, ...)`; every exchange is
recorded as plain data (`Exchange`), from which history, export and every screen derive.
"""

from chat.client import make_client
from chat.config import ClientSettings, Guards, Settings
from chat.conversation import Conversation
from chat.errors import ChatError, ErrorKind
from chat.exchange import Exchange, Prompt, Status
from chat.limits import StreamSlots
from chat.options import TurnOptions
from chat.pacing import coalesce
from chat.reply import BlockDelta, Reply, TextDelta, ThinkingDelta
from chat.service import ChatService

__all__ = [
    "BlockDelta",
    "ChatError",
    "ChatService",
    "ClientSettings",
    "Conversation",
    "ErrorKind",
    "Exchange",
    "Guards",
    "Prompt",
    "Reply",
    "Settings",
    "Status",
    "StreamSlots",
    "TextDelta",
    "ThinkingDelta",
    "TurnOptions",
    "coalesce",
    "make_client",
]
