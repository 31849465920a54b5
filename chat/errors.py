"""The one exception type the UI shows, and the translation of SDK failures into it."""

from __future__ import annotations

import email.utils
import logging
import math
import time
from typing import TYPE_CHECKING

import anthropic
import httpx2

if TYPE_CHECKING:
    from chat.config import Settings

log = logging.getLogger(__name__)

SET_KEY_HINT = "Set ANTHROPIC_API_KEY in .env (or your Space's secrets) and restart."
KEPT = "The partial answer is kept; press Retry to ask again."
UNEXPECTED = "Something went wrong while answering. Try again; the details are in the server log."
CONTEXT_WORDS = ("prompt is too long", "context window", "context limit", "too many tokens")


class ChatError(Exception):
    """A failure with a message fit to show the user as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def explain(exc: BaseException, settings: Settings | None = None) -> ChatError:
    """Turn any failure during a reply into a ChatError; log the details, never the key."""
    if isinstance(exc, ChatError):
        return exc
    message = _known_failure(exc, settings)
    if message is None:
        log.error("unexpected failure during a reply", exc_info=exc)
        return ChatError(UNEXPECTED)
    log.warning("reply failed: %s: %s", type(exc).__name__, exc)
    return ChatError(message)


def _known_failure(exc: BaseException, settings: Settings | None) -> str | None:
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code == 200:
            return _mid_stream_error(exc)
        return _status_error(exc, settings)
    if isinstance(exc, anthropic.APITimeoutError):
        return "Claude did not start answering in time, even after retrying. Try again in a moment."
    if isinstance(exc, anthropic.APIConnectionError):
        return (
            "Could not reach the Anthropic API. Check the network connection "
            "(and ANTHROPIC_BASE_URL, if set), then try again."
        )
    if isinstance(exc, httpx2.TimeoutException):
        waited = f" for {settings.read_timeout:g} seconds" if settings else ""
        return f"Claude stopped sending{waited}, so the answer was cut off. {KEPT}"
    if isinstance(exc, httpx2.TransportError):
        return f"The connection to Claude was cut mid-answer. {KEPT}"
    return None


def _mid_stream_error(exc: anthropic.APIStatusError) -> str:
    if exc.type == "overloaded_error":
        return f"Claude became overloaded mid-answer, so the answer stops here. {KEPT}"
    return f"Claude stopped mid-answer with an error ({exc.type or 'unknown'}). {KEPT}"


def _status_error(exc: anthropic.APIStatusError, settings: Settings | None) -> str:
    code = exc.status_code
    if code in (401, 403):
        return f"The API key was rejected (error {code}). {SET_KEY_HINT}"
    if code == 429:
        return f"The Anthropic API is rate limiting this key (error 429). {_retry_after(exc.response)}"
    if code == 529 or code >= 500:
        retried = " after retrying" if settings is None or settings.max_retries else ""
        return f"Claude is busy right now (error {code}, still failing{retried}). Try again in a minute."
    if code == 404:
        model = f"`{settings.model}`" if settings else "you asked for"
        return (
            f"The model {model} was not found (error 404). Set CHAT_MODEL to a model your key can use, "
            "such as claude-sonnet-5-5 (and check ANTHROPIC_BASE_URL, if set)."
        )
    if code == 413 or (code == 400 and _about_context(exc.api_message)):
        return (
            f"The conversation is too long for the model's context window (error {code}). "
            "Start a new chat, or send a shorter message."
        )
    if code == 400:
        detail = _clip(exc.api_message or "invalid request")
        return (
            f"Claude could not answer (error 400): {detail}. Check CHAT_MODEL, CHAT_MAX_TOKENS "
            "and CHAT_SYSTEM_PROMPT, or rephrase the message."
        )
    return f"Claude could not answer (error {code}). Try again; the details are in the server log."


def _retry_after(response: httpx2.Response) -> str:
    seconds = _retry_after_seconds(response.headers.get("retry-after", ""))
    if seconds is None:
        return "Wait a minute and try again."
    return f"Try again in {seconds} second{'s' * (seconds != 1)}."


def _retry_after_seconds(raw: str) -> int | None:
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - time.time()
    if not math.isfinite(seconds):
        return None
    return max(1, math.ceil(seconds))


def _about_context(api_message: str | None) -> bool:
    text = (api_message or "").lower()
    return any(words in text for words in CONTEXT_WORDS)


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split()).rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."
