"""The service: built once per app, it holds what every conversation shares and acts on them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chat.attachments import check_request, file_name, load_attachment
from chat.client import ChatClient, make_client
from chat.config import Settings
from chat.context import ContextUse, context_use, needs_count, tokens_after
from chat.conversation import Conversation
from chat.errors import ChatError, explain, refused
from chat.exchange import Exchange, Prompt, Status
from chat.files import FileRef, FileStore
from chat.history import History, history, user_message
from chat.limits import Caller, Counters, Quota, StreamSlots
from chat.models import BUILT_IN_MODELS, ModelChoice, catalog, context_window
from chat.options import TurnOptions
from chat.reply import Reply, Upstream
from chat.usage import PriceTable, turn_stats

FileInput = str | Path | Mapping[str, Any]


class ChatService:
    """The client, settings, models, prices, files, quota and stream slots of the whole app."""

    def __init__(
        self,
        client: ChatClient,
        settings: Settings | None = None,
        *,
        models: Sequence[ModelChoice] = BUILT_IN_MODELS,
        prices: PriceTable | None = None,
        files: FileStore | None = None,
        quota: Quota | None = None,
    ) -> None:
        self.client = client
        self.settings = settings or Settings()
        guards, client_settings = self.settings.guards, self.settings.client
        self.models = catalog(models)
        self.prices = prices if prices is not None else PriceTable.load()
        self.files = files or FileStore()
        self.quota = quota or Quota(guards.quota)
        self.slots = StreamSlots(guards.max_streams)
        self.upstream = Upstream(
            client,
            self.slots,
            read_timeout=client_settings.read_timeout,
            retries=client_settings.max_retries,
            quota=self.quota,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, models: Sequence[ModelChoice] = BUILT_IN_MODELS
    ) -> ChatService:
        """The service these settings describe: its client built, its files under the data folder."""
        client = make_client(settings.client)
        return cls(client, settings, models=models, files=FileStore(settings.data_dir / "files"))

    def conversation(self, exchanges: Sequence[Exchange] = ()) -> Conversation:
        """A new conversation (continuing these exchanges, if given)."""
        return Conversation(list(exchanges))

    def count_in(self, counters: Counters) -> None:
        """Count rates and budgets in these counters from now on (a store's: shared, kept over restarts)."""
        self.quota = Quota(self.settings.guards.quota, counters)
        self.upstream = dataclasses.replace(self.upstream, quota=self.quota)

    def history(self, conversation: Conversation, options: TurnOptions | None = None) -> History:
        """The messages the next request carries before its prompt, under these options."""
        options = options or self.settings.defaults
        return history(conversation.exchanges, options.system_prompt, self.files, options.server_tool_names)

    def context_window(self, model: str) -> int:
        """How many input tokens this model takes (as models.list said, or as documented)."""
        return context_window(self.models, model)

    def context(self, conversation: Conversation, options: TurnOptions | None = None) -> ContextUse:
        """How full the conversation's context window is, for a next request under these options."""
        options = options or self.settings.defaults
        return context_use(conversation.exchanges, self.context_window(options.model))

    def context_after(self, exchange: Exchange) -> ContextUse | None:
        """How full the context window was once this exchange ended (None: no usage reported)."""
        used = tokens_after(exchange)
        model = str(exchange.request.get("model") or exchange.model)  # the id asked for: a listed one
        return None if used is None else ContextUse(used, self.context_window(model))

    def request(
        self, conversation: Conversation, options: TurnOptions | None = None, prompt: Prompt | None = None
    ) -> dict[str, Any]:
        """The whole Messages API body: these options, the history, and the prompt if given."""
        options = options or self.settings.defaults
        past = self.history(conversation, options)
        request = options.request(self.models.get(options.model))
        messages = list(past.messages)
        if prompt is not None:
            messages.append(user_message(prompt, self.files, past.open_tool_calls))
        request["messages"] = messages
        if past.tools:
            request["tools"] = [*request.get("tools", ()), *past.tools]
            if not options.server_tools:
                request["tool_choice"] = {"type": "none"}  # carried for the history only: none is runnable
            # With server tools on, `none` would stop the search too: Claude may choose again, and the
            # placeholders' descriptions say they cannot be run (a call ends as "Claude asked for a tool").
        return request

    def stream_reply(
        self,
        conversation: Conversation,
        text: object,
        files: Sequence[FileInput] = (),
        *,
        options: TurnOptions | None = None,
        caller: Caller | None = None,
    ) -> Reply:
        """Start Claude's answer to a message and its files; use it with `async with`.

        The exchange is recorded at once. A message refused by its content raises ChatError here;
        one over the caller's rate or budget, or past the model's context window (counted first
        when near it), fails when the reply starts. Either way it is recorded as failed, and
        nothing is sent.
        """
        exchange = self.record(conversation, text)
        return self.answer(conversation, exchange, text, files, options=options, caller=caller)

    def answer(
        self,
        conversation: Conversation,
        exchange: Exchange,
        text: object,
        files: Sequence[FileInput] = (),
        *,
        options: TurnOptions | None = None,
        caller: Caller | None = None,
    ) -> Reply:
        """Start the answer to an exchange just recorded (`record`); as `stream_reply` otherwise."""
        options = self.capped(options or self.settings.defaults)
        try:
            exchange.prompt = Prompt(self._checked_text(text, files), self._stored(files))
            request = self.request(conversation, options, exchange.prompt)
            exchange.request = {key: value for key, value in request.items() if key != "messages"}
            check_request(request, self.settings.guards.max_history_messages)
        except Exception as failure:  # a refusal, or a file that broke a reader: nothing is sent
            error = explain(failure)
            exchange.status, exchange.error = Status.FAILED, error
            raise error from failure
        window = self.context_window(options.model)
        used = context_use(conversation.exchanges[: exchange.context], window).used
        reply = Reply(
            self.upstream,
            request,
            exchange,
            on_end=lambda ended: self._ended(conversation, ended),
            caller=caller or Caller(),
            count_within=window if needs_count(used, request, window) else None,
        )
        conversation.last_reply = reply
        return reply

    def capped(self, options: TurnOptions) -> TurnOptions:
        """The options with max_tokens at most the configured limit (CHAT_MAX_TOKENS), whoever asked."""
        limit = self.settings.defaults.max_tokens
        return options if options.max_tokens <= limit else dataclasses.replace(options, max_tokens=limit)

    def record(self, conversation: Conversation, text: object, error: ChatError | None = None) -> Exchange:
        """Record a new exchange for a message (failed already, with `error`: it was refused)."""
        exchange = Exchange(
            Prompt(text if isinstance(text, str) else ""), {}, context=len(conversation.exchanges)
        )
        if error is not None:
            exchange.status, exchange.error = Status.FAILED, error
        conversation.exchanges.append(exchange)
        return exchange

    def _checked_text(self, text: object, files: Sequence[FileInput]) -> str:
        if text is not None and not isinstance(text, str):
            raise refused("The message must be text.")
        text = text or ""
        if not text.strip() and not files:
            raise refused("Type a message or attach a file first: blank messages are not sent.")
        limit = self.settings.guards.max_input_chars
        if len(text) > limit:
            raise refused(
                f"Your message is {len(text):,} characters long; the limit is {limit:,}. "
                "Shorten it and send again: nothing was sent.",
                length=len(text),
                limit=limit,
            )
        return text

    def _stored(self, files: Sequence[FileInput]) -> tuple[FileRef, ...]:
        refs = []
        for file in files:
            attachment = load_attachment(file)
            refs.append(self.files.put(file_name(file), attachment.media_type, attachment.data))
        return tuple(refs)

    def _ended(self, conversation: Conversation, reply: Reply) -> None:
        exchange = reply.exchange
        if exchange.status is not Status.FAILED or exchange.usage is not None:
            conversation.spend = conversation.spend.plus(turn_stats(exchange, self.prices))
