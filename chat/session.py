"""A conversation with Claude: its history, and the streaming call that extends it."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from anthropic.types import ContentBlockParam, MessageParam

from chat.attachments import attachment_blocks, check_request, file_path
from chat.client import ChatClient
from chat.config import Settings
from chat.errors import ChatError
from chat.history import Turn, messages_for, reconcile, shown_pairs, user_message
from chat.limits import RateLimit, TokenBudget
from chat.reply import Reply, ReplyStatus


class ChatSession:
    """One conversation. The client is handed in; the history lives here.

    History policy: a turn is recorded when its reply ends. A complete reply is stored as
    the final message's content blocks (thinking and signatures included). A stopped or
    failed reply keeps the text the user saw as the answer; with no text at all, the turn
    stays on screen but is not sent to Claude again.

    Spend guards: each session has its own message rate limit; the token budget is shared
    by every copy of a session (one per process when the UI copies a template).
    """

    def __init__(
        self,
        client: ChatClient,
        settings: Settings,
        turns: Sequence[Turn] = (),
        *,
        rate_limit: RateLimit | None = None,
        budget: TokenBudget | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.turns: list[Turn] = list(turns)
        self.rate_limit = rate_limit or RateLimit(settings.rate_limit_per_minute)
        self.budget = budget or TokenBudget(settings.daily_token_budget)

    def __deepcopy__(self, memo: dict[int, Any]) -> ChatSession:
        # UI frameworks copy the template session per visitor: share the client and the
        # budget, copy the history, start a fresh rate limit.
        turns = copy.deepcopy(self.turns, memo)
        return ChatSession(
            self.client, self.settings, turns, rate_limit=self.rate_limit.fresh(), budget=self.budget
        )

    @property
    def messages(self) -> list[MessageParam]:
        """The history as Claude will receive it, oldest first."""
        return messages_for(self.turns)

    def sync(self, shown: Sequence[Mapping[str, Any]]) -> None:
        """Match the history to what the screen shows (after retry, undo or edit)."""
        self.turns = reconcile(self.turns, shown_pairs(shown))

    def stream_reply(self, message: str, files: Sequence[str | Mapping[str, Any]] = ()) -> Reply:
        """Start Claude's answer to a message and its files (checked first); use it with `async with`."""
        message = self._checked_message(message, files)
        self.rate_limit.admit()
        self.budget.check()
        user = user_message(message, attachment_blocks(files))
        request = self.request_for([*self.messages, user])
        check_request(request)
        names = tuple(Path(file_path(file)).name for file in files)
        return Reply(
            self.client,
            request,
            on_done=lambda reply: self._record(user, message, names, reply),
            settings=self.settings,
        )

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

    def _checked_message(self, message: object, files: Sequence[object]) -> str:
        if message is not None and not isinstance(message, str):
            raise ChatError("The message must be text.")
        message = message or ""
        if not message.strip() and not files:
            raise ChatError("Type a message or attach a file first: blank messages are not sent.")
        limit = self.settings.max_input_chars
        if len(message) > limit:
            raise ChatError(
                f"Your message is {len(message):,} characters long; the limit is {limit:,}. "
                "Shorten it and send again: nothing was sent."
            )
        return message

    def _record(self, user: MessageParam, text: str, files: tuple[str, ...], reply: Reply) -> None:
        self.budget.charge(reply.tokens_used)
        content = _answer_content(reply)
        assistant: MessageParam | None = {"role": "assistant", "content": content} if content else None
        self.turns.append(Turn(user, assistant, text, reply.text, files))


def _answer_content(reply: Reply) -> list[ContentBlockParam]:
    if reply.status is ReplyStatus.COMPLETE and reply.message is not None:
        blocks = [block.to_dict(exclude_none=True) for block in reply.message.content]
        kept = [b for b in blocks if b.get("type") != "text" or str(b.get("text", "")).strip()]
        return kept if any(b.get("type") == "text" for b in kept) else []  # type: ignore[return-value]
    if reply.text.strip():
        return [{"type": "text", "text": reply.text}]
    return []
