"""The page: one ChatInterface over the service, one conversation per browser tab."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path
from typing import Any

import gradio as gr

from chat import ChatError, ChatService, Conversation, Settings, TurnOptions, coalesce, make_client
from chat.errors import explain
from chat.exchange import Exchange, Status
from chat.export import export_json, export_markdown, load_export, loaded_options
from chat.models import ModelChoice, list_models, with_model
from chat.options import EFFORT_LEVELS
from chat.reply import Reply
from ui.gradio_fixes import add_stop_receipt, exchanges_on_screen, last_turn_start, message_box, message_parts
from ui.render import exchange_messages, shown
from ui.server import ServerSettings
from ui.wording import say

log = logging.getLogger("ui")

OFFLINE_NOTE = (
    "**Offline demo model**: replies are canned, not from Claude. "
    "Set `ANTHROPIC_API_KEY` in `.env` and restart to talk to Claude."
)
EFFORT_NOTE = (
    "How hard Claude works: depth versus speed and cost. (There is no temperature: current Claude "
    "models and the API version this SDK speaks reject it.) Settings apply from your next message."
)
DEFAULT_EFFORT = "default"
STOP_WAIT_SECONDS = 5.0


class ChatPage:
    """The page's event handlers, over one service; each tab's conversation is handed in."""

    def __init__(self, service: ChatService, server: ServerSettings) -> None:
        self.service = service
        self.server = server

    async def respond(
        self,
        message: Any,
        history: list[dict[str, Any]],
        conversation: Conversation,
        model: str | None = None,
        system_prompt: str | None = None,
        max_tokens: float | None = None,
        thinking: bool | None = None,
        effort: str | None = None,
    ) -> AsyncIterator[list[gr.ChatMessage]]:
        """Stream one answer into the chat; a failure ends it with a notice box under what arrived.

        The panel's values are named parameters: they are the /chat API's keyword arguments.
        """
        text, files = message_parts(message)
        conversation.keep(exchanges_on_screen(history))
        try:
            options = self.options(model, system_prompt, max_tokens, thinking, effort)
        except ChatError as error:
            exchange = self.service.record(conversation, text, error)
            gr.Warning(say(error))
            yield self.messages(exchange)
            return
        exchange = self.service.record(conversation, text)  # held: Clear or Load may change the list
        try:
            async with (
                self.service.answer(conversation, exchange, text, files, options=options) as reply,
                aclosing(coalesce(reply, self.server.update_interval)) as updates,
            ):
                async for _ in updates:
                    yield self.live_messages(reply)
        except Exception as error:  # explain() logs the details and keeps them off the page
            explained = explain(error)
            gr.Warning(say(explained))
            exchange.error = exchange.error or explained  # a failure of ours, after the reply ended
        yield self.messages(exchange, conversation)

    def options(
        self,
        model: str | None = None,
        system_prompt: str | None = None,
        max_tokens: float | None = None,
        thinking: bool | None = None,
        effort: str | None = None,
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
        )

    def live_messages(self, reply: Reply) -> list[gr.ChatMessage]:
        """A streaming reply as chat messages."""
        return exchange_messages(shown(reply.exchange, reply.content, reply.timings))

    def messages(self, exchange: Exchange, conversation: Conversation | None = None) -> list[gr.ChatMessage]:
        """An ended exchange as chat messages, with its receipt."""
        spend = conversation.spend if conversation is not None else None
        return exchange_messages(shown(exchange), self.service.prices, spend)

    async def redraw_stopped(self, history: list[dict[str, Any]], conversation: Conversation) -> Any:
        """After Stop, redraw the stopped answer with its receipt, if the screen still ends with it."""
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
            return gr.skip()  # the screen moved on (an undo, say)
        start = last_turn_start(history)
        users = [m for m in history[start:] if m.get("role") == "user"]
        return [*history[:start], *users, *self.messages(reply.exchange, conversation)]

    def export(
        self,
        history: list[dict[str, Any]],
        conversation: Conversation,
        model: str | None = None,
        system_prompt: str | None = None,
        max_tokens: float | None = None,
        thinking: bool | None = None,
        effort: str | None = None,
    ) -> Any:
        """Write the conversation as the exact JSON export and a Markdown transcript; offer both.

        It exports what the screen's history shows: an answer still streaming is not part of it yet.
        """
        conversation = Conversation(conversation.exchanges[: exchanges_on_screen(history)])
        try:
            options = self.options(model, system_prompt, max_tokens, thinking, effort)
        except ChatError:
            options = conversation.options(self.service.settings.defaults)
        folder = Path(tempfile.mkdtemp(prefix="chat-export-"))
        markdown, payload = folder / "conversation.md", folder / "conversation.json"
        markdown.write_text(export_markdown(conversation), encoding="utf-8")
        payload.write_text(export_json(self.service, conversation, options), encoding="utf-8")
        return gr.File(value=[str(markdown), str(payload)], visible=True)

    def load(self, path: str, conversation: Conversation) -> tuple[Any, ...]:
        """Continue a conversation from a JSON export: show it, take its options, make it this tab's."""
        try:
            exchanges = load_export(Path(path).read_bytes(), self.service.files, Path(path).name)
        except ChatError as error:
            raise gr.Error(say(error)) from error
        screen = self.screen(exchanges, None)
        options = loaded_options(exchanges, self.service.settings.defaults, self.service.models)
        conversation.clear()
        conversation.replace(exchanges)
        panel = (
            options.model,
            options.system_prompt,
            options.max_tokens,
            options.thinking,
            options.effort or DEFAULT_EFFORT,
        )
        return (screen, screen, conversation, *panel)

    def screen(self, exchanges: Sequence[Exchange], conversation: Conversation | None) -> list[Any]:
        """Chat messages showing whole exchanges, their files copied out under their own names."""
        folder = Path(tempfile.mkdtemp(prefix="chat-load-"))
        messages: list[Any] = []
        for number, exchange in enumerate(exchanges, start=1):
            paths = []
            for index, ref in enumerate(exchange.prompt.files, start=1):
                if not self.service.files.path(ref.sha256).exists():
                    continue  # gone from the data folder: the history says so to Claude
                name = Path(ref.name).name.strip(". ") or "file"
                path = folder / f"turn-{number}" / str(index) / name  # two files may share a name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.service.files.read(ref))
                paths.append({"path": str(path)})
            text = [exchange.prompt.text] if exchange.prompt.text.strip() else []
            messages.append({"role": "user", "content": [*paths, *text]})
            messages += self.messages(exchange, conversation)
        return messages

    def clear(self, conversation: Conversation) -> None:
        """The chat was cleared: its exchanges and running cost go."""
        conversation.clear()


