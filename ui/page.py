"""The page: a sidebar of stored conversations beside one ChatInterface, over the service's library.

Each tab holds only its place (`Tab`: whose conversations, which one is open); the conversations
live in the library, which streams every answer in a task of its own and saves it as it grows.
A tab that leaves mid-answer leaves the answer running; opening that conversation again (a
reload, another tab) follows the rest of it live. Stop stops it from any tab of its owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path
from typing import Any

import gradio as gr

from chat import ChatError, ChatService, Conversation, Settings, TurnOptions, make_client
from chat.attachments import file_path
from chat.config import SPACES_DATA_DIR
from chat.errors import ErrorKind, explain
from chat.exchange import Exchange, Status
from chat.export import export_json, export_markdown, loaded_options, loaded_title, printable, read_export
from chat.library import Answering, Library
from chat.models import BUILT_IN_MODELS, ModelChoice, list_models, with_model
from chat.options import EFFORT_LEVELS
from chat.store import ConversationInfo, replica_name, title_for
from ui.addresses import client_address
from ui.downloads import Downloads, content_key
from ui.gradio_fixes import (
    FOOTER_DIVIDER_CSS,
    QUIET,
    STRAY_WAITING_CSS,
    add_stop_receipt,
    after_answers,
    after_sending,
    close_sidebar_on_phones,
    complete_streams_without_resending,
    exchanges_on_screen,
    forget_closed_sessions,
    last_turn_start,
    message_box,
    message_parts,
    page_blocks,
    start_expiry,
    stopped_by_cancel,
)
from ui.render import MESSAGE_CSS, context_meter, exchange_messages, notice_message, shown
from ui.server import ServerSettings
from ui.visitors import (
    Tab,
    browser_secret,
    is_conversation_id,
    is_token,
    new_conversation_id,
    new_token,
    user_owner,
    visitor_owner,
)
from ui.wording import say

log = logging.getLogger("ui")

OFFLINE_NOTE = (
    "**Offline demo model**: replies are canned, not from Claude. "
    "Set `ANTHROPIC_API_KEY` in `.env` and restart to talk to Claude."
)
EPHEMERAL_NOTE = (
    "This Space has no persistent storage, so chats last until it restarts "
    "(turn on persistent storage in the Space's settings to keep them)."
)
EFFORT_NOTE = (
    "How hard Claude works: depth versus speed and cost. (There is no temperature: current Claude "
    "models and the API version this SDK speaks reject it.) Settings apply from your next message."
)
CHAT_LABEL = "Conversation"
CHAT_PLACEHOLDER = (
    "## Ask Claude anything\n\n"
    "Type below, or attach images and PDFs with the paperclip. "
    "Your chats are kept in the sidebar. Or start with one of these:"
)
# Shown on an empty chat; a click sends one (nothing runs at start-up: they are never cached).
STARTER_PROMPTS = (
    "Explain how streaming replies work, in three short paragraphs.",
    "Write a Python function that checks whether a string is a palindrome, with tests.",
    "Search the web: what is the latest news in AI today?",
    "What are the trade-offs between SQLite and PostgreSQL for a small web app?",
)
# The page's whole look: ui/page.css, with the rules of fixes 9, 12 and 14 (ui/gradio_fixes.py).
PAGE_CSS = "\n".join(
    [
        (Path(__file__).parent / "page.css").read_text(encoding="utf-8"),
        MESSAGE_CSS,
        STRAY_WAITING_CSS,
        FOOTER_DIVIDER_CSS,
    ]
)
DEFAULT_EFFORT = "default"
# model, system prompt, max tokens, thinking, effort, web search, web fetch (`ChatPage.options`)
PANEL_SIZE = 7
WEB_SEARCH_NOTE = "Claude may search the web (billed per search) and cite the pages it found."
WEB_FETCH_NOTE = "Claude may read a whole web page or PDF whose address you give or a search found."
UNTITLED = "New chat"
ANSWERING = " · answering"
NOT_SAVED_YET = "Send a message first: a chat is saved, and can be renamed, from its first message."
STOP_WAIT_SECONDS = 5.0
EXPIRE_EVERY_SECONDS = 3600.0
DOWNLOADS_FOLDER = "downloads"  # under the data dir: exports and shown files (ui/downloads.py)
TAB_TTL_SECONDS = 4 * 3600.0  # a tab's place, kept in memory this long after its page loaded


class ChatPage:
    """The page's event handlers over one service and its library (opened on first use)."""

    def __init__(self, service: ChatService, server: ServerSettings) -> None:
        self.service = service
        self.server = server
        self._library: Library | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # Gradio's, where the answers run
        self._opening = asyncio.Lock()
        self._expired_at = -math.inf

    async def library(self) -> Library:
        """The library, opened on Gradio's event loop the first time (its answers run there)."""
        if self._library is None:
            async with self._opening:
                if self._library is None:
                    self._loop = asyncio.get_running_loop()
                    settings = self.service.settings
                    self._library = await Library.open(
                        self.service,
                        settings.database_url,
                        replica_name(settings.replica),
                        max_live_per_owner=settings.guards.max_streams_per_visitor,
                    )
        if time.monotonic() - self._expired_at > EXPIRE_EVERY_SECONDS:
            self._expired_at = time.monotonic()
            try:
                await self._library.expire(self.service.settings.retention_days)
            except Exception:
                log.exception("could not delete expired conversations")
        return self._library

    async def close(self) -> None:
        """Stop every answer still streaming (each is saved), then close the store."""
        if self._library is not None:
            await self._library.close()
            await self._library.store.close()

    def shutdown(self, timeout: float = 10.0) -> None:
        """`close`, from outside Gradio's event loop (a shutdown), waiting at most `timeout` seconds."""
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.close(), self._loop).result(timeout)

    # --- the chat --------------------------------------------------------------------------------

    async def respond(
        self,
        message: Any,
        history: list[dict[str, Any]],
        tab: Tab,
        model: str | None = None,
        system_prompt: str | None = None,
        max_tokens: float | None = None,
        thinking: bool | None = None,
        effort: str | None = None,
        web_search: bool | None = None,
        web_fetch: bool | None = None,
        token: Any = None,
        open_id: Any = None,
        request: gr.Request | None = None,
    ) -> AsyncIterator[list[gr.ChatMessage]]:
        """Stream one answer into the chat; a failure ends it with a notice box under what arrived.

        The panel's values are named parameters: they are the /chat API's keyword arguments.
        `token` and `open_id` are the page's localStorage (its visitor, its open chat); a script
        leaves them out and is a visitor for its session. The answer runs in the library: if this
        tab leaves, it goes on and is saved.
        """
        place(tab, token, open_id, request)
        text, files = message_parts(message)
        owner, conversation_id = tab.owner, tab.conversation_id
        try:
            library = await self.library()
            await library.ensure(owner, conversation_id, self.title(text, files))
            if not (tab.restored and not history):  # after a restart the history state is empty
                await library.keep(owner, conversation_id, exchanges_on_screen(history))
            conversation = await library.conversation(owner, conversation_id)
            try:
                options = self.options(
                    model, system_prompt, max_tokens, thinking, effort, web_search, web_fetch
                )
            except ChatError as error:  # the notice in the chat says it: no toast besides
                yield self.messages(await library.refuse(owner, conversation_id, text, error))
                return
            try:
                live = await library.ask(
                    owner, conversation_id, text, files, options=options, address=client_address(request)
                )
            except ChatError:  # refused: saved as a failed exchange, nothing sent
                yield self.messages(conversation.exchanges[-1])
                return
        except Exception as error:  # the store failed: explain() logs the details
            yield [notice_message(explain(error))]
            return
        try:
            async with aclosing(live.changes(now=False, interval=self.server.update_interval)) as updates:
                async for _ in updates:
                    if tab.conversation_id != conversation_id:
                        return  # this tab switched away: the answer goes on without it
                    shown = self.live_messages(live)
                    if shown:  # nothing yet (it has only just started): the page shows it is waiting
                        yield shown
        except (asyncio.CancelledError, GeneratorExit):
            if stopped_by_cancel():  # Stop, not a tab that left
                await library.stop(owner, conversation_id)
            raise
        exchange = await live.wait()
        if tab.conversation_id == conversation_id:  # a failure ends it with its notice, and no toast
            yield self.messages(exchange, conversation)

    def options(
        self,
        model: str | None = None,
        system_prompt: str | None = None,
        max_tokens: float | None = None,
        thinking: bool | None = None,
        effort: str | None = None,
        web_search: bool | None = None,
        web_fetch: bool | None = None,
    ) -> TurnOptions:
        """The Settings panel's values for this turn (a value left empty takes the default)."""
        defaults = self.service.settings.defaults
        if isinstance(max_tokens, float) and max_tokens.is_integer():
            max_tokens = int(max_tokens)
        return TurnOptions(
            model=model or defaults.model,
            max_tokens=defaults.max_tokens if max_tokens is None else max_tokens,  # type: ignore[arg-type]
            system_prompt=defaults.system_prompt if system_prompt is None else system_prompt.strip(),
            thinking=defaults.thinking if thinking is None else thinking,
            effort=defaults.effort
            if effort in (None, "")
            else (None if effort == DEFAULT_EFFORT else effort),
            prompt_caching=defaults.prompt_caching,
            web_search=defaults.web_search if web_search is None else bool(web_search),
            web_fetch=defaults.web_fetch if web_fetch is None else bool(web_fetch),
            web_tools=defaults.web_tools,
        )

    @staticmethod
    def title(text: str, files: Sequence[Any]) -> str:
        """A new conversation's title: its first message's first line, or its first file's name."""
        if text.strip():
            return title_for(text)
        for file in files:
            path = file.get("path") if isinstance(file, dict) else file
            if path:
                return title_for(Path(str(path)).name)
        return UNTITLED

    def live_messages(self, answer: Answering) -> list[gr.ChatMessage]:
        """An answer still coming (here or on another replica) as chat messages."""
        return exchange_messages(
            shown(answer.exchange, answer.content, answer.timings),
            allow_remote_images=self.server.allow_remote_images,
        )

    def messages(self, exchange: Exchange, conversation: Conversation | None = None) -> list[gr.ChatMessage]:
        """An ended exchange as chat messages, with its receipt."""
        spend = conversation.spend if conversation is not None else None
        return exchange_messages(
            shown(exchange),
            self.service.prices,
            spend,
            allow_remote_images=self.server.allow_remote_images,
            context=self.service.context_after(exchange),
            latest=conversation is None or conversation.exchanges[-1:] == [exchange],
        )

    async def redraw(
        self,
        history: list[dict[str, Any]],
        tab: Tab,
        token: Any = None,
        open_id: Any = None,
        request: gr.Request | None = None,
    ) -> Any:
        """After an answer: redraw a stopped one with its receipt, if the screen still ends with it;
        after a restart, redraw the whole conversation (the page sent only the newest turn)."""
        place(tab, token, open_id, request)
        library = await self.library()
        try:
            conversation = await library.conversation(tab.owner, tab.conversation_id)
        except ChatError:
            return gr.skip()  # not stored: nothing was answered
        if tab.restored:
            tab.restored = False
            live = await library.answering(tab.owner, tab.conversation_id)
            ended = conversation.exchanges if live is None else conversation.exchanges[: live.position]
            return self.screen(ended, conversation)
        reply = conversation.last_reply
        if (
            reply is None
            or not await reply.wait_until_ended(STOP_WAIT_SECONDS)
            or reply.status is not Status.STOPPED
        ):
            return gr.skip()
        index = reply.exchange.context
        current = conversation.exchanges[index] if index < len(conversation.exchanges) else None
        if current is not reply.exchange or exchanges_on_screen(history) != index + 1:
            return gr.skip()  # the screen moved on (an undo, a switch)
        start = last_turn_start(history)
        users = [m for m in history[start:] if m.get("role") == "user"]
        return [*history[:start], *users, *self.messages(reply.exchange, conversation)]

    async def meter(
        self,
        model: str | None,
        tab: Tab,
        token: Any = None,
        open_id: Any = None,
        request: gr.Request | None = None,
    ) -> str:
        """The sidebar's context meter for the open conversation, under the model chosen in Settings."""
        place(tab, token, open_id, request)
        library = await self.library()
        try:
            conversation = await library.conversation(tab.owner, tab.conversation_id)
        except ChatError:
            conversation = self.service.conversation()  # not stored yet: nothing sent
        defaults = self.service.settings.defaults
        options = dataclasses.replace(defaults, model=model) if isinstance(model, str) and model else defaults
        return context_meter(self.service.context(conversation, options))

    async def stop(
        self, tab: Tab, token: Any = None, open_id: Any = None, request: gr.Request | None = None
    ) -> None:
        """Stop the open conversation's answer, from whichever tab of its owner it was asked."""
        place(tab, token, open_id, request)
        await (await self.library()).stop(tab.owner, tab.conversation_id)

    # --- opening a conversation ------------------------------------------------------------------

    async def opened(
        self, tab: Tab, token: Any, open_id: Any, request: gr.Request
    ) -> AsyncIterator[tuple[Any, ...]]:
        """A page load: take the browser's visitor (a new one if it has none), show its open chat."""
        token = token if is_token(token) else new_token()
        tab.owner = tab.conversation_id = ""  # set up anew from the browser
        place(tab, token, open_id, request).restored = False  # the page shows what show() draws
        async for shown_view in self.show(tab, ""):
            yield (token, *shown_view)

    async def switch(
        self,
        chosen: Any,
        query: str,
        tab: Tab,
        token: Any = None,
        open_id: Any = None,
        request: gr.Request | None = None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Open a conversation from the sidebar (following its answer if one is coming)."""
        if isinstance(chosen, str) and chosen:
            tab.conversation_id = chosen
        async for shown_view in self.show(tab, query):
            yield shown_view

    async def new_chat(
        self, query: str, tab: Tab, token: Any = None, open_id: Any = None, request: gr.Request | None = None
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Start a new conversation in this tab (stored once its first message is sent)."""
        tab.conversation_id = new_conversation_id()
        async for shown_view in self.show(tab, query):
            yield shown_view

    async def cleared(
        self, query: str, tab: Tab, token: Any = None, open_id: Any = None, request: gr.Request | None = None
    ) -> tuple[Any, ...]:
        """The chat's own clear button: a new conversation; the old one stays in the sidebar."""
        place(tab, token, open_id, request)
        tab.conversation_id = new_conversation_id()
        return (tab.conversation_id, await self.chat_list(tab, query), UNTITLED)

    async def show(self, tab: Tab, query: str) -> AsyncIterator[tuple[Any, ...]]:
        """The view of the tab's open conversation; then, while its answer streams, that answer."""
        conversation_id = tab.conversation_id
        library = await self.library()
        info = await library.store.get(tab.owner, conversation_id)
        exchanges: list[Exchange] = []
        conversation: Conversation | None = None
        if info is None:  # not stored (yet, or not this owner's): a new chat, under an id of its own
            conversation_id = tab.conversation_id = new_conversation_id()
        else:
            conversation = await library.conversation(tab.owner, conversation_id)
            exchanges = list(conversation.exchanges)
        live = await library.answering(tab.owner, conversation_id)
        # Up to the live exchange's own message (an exchange still answering shows no answer yet):
        # drawn once, its files copied out once, and the live answer drawn under it as it grows.
        earlier = self.screen(exchanges if live is None else exchanges[: live.position + 1], conversation)
        panel = self._panel(exchanges) if exchanges else None
        title = info.title if info is not None else UNTITLED
        screen = earlier if live is None else [*earlier, *self.live_messages(live)]
        yield view(
            screen,
            panel,
            opened=conversation_id,
            chats=await self.chat_list(tab, query),
            title=title,
            answering=live is not None,
        )
        if live is None:
            return
        async with aclosing(live.changes(interval=self.server.update_interval)) as updates:
            async for _ in updates:
                if tab.conversation_id != conversation_id:
                    return  # the tab moved on
                yield view([*earlier, *self.live_messages(live)])
        exchange = await live.wait()
        if tab.conversation_id != conversation_id:
            return
        screen = [*earlier, *self.messages(exchange, conversation)]
        yield view(screen, chats=await self.chat_list(tab, query), answering=False)

    def _panel(self, exchanges: Sequence[Exchange]) -> list[Any]:
        options = loaded_options(exchanges, self.service.settings.defaults, self.service.models)
        return [
            options.model,
            options.system_prompt,
            options.max_tokens,
            options.thinking,
            options.effort or DEFAULT_EFFORT,
            options.web_search,
            options.web_fetch,
        ]

    # --- the sidebar -----------------------------------------------------------------------------

    async def chat_list(self, tab: Tab, query: str | None = None) -> Any:
        """The sidebar's list of the owner's conversations, newest first (matching the search)."""
        library = await self.library()
        infos = await library.list(tab.owner, query)
        choices = [(self._label(library, info), info.id) for info in infos]
        chosen = tab.conversation_id if any(info.id == tab.conversation_id for info in infos) else None
        return gr.Radio(choices=choices, value=chosen)

    @staticmethod
    def _label(library: Library, info: ConversationInfo) -> str:
        return info.title + (ANSWERING if library.live(info.owner, info.id) is not None else "")

    async def sent(
        self,
        message: Any,
        query: str,
        tab: Tab,
        token: Any = None,
        open_id: Any = None,
        request: gr.Request | None = None,
    ) -> tuple[Any, Any]:
        """A message was just sent: list its conversation at once (made now if it is the first).

        `message` is the one ChatInterface saved on the server (not the screen: nothing is uploaded).
        """
        place(tab, token, open_id, request)
        text, files = message_parts(message)
        library = await self.library()
        await library.ensure(tab.owner, tab.conversation_id, self.title(text, files))
        info = await library.store.get(tab.owner, tab.conversation_id)
        return await self.chat_list(tab, query), info.title if info is not None else UNTITLED

    async def search(
        self, query: str, tab: Tab, token: Any = None, open_id: Any = None, request: gr.Request | None = None
    ) -> Any:
        """The list, filtered by the search box's text (after a search, or after an answer)."""
        place(tab, token, open_id, request)
        return await self.chat_list(tab, query)

    async def rename(
        self,
        title: str,
        query: str,
        tab: Tab,
        token: Any = None,
        open_id: Any = None,
        request: gr.Request | None = None,
    ) -> tuple[Any, Any]:
        """Rename the open conversation (it must have a first message to be stored)."""
        place(tab, token, open_id, request)
        library = await self.library()
        try:
            renamed = await library.rename(tab.owner, tab.conversation_id, title)
        except ChatError as error:
            gr.Warning(NOT_SAVED_YET if error.kind is ErrorKind.NOT_FOUND else say(error))
            return gr.skip(), gr.skip()
        return await self.chat_list(tab, query), renamed

    async def delete(
        self, query: str, tab: Tab, token: Any = None, open_id: Any = None, request: gr.Request | None = None
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Delete the open conversation (after the page asked to confirm); open a new one."""
        place(tab, token, open_id, request)
        library = await self.library()
        with contextlib.suppress(ChatError):  # never stored, or already gone: nothing to delete
            await library.delete(tab.owner, tab.conversation_id)
        async for shown_view in self.new_chat(query, tab):
            yield (*shown_view, gr.update(visible=False))

    # --- export and load -------------------------------------------------------------------------

    async def export(
        self,
        history: list[dict[str, Any]],
        tab: Tab,
        model: str | None = None,
        system_prompt: str | None = None,
        max_tokens: float | None = None,
        thinking: bool | None = None,
        effort: str | None = None,
        web_search: bool | None = None,
        web_fetch: bool | None = None,
        token: Any = None,
        open_id: Any = None,
        request: gr.Request | None = None,
    ) -> Any:
        """Write the conversation as the exact JSON export and a Markdown transcript; offer both.

        It exports what the screen's history shows: an answer still streaming is not part of it yet.
        """
        place(tab, token, open_id, request)
        library = await self.library()
        try:
            stored = await library.conversation(tab.owner, tab.conversation_id)
        except ChatError:
            stored = self.service.conversation()  # nothing sent yet
        conversation = Conversation(stored.exchanges[: exchanges_on_screen(history)])
        try:
            options = self.options(model, system_prompt, max_tokens, thinking, effort, web_search, web_fetch)
        except ChatError:
            options = conversation.options(self.service.settings.defaults)
        markdown = export_markdown(conversation).encode("utf-8")
        payload = export_json(self.service, conversation, options).encode("utf-8")
        files = {"conversation.md": markdown, "conversation.json": payload}
        paths = self.downloads.write(content_key(markdown, payload), files)  # the same export: one copy
        return gr.File(value=[str(path) for path in paths])  # offered as download buttons

    async def load(
        self, path: str, tab: Tab, token: Any = None, open_id: Any = None, request: gr.Request | None = None
    ) -> tuple[Any, ...]:
        """Continue a conversation from a JSON export: stored as a new conversation, opened here.

        The file is read and checked in a thread (a large one is seconds of CPU that would stall
        every other tab's stream); what is wrong with it is said, and nothing is stored.
        """
        place(tab, token, open_id, request)
        guards = self.service.settings.guards
        try:
            exchanges = await asyncio.to_thread(
                read_export,
                file_path(path),
                self.service.files,
                max_bytes=guards.max_load_bytes,
                max_messages=guards.max_history_messages,
            )
        except ChatError as error:
            raise gr.Error(say(error)) from error
        try:
            library = await self.library()
            info = await library.adopt(tab.owner, loaded_title(exchanges), exchanges)
        except Exception as failure:  # the store failed: explain() logs the details
            raise gr.Error(say(explain(failure))) from failure
        tab.conversation_id = info.id
        try:
            async with aclosing(self.show(tab, "")) as views:
                return await anext(views)
        except Exception as failure:  # it cannot be shown: take it back rather than keep a broken chat
            log.exception("a loaded conversation could not be shown")
            with contextlib.suppress(ChatError):
                await library.delete(tab.owner, info.id)
            tab.conversation_id = new_conversation_id()
            message = f"{printable(Path(file_path(path)).name)} could not be shown, so nothing was loaded."
            raise gr.Error(message) from failure

    @functools.cached_property
    def downloads(self) -> Downloads:
        """The folder of exports and shown files under the data dir (swept when first used)."""
        return Downloads(self.service.settings.data_dir / DOWNLOADS_FOLDER)

    def screen(self, exchanges: Sequence[Exchange], conversation: Conversation | None) -> list[Any]:
        """Chat messages showing whole exchanges, their files copied out under their own names.

        Each file is copied once (a folder per content, `Downloads`), not again on every redraw.
        """
        messages: list[Any] = []
        for exchange in exchanges:
            paths = []
            for ref in exchange.prompt.files:
                stored = self.service.files.path(ref.sha256)
                try:
                    (path,) = self.downloads.write(ref.sha256, {ref.name: stored})
                except FileNotFoundError:
                    continue  # gone from the data folder: the history says so to Claude
                paths.append({"path": str(path)})
            text = [exchange.prompt.text] if exchange.prompt.text.strip() else []
            messages.append({"role": "user", "content": [*paths, *text]})
            if exchange.status.ended:
                messages += self.messages(exchange, conversation)
        return messages


def place(tab: Tab, token: Any, open_id: Any, request: gr.Request | None) -> Tab:
    """Set up a tab no page load set up (its session is new to this process: after a restart, or
    a script's): the login's user, else the browser's visitor and open chat, else one of its own.
    """
    if not tab.owner:
        username = getattr(request, "username", None)
        if username:
            tab.owner = user_owner(username)
        elif is_token(token):
            tab.owner = visitor_owner(token)
        if tab.owner and not tab.conversation_id and is_conversation_id(open_id):
            tab.conversation_id = open_id
            tab.restored = True
    return tab.settled()


def view(
    screen: list[Any],
    panel: Sequence[Any] | None = None,
    *,
    opened: Any = None,
    chats: Any = None,
    title: Any = None,
    answering: bool | None = None,
) -> tuple[Any, ...]:
    """Values for the view's components (`VIEW_ORDER`), leaving unchanged each one not given."""
    keep = gr.skip()
    return (
        screen,
        screen,  # ChatInterface's history state shows what the screen shows
        *(panel if panel is not None else [keep] * PANEL_SIZE),
        keep if opened is None else opened,
        keep if chats is None else chats,
        keep if title is None else title,
        keep if answering is None else gr.update(visible=answering),
    )


def available_models(settings: Settings) -> list[ModelChoice]:
    """The models to offer, asked of the API once at start (the built-in list if it cannot say).

    The offline model is not asked: it lists the built-in models, and a request to it is only noise.
    """
    if settings.offline:
        return with_model(BUILT_IN_MODELS, settings.defaults.model)

    async def ask() -> list[ModelChoice]:
        client = make_client(settings.client)  # its own client: this runs on a throwaway event loop
        try:
            return await list_models(client)
        finally:
            await client.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return with_model(pool.submit(asyncio.run, ask()).result(), settings.defaults.model)


def settings_panel(defaults: TurnOptions, models: Sequence[ModelChoice]) -> list[gr.components.Component]:
    """The settings inputs, in `ChatPage.options` order; their values start from the defaults."""
    return [
        gr.Dropdown([(m.label, m.id) for m in models], value=defaults.model, label="Model", render=False),
        gr.Textbox(
            defaults.system_prompt, label="System prompt", lines=3, placeholder="Optional", render=False
        ),
        gr.Number(defaults.max_tokens, label="Max tokens", precision=0, render=False),
        gr.Checkbox(defaults.thinking, label="Show extended thinking (adaptive)", render=False),
        gr.Dropdown(
            [DEFAULT_EFFORT, *EFFORT_LEVELS],
            value=defaults.effort or DEFAULT_EFFORT,
            label="Effort",
            info=EFFORT_NOTE,
            render=False,
        ),
        gr.Checkbox(defaults.web_search, label="Web search", info=WEB_SEARCH_NOTE, render=False),
        gr.Checkbox(defaults.web_fetch, label="Web fetch", info=WEB_FETCH_NOTE, render=False),
    ]


def build_demo(service: ChatService, server: ServerSettings | None = None) -> gr.Blocks:
    """The whole page: the sidebar of stored conversations, and the chat of the open one."""
    server = server or ServerSettings()
    page = ChatPage(service, server)
    settings = service.settings
    models = list(service.models.values())
    default_model = service.models.get(settings.defaults.model)
    model_name = default_model.label if default_model is not None else settings.defaults.model
    notes = [
        OFFLINE_NOTE
        if settings.offline
        else f"Model: **{model_name}** ({settings.client.backend}; change it in Settings)"
    ]
    if (
        server.on_spaces
        and settings.database is None
        and not settings.data_dir.is_relative_to(SPACES_DATA_DIR)
    ):
        notes.append(EPHEMERAL_NOTE)
    secret = browser_secret(settings.data_dir)
    with page_blocks(PAGE_CSS, title="Claude chat", fill_height=True) as demo:
        visitor = gr.BrowserState(None, storage_key="claude-chat-visitor", secret=secret)
        opened = gr.BrowserState(None, storage_key="claude-chat-open", secret=secret)
        # Copied per session and changed in place (a follower sees a switch). Not a callable:
        # Gradio would run it on page load, racing the load that sets the visitor. It expires
        # (and its session goes when the tab closes): the next event sets it up from the browser.
        tab = gr.State(Tab(), time_to_live=TAB_TTL_SECONDS)
        start_expiry(demo, tab)
        forget_closed_sessions(demo)
        close_sidebar_on_phones(demo)
        with gr.Sidebar(label="Chats"):
            new_button = gr.Button("New chat", variant="primary", size="sm")
            query = gr.Textbox(placeholder="Search chats", show_label=False, container=False)
            chats = gr.Radio([], label="Chats", elem_id="chat-list")
            title = gr.Textbox(
                UNTITLED, label="Title", info="Press Enter to rename this chat.", elem_id="chat-title"
            )
            meter = gr.Markdown(
                context_meter(service.context(service.conversation())), elem_id="context-meter"
            )
            delete_button = gr.Button("Delete this chat", variant="stop", size="sm")
            with gr.Row(visible=False) as confirm:
                gr.Markdown("Delete this chat for good?")
                really = gr.Button("Delete", variant="stop", size="sm")
                keep = gr.Button("Keep it", size="sm")
        panel = settings_panel(settings.defaults, models)
        additional_inputs = [tab, *panel, visitor, opened]  # the page's storage last: optional for scripts
        interface = gr.ChatInterface(
            page.respond,
            chatbot=gr.Chatbot(
                label=CHAT_LABEL, placeholder=CHAT_PLACEHOLDER, scale=1, elem_id="chat", render=False
            ),
            examples=[
                [{"text": text, "files": []}] + [None] * len(additional_inputs) for text in STARTER_PROMPTS
            ],
            cache_examples=False,  # a click sends one to Claude; nothing is asked at start-up
            run_examples_on_click=True,
            additional_inputs=additional_inputs,
            additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False),
            editable=True,
            api_name="chat",
            multimodal=True,
            textbox=message_box(),
            concurrency_limit=server.concurrency_limit,
            title="Claude chat",
            description="\n\n".join(notes),
            fill_height=True,
        )
        stop_answer = gr.Button("Stop the answer", variant="stop", size="sm", visible=False)
        view = [interface.chatbot, interface.chatbot_state, *panel, opened, chats, title, stop_answer]
        loaded = add_export_controls(interface, page, [tab, visitor, opened], panel, view)
        hidden: dict[str, Any] = {
            "api_visibility": "undocumented",
            "concurrency_limit": None,
            "show_progress": "hidden",
        }
        where = [tab, visitor, opened]  # every handler finds the tab's place from these
        following = [demo.load(page.opened, where, [visitor, *view], **hidden)]
        following.append(
            chats.input(page.switch, [chats, query, *where], view, cancels=following[:], **hidden)
        )
        following.append(
            new_button.click(page.new_chat, [query, *where], view, cancels=following[:], **hidden)
        )
        delete_button.click(lambda: gr.update(visible=True), None, confirm, queue=False, **hidden)
        keep.click(lambda: gr.update(visible=False), None, confirm, queue=False, **hidden)
        deleted = really.click(page.delete, [query, *where], [*view, confirm], cancels=following[:], **hidden)
        query.change(page.search, [query, *where], chats, trigger_mode="always_last", **hidden)
        title.submit(page.rename, [title, query, *where], [chats, title], **hidden)
        stop_answer.click(page.stop, where, None, **hidden)
        interface.textbox.stop(page.stop, where, None, **hidden)
        cleared = interface.chatbot.clear(page.cleared, [query, *where], [opened, chats, title], **hidden)
        after_sending(interface, page.sent, [interface.saved_input, query, *where], [chats, title])
        after_answers(interface, page.search, [query, *where], [chats])
        add_stop_receipt(interface, page.redraw, where)
        complete_streams_without_resending(demo)
        # The meter follows the open conversation: after each answer, each switch, and the model.
        metered = [panel[0], *where]
        after_answers(interface, page.meter, metered, [meter])
        for event in [*following, deleted, cleared, loaded]:
            event.then(page.meter, metered, [meter], **hidden)
        panel[0].change(page.meter, metered, [meter], **hidden)
    demo.chat_page = page  # type: ignore[attr-defined]  # tests and shutdown close its library
    return demo


def add_export_controls(
    interface: gr.ChatInterface,
    page: ChatPage,
    where: list[gr.components.Component],
    panel: list[gr.components.Component],
    view: list[gr.components.Component],
) -> Any:
    """Buttons that download the conversation (Markdown and JSON) and load a JSON export back.

    Returns the load's event (what follows a load chains on it)."""
    with gr.Row():  # side by side, even on a phone
        export_button = gr.Button("Export conversation", size="sm", min_width=100)
        load_button = gr.UploadButton(
            "Load conversation (.json)", file_types=[".json"], size="sm", min_width=100
        )
    with gr.Row(visible=False) as downloads:
        markdown_button = gr.DownloadButton(
            "Download Markdown (.md)", variant="primary", size="sm", min_width=100
        )
        json_button = gr.DownloadButton("Download JSON (.json)", size="sm", min_width=100)
    exported = gr.File(label="Exported conversation", file_count="multiple", visible=False)  # the API's
    history = interface.chatbot_state
    tab, *storage = where
    export_button.click(page.export, [history, tab, *panel, *storage], [exported], api_name="export").then(
        download_buttons, [exported], [downloads, markdown_button, json_button], **QUIET
    )
    # Its progress (and a failure's "Error") shows on the button: the chat stays as it was, and
    # the failure is said once, in its toast.
    return load_button.upload(
        page.load, [load_button, *where], view, api_name="load", show_progress_on=[load_button]
    )


def download_buttons(paths: list[str] | None) -> tuple[Any, Any, Any]:
    """The export's two files as download buttons, shown under Export."""
    by_suffix = {Path(path).suffix: path for path in paths or []}
    return gr.update(visible=bool(by_suffix)), by_suffix.get(".md"), by_suffix.get(".json")
