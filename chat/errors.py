"""The one exception type of the service: a kind, the facts, and a plain statement of what happened.

Front ends word the remedy for their own user (the web page says "press Retry", the terminal
does not); `explain` turns any SDK or transport failure into one of these.
"""

from __future__ import annotations

import email.utils
import enum
import logging
import math
import time
from typing import Any

import anthropic
import httpx2
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

CONTEXT_WORDS = ("prompt is too long", "context window", "context limit", "too many tokens")


class ErrorKind(enum.Enum):
    """What went wrong, for a front end to choose its remedy by."""

    CONFIG = "config"  # a setting is wrong: the app cannot start
    REFUSED = "refused"  # the request was refused before anything was sent (blank, too long, bad file)
    BAD_OPTIONS = "bad_options"  # a turn option (model, max tokens, effort) is not allowed
    BAD_EXPORT = "bad_export"  # a conversation file could not be loaded
    RATE_LIMITED = "rate_limited"  # this conversation sends too many messages a minute
    BUDGET_SPENT = "budget_spent"  # the app's daily token budget is used up
    APP_BUSY = "app_busy"  # every stream slot is in use
    VISITOR_BUSY = "visitor_busy"  # this owner has as many answers streaming as allowed
    KEY_REJECTED = "key_rejected"
    API_RATE_LIMITED = "api_rate_limited"
    API_BUSY = "api_busy"
    START_TIMEOUT = "start_timeout"
    UNREACHABLE = "unreachable"
    MODEL_NOT_FOUND = "model_not_found"
    CONTEXT_TOO_LONG = "context_too_long"
    INVALID_REQUEST = "invalid_request"
    API_ERROR = "api_error"
    INTERRUPTED = "interrupted"  # the answer stopped mid-way (overload, cut, stall): the partial is kept
    NOT_FOUND = "not_found"  # no such conversation for this owner (or none at all)
    STORE = "store"  # the conversation store could not be read or written
    UNEXPECTED = "unexpected"


class ChatError(Exception):
    """A failure: its kind, a sentence saying what happened, and the facts behind it."""

    def __init__(self, kind: ErrorKind, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.facts = facts

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data, for the exchange record."""
        return {"kind": self.kind.value, "message": self.message, **self.facts}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatError:
        """An error read back from an exchange record."""
        facts = {k: v for k, v in data.items() if k not in ("kind", "message")}
        try:
            kind = ErrorKind(data.get("kind"))
        except ValueError:
            kind = ErrorKind.UNEXPECTED
        return cls(kind, str(data.get("message", "")), **facts)


def refused(message: str, **facts: Any) -> ChatError:
    """A request refused before anything was sent."""
    return ChatError(ErrorKind.REFUSED, message, **facts)


def explain(
    exc: BaseException, *, model: str | None = None, read_timeout: float | None = None, retries: int = 2
) -> ChatError:
    """Turn any failure during a reply into a ChatError; log the details, never the key."""
    if isinstance(exc, ChatError):
        return exc
    error = _known_failure(exc, model, read_timeout, retries)
    if error is None:
        log.error("unexpected failure during a reply", exc_info=exc)
        return ChatError(ErrorKind.UNEXPECTED, "Something went wrong while answering.")
    log.warning("reply failed: %s: %s", type(exc).__name__, exc)
    return error


def _known_failure(
    exc: BaseException, model: str | None, read_timeout: float | None, retries: int
) -> ChatError | None:
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code == 200:
            return _mid_stream_error(exc)
        return _status_error(exc, model, retries)
    if isinstance(exc, anthropic.APITimeoutError):
        return ChatError(
            ErrorKind.START_TIMEOUT, "Claude did not start answering in time, even after retrying."
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ChatError(
            ErrorKind.UNREACHABLE,
            "Could not reach the Anthropic API. Check the network connection "
            "(and ANTHROPIC_BASE_URL, if set), then try again.",
        )
    if isinstance(exc, SQLAlchemyError):
        return ChatError(ErrorKind.STORE, "The conversation store could not be read or written.")
    if isinstance(exc, httpx2.TimeoutException):
        waited = f" for {read_timeout:g} seconds" if read_timeout else ""
        return _interrupted(f"Claude stopped sending{waited}, so the answer was cut off.", cause="stall")
    if isinstance(exc, httpx2.TransportError):
        return _interrupted("The connection to Claude was cut mid-answer.", cause="connection")
    return None


def ended_early() -> ChatError:
    """The stream ended without the message's end: the answer is cut short."""
    return _interrupted("The answer was cut off: the stream ended early.", cause="ended_early")


def _interrupted(message: str, **facts: Any) -> ChatError:
    return ChatError(ErrorKind.INTERRUPTED, message, **facts)


def _mid_stream_error(exc: anthropic.APIStatusError) -> ChatError:
    if exc.type == "overloaded_error":
        return _interrupted(
            "Claude became overloaded mid-answer, so the answer stops here.", cause="overloaded"
        )
    kind = exc.type or "unknown"
    return _interrupted(f"Claude stopped mid-answer with an error ({kind}).", cause="error_event", error=kind)


def _status_error(exc: anthropic.APIStatusError, model: str | None, retries: int) -> ChatError:
    code = exc.status_code
    if code in (401, 403):
        return ChatError(ErrorKind.KEY_REJECTED, f"The API key was rejected (error {code}).", status=code)
    if code == 429:
        wait = _retry_after_seconds(exc.response.headers.get("retry-after", ""))
        when = (
            "Wait a minute and try again."
            if wait is None
            else f"Try again in {wait} second{'s' * (wait != 1)}."
        )
        message = f"The Anthropic API is rate limiting this key (error 429). {when}"
        return ChatError(ErrorKind.API_RATE_LIMITED, message, status=code, retry_after=wait)
    if code == 529 or code >= 500:
        retried = " after retrying" if retries else ""
        message = f"Claude is busy right now (error {code}, still failing{retried}). Try again in a minute."
        return ChatError(ErrorKind.API_BUSY, message, status=code)
    if code == 404:
        named = f"`{model}`" if model else "you asked for"
        message = f"The model {named} was not found (error 404)."
        return ChatError(ErrorKind.MODEL_NOT_FOUND, message, status=code, model=model)
    if code == 413 or (code == 400 and _about_context(exc.api_message)):
        message = f"The conversation is too long for the model's context window (error {code})."
        return ChatError(ErrorKind.CONTEXT_TOO_LONG, message, status=code)
    if code == 400:
        detail = _clip(exc.api_message or "invalid request")
        return ChatError(
            ErrorKind.INVALID_REQUEST, f"Claude could not answer (error 400): {detail}.", status=code
        )
    return ChatError(ErrorKind.API_ERROR, f"Claude could not answer (error {code}).", status=code)


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
