"""The one exception type the UI shows, and the translation of SDK failures into it."""

from __future__ import annotations

import logging

import anthropic
import httpx2

log = logging.getLogger(__name__)

SET_KEY_HINT = "Set ANTHROPIC_API_KEY in .env (or your Space's secrets) and restart."


class ChatError(Exception):
    """A failure with a message fit to show the user as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def explain(exc: BaseException) -> ChatError:
    """Turn any failure during a reply into a ChatError; log the details, not the key."""
    if isinstance(exc, ChatError):
        return exc
    log.warning("reply failed: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return ChatError(f"The API key was rejected. {SET_KEY_HINT}")
    if isinstance(exc, anthropic.RateLimitError):
        return ChatError("Rate limited by the Anthropic API. Wait a moment and try again.")
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code == 529 or getattr(exc, "type", None) == "overloaded_error":
            return ChatError("Claude is overloaded right now. Try again in a moment.")
        return ChatError(f"Claude could not answer (error {exc.status_code}). Try again in a moment.")
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return ChatError("The connection to Claude was lost. The partial answer is kept; try again.")
    log.exception("unexpected failure during a reply", exc_info=exc)
    return ChatError("Something went wrong while answering. The details are in the server log.")
