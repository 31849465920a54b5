"""Run the chat: `python app.py` serves the web page (ui/) over the `chat` service."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

import gradio as gr
from dotenv import load_dotenv

from chat import ChatError, ChatService, Settings
from ui.downloads import use_gradio_cache_under
from ui.page import available_models
from ui.page import build_demo as build_page
from ui.render import NOTICE_TITLE
from ui.server import ServerSettings, start

log = logging.getLogger("app")

__all__ = ["NOTICE_TITLE", "build_demo", "main", "serve", "start", "stop"]


def build_demo(settings: Settings, server: ServerSettings | None = None) -> gr.Blocks:
    """The page for these settings: the service built once (its client, models and files), then the UI."""
    service = ChatService.from_settings(settings, available_models(settings))
    return build_page(service, server)


def stop(demo: gr.Blocks) -> None:
    """Stop serving: answers still streaming are stopped and saved, the store is closed."""
    try:
        demo.chat_page.shutdown()  # type: ignore[attr-defined]
    finally:
        demo.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; host and port default to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT."""
    parser = argparse.ArgumentParser(description="Run the Claude streaming chat demo.")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public share link")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Load .env, build the app and serve it."""
    load_dotenv(Path.cwd() / ".env")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpx2"):  # a line per HTTP request, Gradio's own start-up checks included
        logging.getLogger(chatty).setLevel(logging.WARNING)
    args = parse_args(argv)
    try:
        settings, server = Settings.from_env(), ServerSettings.from_env()
        use_gradio_cache_under(settings.data_dir)  # before the page is built: Gradio reads it then
        demo = build_demo(
            settings, server
        )  # builds the provider's client: missing extras or credentials fail here
    except ChatError as error:
        raise SystemExit(f"Configuration error: {error.message}") from None
    log.info("answering with %s", answerer(settings, demo))
    if args.share and server.auth is None and not settings.offline:
        log.warning("share link without a password: anyone with the link chats on your key")
    serve(demo, server, host=args.host, port=args.port, share=args.share)


def answerer(settings: Settings, demo: gr.Blocks) -> str:
    """Who answers, for the start-up log: the model's name and ID and its backend, or the offline model."""
    if settings.offline:
        return "the offline demo model (no ANTHROPIC_API_KEY set): replies are canned, nothing is billed"
    model = settings.defaults.model
    choice = demo.chat_page.service.models.get(model)  # type: ignore[attr-defined]
    label = choice.label if choice is not None and choice.label != model else None
    return f"{label} ({model}), {settings.client.backend}" if label else f"{model}, {settings.client.backend}"


def serve(demo: gr.Blocks, server: ServerSettings, host: str | None, port: int | None, share: bool) -> None:
    """Serve the app until interrupted; say clearly when the share link could not be opened."""
    # quiet: Gradio's own hints name its launch() arguments, not this app's flags; ours follow.
    start(demo, server, server_name=host, server_port=port, share=share, quiet=True)
    log.info("serving on %s", demo.local_url)
    if not share:
        log.info("for a public link, run: python app.py --share (README: Share a link)")
    elif demo.share_url:
        log.info("public share link: %s (it lasts up to a week, or until this app stops)", demo.share_url)
    else:
        # Gradio prints why the tunnel failed and carries on serving locally; make that unmissable.
        log.error(
            "Could not open a share link (the tunnel to the share server failed). "
            "The app still serves on %s for this machine only.",
            demo.local_url,
        )
    # A service manager stops the app with SIGTERM (systemd, Docker, honcho, a Space restarting):
    # treated as Ctrl-C, so live answers are stopped and saved, not cut off.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        demo.block_thread()
    finally:
        stop(demo)


def interrupt(_signum: int, _frame: object) -> None:
    """Stop serving as Ctrl-C does."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
