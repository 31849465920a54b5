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
from chat.limits import RateLimit, StreamSlots, TokenBudget
from chat.models import BUILT_IN_MODELS, ModelChoice, catalog
from chat.options import TurnOptions
from chat.reply import Reply, ReplyStatus
from chat.usage import PriceTable, Spend, turn_stats
from chat.view import ReplyView, reply_view

# "summarized" returns the thinking text; newer models default to "omitted" (a signature only).
ADAPTIVE_THINKING = {"type": "adaptive", "display": "summarized"}


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
        models: Sequence[ModelChoice] = BUILT_IN_MODELS,
        prices: PriceTable | None = None,
        *,
        rate_limit: RateLimit | None = None,
        budget: TokenBudget | None = None,
        slots: StreamSlots | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.turns: list[Turn] = list(turns)
        self.rate_limit = rate_limit or RateLimit(settings.rate_limit_per_minute)
        self.budget = budget or TokenBudget(settings.daily_token_budget)
        self.models = catalog(models)
        self.prices = prices if prices is not None else PriceTable.load()
        self.spend = Spend()
        self.last_reply: Reply | None = None
        self.slots = slots or StreamSlots(settings.max_streams)  # shared by copies: a cap for the app

    def __deepcopy__(self, memo: dict[int, Any]) -> ChatSession:
        # UI frameworks copy the template session per visitor: share the client, models, prices,
        # budget and stream slots, copy the history, start a fresh rate limit.
        return ChatSession(
            self.client,
            self.settings,
            copy.deepcopy(self.turns, memo),
            list(self.models.values()),
            self.prices,
            rate_limit=self.rate_limit.fresh(),
            budget=self.budget,
            slots=self.slots,
        )

    @property
    def messages(self) -> list[MessageParam]:
        """The history as Claude will receive it with the default options, oldest first."""
        return messages_for(self.turns, self.settings.system_prompt)

    def sync(self, shown: Sequence[Mapping[str, Any]]) -> None:
        """Match the history to what the screen shows (after retry, undo or edit)."""
        self.turns = reconcile(self.turns, shown_pairs(shown))

    def forget_spend(self) -> None:
        """Start the conversation's running total again (the chat was cleared)."""
        self.spend = Spend()

    def stream_reply(
        self,
        message: str,
        files: Sequence[str | Mapping[str, Any]] = (),
        *,
        options: TurnOptions | None = None,
    ) -> Reply:
        """Start Claude's answer to a message and its files (checked first); use it with `async with`."""
        message = self._checked_message(message, files)
        self.rate_limit.admit()
        self.budget.check()
        options = options or TurnOptions.from_settings(self.settings)
        user = user_message(message, attachment_blocks(files))
        request = self.request_for([*messages_for(self.turns, options.system_prompt), user], options)
        check_request(request)
        names = tuple(Path(file_path(file)).name for file in files)
        reply = Reply(
            self.client,
            request,
            on_done=lambda done: self._record(user, message, names, done, options),
            settings=self.settings,
            slots=self.slots,
        )
        self.last_reply = reply
        return reply

    def request_for(self, messages: list[MessageParam], options: TurnOptions | None = None) -> dict[str, Any]:
        """The Messages API arguments for this conversation and these options."""
        options = options or TurnOptions.from_settings(self.settings)
        model = self.models.get(options.model)
        request: dict[str, Any] = {
            "model": options.model,
            "max_tokens": options.max_tokens,
            "messages": messages,
        }
        if options.prompt_caching:
            request["cache_control"] = {"type": "ephemeral"}  # caches the whole prefix, turn after turn
        if options.system_prompt:
            request["system"] = options.system_prompt
        if options.thinking:
            request["thinking"] = dict(ADAPTIVE_THINKING)
        elif model is not None and model.can_disable_thinking:
            request["thinking"] = {"type": "disabled"}
        if options.effort and model is not None and options.effort in model.effort_levels:
            request["output_config"] = {"effort": options.effort}
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

    def view(self, reply: Reply) -> ReplyView:
        """How a reply of this conversation should show, with its receipt once it has ended."""
        return reply_view(reply, self.prices, self.spend)

    def _record(
        self, user: MessageParam, text: str, files: tuple[str, ...], reply: Reply, options: TurnOptions
    ) -> None:
        self.budget.charge(reply.tokens_used)
        content = _answer_content(reply)
        assistant: MessageParam | None = {"role": "assistant", "content": content} if content else None
        self.turns.append(Turn(user, assistant, text, reply.text, files, system=options.system_prompt))
        if reply.status is not ReplyStatus.FAILED or reply.started_usage is not None:
            self.spend = self.spend.plus(turn_stats(reply, self.prices))


def _answer_content(reply: Reply) -> list[ContentBlockParam]:
    if reply.status is ReplyStatus.COMPLETE and reply.message is not None:
        blocks = [block.to_dict(exclude_none=True) for block in reply.message.content]
        kept = [b for b in blocks if b.get("type") != "text" or str(b.get("text", "")).strip()]
        return kept if any(b.get("type") == "text" for b in kept) else []  # type: ignore[return-value]
    if reply.text.strip():
        return [{"type": "text", "text": reply.text}]
    return []
