"""The Gradio UI: a ChatInterface that streams Claude's answer from the `chat` service."""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr
from dotenv import load_dotenv

from chat import ChatError, ChatSession, Settings, make_client
from chat.errors import explain

log = logging.getLogger("app")

NOTICE_TITLE = "\u26a0\ufe0f Error"

OFFLINE_NOTE = (
    "**Offline demo model**: replies are canned, not from Claude. "
    "Set `ANTHROPIC_API_KEY` in `.env` and restart to talk to Claude."
)


async def respond(
    message: str, history: list[dict[str, Any]], session: ChatSession
) -> AsyncIterator[str | list[gr.ChatMessage]]:
    """Stream one answer into the chat, as accumulated text; a failure ends it with a notice."""
    shown = ""
    try:
        session.sync(history)
        async with session.stream_reply(message) as reply:
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


def read_message_box(payload: Any) -> str:
    """The message box's value: None (a bare API call) reads as blank, anything not text is refused."""
    # Without this, Gradio fails on None before respond runs, and str()s any other JSON value.
    if payload is None:
        return ""
    if not isinstance(payload, str):
        raise gr.Error("The message must be text.")
    return payload


def build_demo(settings: Settings) -> gr.Blocks:
    """The whole page: one chat, one conversation per browser tab."""
    template = ChatSession(make_client(settings), settings)
    description = OFFLINE_NOTE if settings.offline else f"Model: `{settings.model}`"
    with gr.Blocks(title="Claude chat") as demo:
        session = gr.State(template)  # Gradio copies it per tab: each gets its own history
        chat = gr.ChatInterface(
            respond,
            additional_inputs=[session],
            api_name="chat",
            title="Claude chat",
            description=description,
        )
        chat.textbox.preprocess = read_message_box  # API callers can send any JSON value
    return demo


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
    except ChatError as error:
        raise SystemExit(f"Configuration error: {error.message}") from None
    log.info("model %s (%s)", settings.model, "offline" if settings.offline else "Anthropic API")
    if args.share and settings.auth is None and not settings.offline:
        log.warning("share link without a password: anyone with the link chats on your key")
    build_demo(settings).queue().launch(
        server_name=args.host, server_port=args.port, share=args.share, **launch_options(settings)
    )


if __name__ == "__main__":
    main()
