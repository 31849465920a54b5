"""The Gradio UI: a ChatInterface that streams Claude's answer from the `chat` service."""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import gradio as gr
from dotenv import load_dotenv
from gradio.components.multimodal_textbox import MultimodalData

from chat import ChatError, ChatSession, Settings, make_client
from chat.attachments import ACCEPTED_SUFFIXES
from chat.errors import explain
from chat.export import conversation_json, conversation_markdown, load_conversation, shown_messages
from chat.history import message_parts

log = logging.getLogger("app")

NOTICE_TITLE = "\u26a0\ufe0f Error"

OFFLINE_NOTE = (
    "**Offline demo model**: replies are canned, not from Claude. "
    "Set `ANTHROPIC_API_KEY` in `.env` and restart to talk to Claude."
)


async def respond(
    message: dict[str, Any] | str, history: list[dict[str, Any]], session: ChatSession
) -> AsyncIterator[str | list[gr.ChatMessage]]:
    """Stream one answer into the chat, as accumulated text; a failure ends it with a notice."""
    text, files = message_parts(message)
    shown = ""
    try:
        session.sync(history)
        async with session.stream_reply(text, files) as reply:
            async for _ in reply:
                shown = reply.text
                yield shown
    except Exception as error:  # explain() logs the details and keeps them off the page
        notice = explain(error, session.settings).message
        gr.Warning(notice)
        yield failure_messages(shown, notice)


def failure_messages(shown: str, notice: str) -> list[gr.ChatMessage]:
    """The end of a failed reply: the partial answer, then the notice in a box of its own.

    Not gr.Error: in Gradio 6.31 it covers the chat with an "Error" overlay and leaves the
    message box disabled. The titled box is display-only, so it is never sent to Claude.
    """
    box = gr.ChatMessage(content=notice, metadata={"title": NOTICE_TITLE})
    return [gr.ChatMessage(content=shown), box] if shown else [box]


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


def build_demo(settings: Settings) -> gr.Blocks:
    """The whole page: one chat, one conversation per browser tab."""
    template = ChatSession(make_client(settings), settings)
    description = OFFLINE_NOTE if settings.offline else f"Model: `{settings.model}` ({settings.backend})"
    with gr.Blocks(title="Claude chat") as demo:
        session = gr.State(template)  # Gradio copies it per tab: each gets its own history
        interface = gr.ChatInterface(
            respond,
            additional_inputs=[session],
            api_name="chat",
            multimodal=True,
            textbox=gr.MultimodalTextbox(
                file_types=list(ACCEPTED_SUFFIXES), file_count="multiple", submit_btn=True, stop_btn=True
            ),
            title="Claude chat",
            description=description,
        )
        guard_message_box(interface.textbox)
        add_export_controls(interface, session)
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
    serve(demo, host=args.host, port=args.port, share=args.share, **launch_options(settings))


def serve(demo: gr.Blocks, host: str | None, port: int | None, share: bool, **options: Any) -> None:
    """Serve the app until interrupted; say clearly when the share link could not be opened."""
    demo.queue().launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, **options)
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
