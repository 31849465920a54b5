"""How the web server runs: login, pacing and Gradio's own limits, read from the environment once."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from chat import env
from chat.errors import ChatError, ErrorKind
from ui.gradio_fixes import queue_control_guard

# A Space is reached only through Hugging Face's proxy, from its private network: believe the
# client address that proxy forwards (APP_TRUSTED_PROXIES, when set, replaces this).
SPACES_PROXIES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")

MB = 1024 * 1024
CACHE_SWEEP_SECONDS = 600  # how often Gradio looks for files to delete from its cache
CACHE_KEEP_SECONDS = 3600  # and how long after its last use a file stays there

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
    # Login hardening (SECURITY.md): failed logins a minute per client address (0 = no limit), and
    # the reverse proxies whose X-Forwarded-For names the client (none: the peer is the client).
    login_attempts_per_minute: int = 5
    trusted_proxies: tuple[str, ...] = ()
    # The largest upload Gradio accepts (APP_MAX_FILE_MB): a PDF whose base64 fits the API's 32 MB
    # is about 24 MB, and a conversation to load is at most 10 MB.
    max_file_mb: int = 25
    # Markdown images in answers load from where they point only when allowed: each fetch tells
    # that address who is reading, and a URL can carry out what the page shows (SECURITY.md).
    allow_remote_images: bool = False
    # Sessions whose Gradio state (each updated component's config, each gr.State) is kept in
    # memory, the least recently used dropped first: about 0.1 MB each (bench/memory.py). A
    # dropped session's tab sets itself up again from the browser on its next event.
    session_capacity: int = DEFAULT_SESSION_CAPACITY

    def __post_init__(self) -> None:
        trusted_networks(self.trusted_proxies)  # a bad address is refused before anything is served

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
        on_spaces = environ.get("SYSTEM") == "spaces"
        proxies = environ.get("APP_TRUSTED_PROXIES")
        return cls(
            username=username,
            password=password,
            update_interval=env.seconds(environ, "CHAT_UPDATE_INTERVAL", 0.05),
            concurrency_limit=concurrency_limit,
            max_threads=max_threads,
            queue_size=env.positive_int(environ, "APP_QUEUE_SIZE", 200),
            on_spaces=on_spaces,
            login_attempts_per_minute=env.whole_number(environ, "APP_LOGIN_ATTEMPTS_PER_MINUTE", 5),
            trusted_proxies=SPACES_PROXIES
            if proxies is None and on_spaces
            else tuple(entry.strip() for entry in (proxies or "").split(",") if entry.strip()),
            max_file_mb=env.positive_int(environ, "APP_MAX_FILE_MB", 25),
            allow_remote_images=env.flag(environ, "CHAT_ALLOW_REMOTE_IMAGES", default=False),
            session_capacity=env.positive_int(environ, "APP_SESSION_CAPACITY", DEFAULT_SESSION_CAPACITY),
        )

    @property
    def auth(self) -> tuple[str, str] | None:
        """The (username, password) the page asks for, or None when it is open."""
        if self.username and self.password:
            return (self.username, self.password)
        return None


def trusted_networks(entries: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of APP_TRUSTED_PROXIES (an address is a network of one); a bad entry is refused."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError:
            raise ChatError(
                ErrorKind.CONFIG,
                f"APP_TRUSTED_PROXIES must list IP addresses or networks (such as 10.0.0.5 or 10.0.0.0/8), "
                f"separated by commas, not {entry!r}.",
                setting="APP_TRUSTED_PROXIES",
            ) from None
    return networks


def launch_options(server: ServerSettings) -> dict[str, Any]:
    """The launch() options the settings decide: a password when APP_USERNAME/APP_PASSWORD are set,
    the footer's links, and the guard on login attempts and on the queue's Stop and reset routes
    (gradio_fixes fix 8)."""
    guard = queue_control_guard(login_attempts_per_minute=server.login_attempts_per_minute)
    # The footer's "Settings" would be a second Settings beside the chat's own: the API docs and
    # "Built with Gradio" links stay.
    options: dict[str, Any] = {"app_kwargs": {"middleware": [guard]}, "footer_links": ["api", "gradio"]}
    if server.auth is not None:
        options |= {"auth": server.auth, "auth_message": "This chat is password-protected."}
    return options


def start(demo: gr.Blocks, server: ServerSettings, **options: Any) -> None:
    """Start serving (without blocking) with the settings' queue, thread, upload and password limits.

    Gradio refuses an upload over `max_file_mb` while it streams in, and deletes the files it keeps
    (uploads, and its copies of what the page shows or offers) an hour after their last use.
    """
    demo.queue(max_size=server.queue_size, default_concurrency_limit=server.concurrency_limit)
    if demo.delete_cache is None:  # read when launch() builds the server
        demo.delete_cache = (CACHE_SWEEP_SECONDS, CACHE_KEEP_SECONDS)
    allowed: list[str] = []
    page = getattr(demo, "chat_page", None)
    if page is not None:
        page.downloads.sweep()  # what an earlier run left over an hour ago
        # Gradio copies out only files under the working or temp dir, or allowed: the data dir may
        # be elsewhere (a Space's /data). Its folders are content hashes, not guessable names.
        allowed.append(str(page.downloads.root.resolve()))
    with forwarded_for_trusted_from(server.trusted_proxies):
        demo.launch(
            max_threads=server.max_threads,
            max_file_size=server.max_file_mb * MB,
            state_session_capacity=server.session_capacity,
            allowed_paths=[*allowed, *options.pop("allowed_paths", [])],
            prevent_thread_lock=True,
            **launch_options(server),
            **options,
        )


@contextmanager
def forwarded_for_trusted_from(proxies: tuple[str, ...]) -> Iterator[None]:
    """While Gradio builds its uvicorn server, trust X-Forwarded-For only from these proxies.

    uvicorn reads FORWARDED_ALLOW_IPS when its Config is made (inside launch()) and otherwise trusts
    127.0.0.1: any local caller could then name any address. Empty trusts no one.
    """
    previous = os.environ.get("FORWARDED_ALLOW_IPS")
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(proxies)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["FORWARDED_ALLOW_IPS"]
        else:
            os.environ["FORWARDED_ALLOW_IPS"] = previous
