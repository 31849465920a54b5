"""A conversation with Claude: its history, and the streaming call that extends it."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import anthropic
from anthropic.types import ContentBlockParam, MessageParam

from chat.config import Settings
from chat.errors import ChatError
from chat.history import Turn, messages_for, reconcile, shown_pairs
from chat.limits import StreamSlots
from chat.reply import Reply, ReplyStatus


class ChatSession:
    """One conversation. The client is handed in; the history lives here.

    History policy: a turn is recorded when its reply ends. A complete reply is stored as
    the final message's content blocks (thinking and signatures included). A stopped or
    failed reply keeps the text the user saw as the answer; with no text at all, the turn
    stays on screen but is not sent to Claude again.
    """

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        settings: Settings,
        turns: Sequence[Turn] = (),
        slots: StreamSlots | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.turns: list[Turn] = list(turns)
        self.slots = slots or StreamSlots(settings.max_streams)  # shared by copies: a cap for the app

    def __deepcopy__(self, memo: dict[int, Any]) -> ChatSession:
        # UI frameworks copy the template session per visitor: share client and slots, copy history.
        return ChatSession(self.client, self.settings, copy.deepcopy(self.turns, memo), self.slots)

    @property
    def messages(self) -> list[MessageParam]:
        """The history as Claude will receive it, oldest first."""
        return messages_for(self.turns)

    def sync(self, shown: Sequence[Mapping[str, Any]]) -> None:
        """Match the history to what the screen shows (after retry, undo or edit)."""
        self.turns = reconcile(self.turns, shown_pairs(shown))

    def stream_reply(self, message: str) -> Reply:
        """Start Claude's answer to a message; use it with `async with`."""
        if not message or not message.strip():
            raise ChatError("Type a message first: blank messages are not sent.")
        user: MessageParam = {"role": "user", "content": message}
        request = self.request_for([*self.messages, user])
        return Reply(self.client, request, on_done=lambda reply: self._record(user, reply), slots=self.slots)

    def request_for(self, messages: list[MessageParam]) -> dict[str, Any]:
        """The Messages API arguments for this conversation and settings."""
        request: dict[str, Any] = {
            "model": self.settings.model,
            "max_tokens": self.settings.max_tokens,
            "messages": messages,
        }
        if self.settings.system_prompt:
            request["system"] = self.settings.system_prompt
        return request

    def _record(self, user: MessageParam, reply: Reply) -> None:
        content = _answer_content(reply)
        assistant: MessageParam | None = {"role": "assistant", "content": content} if content else None
        self.turns.append(Turn(user, assistant, str(user["content"]), reply.text))


def _answer_content(reply: Reply) -> list[ContentBlockParam]:
    if reply.status is ReplyStatus.COMPLETE and reply.message is not None:
        blocks = [block.to_dict(exclude_none=True) for block in reply.message.content]
        kept = [b for b in blocks if b.get("type") != "text" or str(b.get("text", "")).strip()]
        return kept if any(b.get("type") == "text" for b in kept) else []  # type: ignore[return-value]
    if reply.text.strip():
        return [{"type": "text", "text": reply.text}]
    return []
