"""The Gradio UI: a ChatInterface that streams Claude's answer from the `chat` service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gradio as gr
from dotenv import load_dotenv
from gradio.components.multimodal_textbox import MultimodalData

from chat import ChatError, ChatSession, Settings, coalesce, make_client
from chat.attachments import ACCEPTED_SUFFIXES
from chat.config import EFFORT_LEVELS
from chat.errors import explain
from chat.export import conversation_json, conversation_markdown, load_conversation, shown_messages
from chat.history import message_parts
from chat.models import ModelChoice, list_models, with_model
from chat.options import TurnOptions
from chat.view import Box, ReplyView, unmarked_stopped_turn

log = logging.getLogger("app")

NOTICE_TITLE = "\u26a0\ufe0f Error"

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


async def respond(
    message: dict[str, Any] | str,
    history: list[dict[str, Any]],
    session: ChatSession,
    model: str | None = None,
    system_prompt: str | None = None,
    max_tokens: float | None = None,
    thinking: bool | None = None,
    effort: str | None = None,
) -> AsyncIterator[list[gr.ChatMessage]]:
    """Stream one answer into the chat: a thinking box, the answer, then its receipt.

    A failure ends the reply with a notice box under whatever had arrived.
    """
    text, files = message_parts(message)
    reply = None
    try:
        options = turn_options(session.settings, model, system_prompt, max_tokens, thinking, effort)
        session.sync(history)
        async with session.stream_reply(text, files, options=options) as reply:
            async for _ in coalesce(reply, session.settings.update_interval):
                yield chat_messages(session.view(reply))
        yield chat_messages(session.view(reply))
    except Exception as error:  # explain() logs the details and keeps them off the page
        notice = explain(error, session.settings).message
        gr.Warning(notice)
        shown = chat_messages(session.view(reply)) if reply is not None else []
        yield [*shown, notice_message(notice)]


def notice_message(notice: str) -> gr.ChatMessage:
    """A failure notice in a box of its own, under the partial answer.

    Not gr.Error: in Gradio 6.31 it covers the chat with an "Error" overlay and leaves the
    message box disabled. The titled box is display-only, so it is never sent to Claude.
    """
    return gr.ChatMessage(content=notice, metadata={"title": NOTICE_TITLE})


class MessageBoxPayload(MultimodalData):
    """What the message box accepts from the page or a script: text, and a list of files."""

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> MessageBoxPayload:
        """Refuse anything else with a message that says what to send (Gradio's own is generic)."""
        text, files = (obj.get("text"), obj.get("files", [])) if isinstance(obj, dict) else (None, None)
        if not isinstance(text, str) or not isinstance(files, list):
            raise gr.Error('The message must be text: send {"text": "...", "files": []}.')
        return super().model_validate(obj, **options)


def guard_message_box(textbox: gr.MultimodalTextbox) -> None:
    """Make the message box refuse malformed API payloads clearly and read a missing one as blank."""
    textbox.data_model = MessageBoxPayload
    preprocess = textbox.preprocess
    # Gradio's own preprocess passes None on, and ChatInterface then fails with an AttributeError.
    textbox.preprocess = lambda payload: (
        preprocess(payload) if payload is not None else {"text": "", "files": []}
    )


def turn_options(
    settings: Settings,
    model: str | None,
    system_prompt: str | None,
    max_tokens: float | None,
    thinking: bool | None,
    effort: str | None,
) -> TurnOptions:
    """The settings panel's values for this turn (a value left empty takes the environment's default)."""
    defaults = TurnOptions.from_settings(settings)
    if max_tokens is not None and float(max_tokens).is_integer():
        max_tokens = int(max_tokens)
    return TurnOptions(
        model=model or defaults.model,
        max_tokens=defaults.max_tokens if max_tokens is None else max_tokens,  # type: ignore[arg-type]
        system_prompt=defaults.system_prompt if system_prompt is None else system_prompt.strip(),
        thinking=defaults.thinking if thinking is None else thinking,
        effort=defaults.effort if effort in (None, "") else (None if effort == DEFAULT_EFFORT else effort),
        prompt_caching=defaults.prompt_caching,
    )


def chat_messages(view: ReplyView) -> list[gr.ChatMessage]:
    """A reply's view as chat messages; every box gets a metadata title, so it is never sent back."""
    messages = [box_message(view.thinking)] if view.thinking else []
    if view.answer:
        messages.append(gr.ChatMessage(content=view.answer))
    return messages + [box_message(note) for note in view.notes]


def box_message(box: Box) -> gr.ChatMessage:
    """One display-only box as a collapsible chat message."""
    metadata: dict[str, Any] = {"title": box.title}
    if box.log:
        metadata["log"] = box.log
    if box.status:
        metadata["status"] = box.status
    if box.duration is not None:
        metadata["duration"] = box.duration
    return gr.ChatMessage(content=box.body, metadata=metadata)  # type: ignore[arg-type]


async def show_stop_receipt(shown: list[dict[str, Any]], session: ChatSession) -> Any:
    """After Stop, redraw the stopped answer with its receipt: the closed generator cannot yield it.

    Gradio keeps the last value the generator yielded; this second Stop listener waits for the
    reply to end, then replaces the last turn on screen with the stopped reply's view (a
    follow-up copies the screen into ChatInterface's history state, after its own sync ran).
    It leaves the screen alone if the last turn is not that reply.
    """
    reply = session.last_reply
    if reply is None or not await reply.wait_until_ended(STOP_WAIT_SECONDS):
        return gr.skip()
    start = unmarked_stopped_turn(shown, reply)
    if start is None:
        return gr.skip()
    return [*shown[: start + 1], *chat_messages(session.view(reply))]


def same_messages(shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat's messages as they are: copies the screen into ChatInterface's history state."""
    return shown


def forget_spend(session: ChatSession) -> None:
    """The chat was cleared: its running cost starts again."""
    session.forget_spend()


def available_models(settings: Settings) -> list[ModelChoice]:
    """The models to offer, asked of the API once at start (the built-in list if it cannot say)."""

    async def ask() -> list[ModelChoice]:
        client = make_client(settings)  # its own client: this runs on a throwaway event loop
        try:
            return await list_models(client)
        finally:
            await client.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return with_model(pool.submit(asyncio.run, ask()).result(), settings.model)


def settings_panel(settings: Settings, models: Sequence[ModelChoice]) -> list[gr.components.Component]:
    """The settings inputs, in respond's order; their values start from the environment."""
    return [
        gr.Dropdown([(m.label, m.id) for m in models], value=settings.model, label="Model", render=False),
        gr.Textbox(
            settings.system_prompt, label="System prompt", lines=3, placeholder="Optional", render=False
        ),
        gr.Number(settings.max_tokens, label="Max tokens", precision=0, render=False),
        gr.Checkbox(settings.thinking, label="Show extended thinking (adaptive)", render=False),
        gr.Dropdown(
            [DEFAULT_EFFORT, *EFFORT_LEVELS],
            value=settings.effort or DEFAULT_EFFORT,
            label="Effort",
            info=EFFORT_NOTE,
            render=False,
        ),
    ]


def build_demo(settings: Settings) -> gr.Blocks:
    """The whole page: one chat, one conversation per browser tab."""
    models = available_models(settings)
    template = ChatSession(make_client(settings), settings, models=models)
    description = (
        OFFLINE_NOTE
        if settings.offline
        else f"Model: `{settings.model}` ({settings.backend}; change it in Settings)"
    )
    hidden: dict[str, Any] = {"api_visibility": "undocumented"}
    with gr.Blocks(title="Claude chat") as demo:
        session = gr.State(template)  # Gradio copies it per tab: each gets its own history
        interface = gr.ChatInterface(
            respond,
            additional_inputs=[session, *settings_panel(settings, models)],
            additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False),
            editable=True,
            api_name="chat",
            multimodal=True,
            textbox=gr.MultimodalTextbox(
                file_types=list(ACCEPTED_SUFFIXES), file_count="multiple", submit_btn=True, stop_btn=True
            ),
            concurrency_limit=settings.concurrency_limit,
            title="Claude chat",
            description=description,
        )
        guard_message_box(interface.textbox)
        add_export_controls(interface, session)
        interface.textbox.stop(
            show_stop_receipt,
            [interface.chatbot, session],
            [interface.chatbot],
            show_progress="hidden",
            concurrency_limit=None,  # it only waits for a stop: never make one tab wait for another
            **hidden,
        ).then(same_messages, [interface.chatbot], [interface.chatbot_state], queue=False, **hidden)
        interface.chatbot.clear(forget_spend, [session], None, queue=False, **hidden)
    return demo


def add_export_controls(interface: gr.ChatInterface, session: gr.State) -> None:
    """Buttons that download the conversation (Markdown and JSON) and load a JSON export back."""
    with gr.Row():
        export_button = gr.Button("Export conversation", size="sm")
        load_button = gr.UploadButton("Load conversation (.json)", file_types=[".json"], size="sm")
    exported = gr.File(label="Exported conversation", file_count="multiple", visible=False)
    history = interface.chatbot_state
    export_button.click(export_conversation, [history, session], [exported], api_name="export")
    load_button.upload(
        load_conversation_file,
        [load_button, session],
        [interface.chatbot, history, session],
        api_name="load",
    )


def export_conversation(history: list[dict[str, Any]], session: ChatSession) -> Any:
    """Write the conversation as Markdown and as the Messages API JSON; offer both for download."""
    session.sync(history)
    folder = Path(tempfile.mkdtemp(prefix="chat-export-"))
    markdown, payload = folder / "conversation.md", folder / "conversation.json"
    markdown.write_text(conversation_markdown(session), encoding="utf-8")
    payload.write_text(conversation_json(session), encoding="utf-8")
    return gr.File(value=[str(markdown), str(payload)], visible=True)


def load_conversation_file(path: str, session: ChatSession) -> tuple[list, list, ChatSession]:
    """Continue a conversation from a JSON export: show it and make it this tab's history."""
    try:
        turns = load_conversation(Path(path).read_bytes(), Path(path).name)
    except ChatError as error:
        raise gr.Error(error.message) from error
    session.turns = turns
    shown = shown_messages(turns, Path(tempfile.mkdtemp(prefix="chat-load-")))
    return shown, shown, session


def launch_options(settings: Settings) -> dict[str, Any]:
    """The launch() options the settings decide: a password when APP_USERNAME/APP_PASSWORD are set."""
    if settings.auth is None:
        return {}
    return {"auth": settings.auth, "auth_message": "This chat is password-protected."}


def start(demo: gr.Blocks, settings: Settings, **options: Any) -> None:
    """Start serving (without blocking) with the settings' queue, thread and password limits."""
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency_limit)
    demo.launch(
        max_threads=settings.max_threads, prevent_thread_lock=True, **launch_options(settings), **options
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; host and port default to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT."""
    parser = argparse.ArgumentParser(description="Run the Claude streaming chat demo.")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public share link")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Load .env, build the app and serve it."""
    load_dotenv()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        settings = Settings.from_env()
        demo = build_demo(settings)  # builds the provider's client: missing extras or credentials fail here
    except ChatError as error:
        raise SystemExit(f"Configuration error: {error.message}") from None
    log.info("model %s (%s)", settings.model, settings.backend)
    if args.share and settings.auth is None and not settings.offline:
        log.warning("share link without a password: anyone with the link chats on your key")
    serve(demo, settings, host=args.host, port=args.port, share=args.share)


def serve(demo: gr.Blocks, settings: Settings, host: str | None, port: int | None, share: bool) -> None:
    """Serve the app until interrupted; say clearly when the share link could not be opened."""
    start(demo, settings, server_name=host, server_port=port, share=share)
    if share and not demo.share_url:
        # Gradio prints why the tunnel failed and carries on serving locally; make that unmissable.
        log.error(
            "Could not open a share link (the tunnel to the share server failed). "
            "The app still serves on %s for this machine only.",
            demo.local_url,
        )
    demo.block_thread()


if __name__ == "__main__":
    main()
