"""The Gradio UI: a ChatInterface that streams Claude's answer from the `chat` service."""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr
from dotenv import load_dotenv

from chat import ChatError, ChatSession, Settings, coalesce, make_client

log = logging.getLogger("app")

OFFLINE_NOTE = (
    "**Offline demo model**: replies are canned, not from Claude. "
    "Set `ANTHROPIC_API_KEY` in `.env` and restart to talk to Claude."
)


async def respond(message: str, history: list[dict[str, Any]], session: ChatSession) -> AsyncIterator[str]:
    """Stream one answer into the chat, as accumulated text."""
    try:
        session.sync(history)
        async with session.stream_reply(message) as reply:
            async for _ in coalesce(reply, session.settings.update_interval):
                yield reply.text
    except ChatError as error:
        raise gr.Error(error.message) from error


def build_demo(settings: Settings) -> gr.Blocks:
    """The whole page: one chat, one conversation per browser tab."""
    template = ChatSession(make_client(settings), settings)
    description = OFFLINE_NOTE if settings.offline else f"Model: `{settings.model}`"
    with gr.Blocks(title="Claude chat") as demo:
        session = gr.State(template)  # Gradio copies it per tab: each gets its own history
        gr.ChatInterface(
            respond,
            additional_inputs=[session],
            api_name="chat",
            concurrency_limit=settings.concurrency_limit,
            title="Claude chat",
            description=description,
        )
    return demo


def serve(demo: gr.Blocks, settings: Settings, **options: Any) -> None:
    """Launch the page with the queue and thread limits from the settings."""
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency_limit)
    demo.launch(max_threads=settings.max_threads, **options)


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
    serve(build_demo(settings), settings, server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
