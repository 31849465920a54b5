"""A streaming Claude chat service: no UI inside, the Anthropic client handed in."""

from chat.client import make_client
from chat.config import Settings
from chat.errors import ChatError
from chat.limits import StreamSlots
from chat.options import TurnOptions
from chat.pacing import coalesce
from chat.reply import Reply, ReplyStatus, TextDelta, ThinkingDelta
from chat.session import ChatSession

__all__ = [
    "ChatError",
    "ChatSession",
    "Reply",
    "ReplyStatus",
    "Settings",
    "StreamSlots",
    "TextDelta",
    "ThinkingDelta",
    "TurnOptions",
    "coalesce",
    "make_client",
]
