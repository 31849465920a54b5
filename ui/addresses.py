"""The client address every per-address guard counts by.

It is the TCP peer, or the address a trusted reverse proxy forwarded (APP_TRUSTED_PROXIES):
ui/server.py `start()` tells uvicorn which proxies to believe, so `request.client.host` is already
the right one here.
"""

from __future__ import annotations

import gradio as gr


def client_address(request: gr.Request | None) -> str | None:
    """The visitor's address (the peer, or what a trusted proxy forwarded); None without a request."""
    client = getattr(request, "client", None) if request is not None else None
    return getattr(client, "host", None) or None