def available_models(settings: Settings) -> list[ModelChoice]:
    """The models to offer, asked of the API once at start (the built-in list if it cannot say)."""

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
    ]


def build_demo(service: ChatService, server: ServerSettings | None = None) -> gr.Blocks:
    """The whole page: one chat, one conversation per browser tab."""
    server = server or ServerSettings()
    page = ChatPage(service, server)
    settings = service.settings
    models = list(service.models.values())
    description = (
        OFFLINE_NOTE
        if settings.offline
        else f"Model: `{settings.defaults.model}` ({settings.client.backend}; change it in Settings)"
    )
    hidden: dict[str, Any] = {"api_visibility": "undocumented"}
    with gr.Blocks(title="Claude chat") as demo:
        conversation = gr.State(service.conversation_factory())  # called once per tab: each gets its own
        panel = settings_panel(settings.defaults, models)
        interface = gr.ChatInterface(
            page.respond,
            additional_inputs=[conversation, *panel],
            additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False),
            editable=True,
            api_name="chat",
            multimodal=True,
            textbox=message_box(),
            concurrency_limit=server.concurrency_limit,
            title="Claude chat",
            description=description,
        )
        add_export_controls(interface, page, conversation, panel)
        add_stop_receipt(interface, page.redraw_stopped, [conversation])
        interface.chatbot.clear(page.clear, [conversation], None, queue=False, **hidden)
    return demo


def add_export_controls(
    interface: gr.ChatInterface, page: ChatPage, conversation: gr.State, panel: list[gr.components.Component]
) -> None:
    """Buttons that download the conversation (Markdown and JSON) and load a JSON export back."""
    with gr.Row():
        export_button = gr.Button("Export conversation", size="sm")
        load_button = gr.UploadButton("Load conversation (.json)", file_types=[".json"], size="sm")
    exported = gr.File(label="Exported conversation", file_count="multiple", visible=False)
    history = interface.chatbot_state
    export_button.click(page.export, [history, conversation, *panel], [exported], api_name="export")
    load_button.upload(
        page.load,
        [load_button, conversation],
        [interface.chatbot, history, conversation, *panel],
        api_name="load",
    )
