"""How the web server runs: login, pacing and Gradio's own limits, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from chat import env
from chat.errors import ChatError, ErrorKind

DEFAULT_SESSION_CAPACITY = 1000


@dataclass(frozen=True)
class ServerSettings:
    """The web server's settings; the password is never shown in a repr."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # Performance and capacity (README "Performance"): how often the page is redrawn, and Gradio's
    # own limits, set on purpose rather than by default.
    update_interval: float = 0.05
    concurrency_limit: int = 100
    max_threads: int = 200
    queue_size: int = 200
    on_spaces: bool = False  # Hugging Face Spaces runs the app (SYSTEM=spaces)
    # Sessions whose Gradio state (each updated component's config, each gr.State) is kept in
    # memory, the least recently used dropped first: about 0.1 MB each (bench/memory.py). A
    # dropped session's tab sets itself up again from the browser on its next event.
    session_capacity: int = DEFAULT_SESSION_CAPACITY

    @classmethod
    def from_env(cls, environ: env.Env | None = None) -> ServerSettings:
        """Read the server settings (see .env.example)."""
        environ = os.environ if environ is None else environ
        username = env.optional(environ, "APP_USERNAME")
        password = environ.get("APP_PASSWORD", "") or None
        if (username is None) != (password is None):
            raise ChatError(
                ErrorKind.CONFIG, "Set both APP_USERNAME and APP_PASSWORD to protect the page, or neither."
            )
        concurrency_limit = env.positive_int(environ, "APP_CONCURRENCY_LIMIT", 100)
        max_threads = env.positive_int(environ, "APP_MAX_THREADS", 2 * concurrency_limit)  # page + /chat API
        if max_threads < concurrency_limit:
            raise ChatError(
                ErrorKind.CONFIG,
                f"APP_MAX_THREADS ({max_threads}) must be at least "
                f"APP_CONCURRENCY_LIMIT ({concurrency_limit}): "
                "Gradio runs no more events at once than it has threads.",
            )
        return cls(
            username=username,
            password=password,
            update_interval=env.seconds(environ, "CHAT_UPDATE_INTERVAL", 0.05),
            concurrency_limit=concurrency_limit,
            max_threads=max_threads,
            queue_size=env.positive_int(environ, "APP_QUEUE_SIZE", 200),
            on_spaces=environ.get("SYSTEM") == "spaces",
            session_capacity=env.positive_int(environ, "APP_SESSION_CAPACITY", DEFAULT_SESSION_CAPACITY),
        )

    @property
    def auth(self) -> tuple[str, str] | None:
        """The (username, password) the page asks for, or None when it is open."""
        if self.username and self.password:
            return (self.username, self.password)
        return None


def launch_options(server: ServerSettings) -> dict[str, Any]:
    """The launch() options the settings decide: a password when APP_USERNAME/APP_PASSWORD are set."""
    if server.auth is None:
        return {}
    return {"auth": server.auth, "auth_message": "This chat is password-protected."}


def start(demo: gr.Blocks, server: ServerSettings, **options: Any) -> None:
    """Start serving (without blocking) with the settings' queue, thread, session and password limits."""
    demo.queue(max_size=server.queue_size, default_concurrency_limit=server.concurrency_limit)
    demo.launch(
        max_threads=server.max_threads,
        state_session_capacity=server.session_capacity,
        prevent_thread_lock=True,
        **launch_options(server),
        **options,
    )
