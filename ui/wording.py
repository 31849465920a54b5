"""What the web page says about a failure: the service's sentence, then the remedy for a page user."""

from __future__ import annotations

from chat.errors import ChatError, ErrorKind

KEPT = "The partial answer is kept; press Retry to ask again."
REMEDIES = {
    ErrorKind.KEY_REJECTED: "Set ANTHROPIC_API_KEY in .env (or your Space's secrets) and restart.",
    ErrorKind.START_TIMEOUT: "Try again in a moment.",
    ErrorKind.INTERRUPTED: KEPT,
    ErrorKind.MODEL_NOT_FOUND: (
        "Choose another model in Settings, or set CHAT_MODEL to a model your key can use, "
        "such as claude-sonnet-5-5 (and check ANTHROPIC_BASE_URL, if set)."
    ),
    ErrorKind.CONTEXT_TOO_LONG: (
        "Start a new chat, undo earlier turns, send a shorter message, or lower Max tokens in Settings."
    ),
    ErrorKind.INVALID_REQUEST: (
        "Check the model, max tokens and system prompt in Settings, or rephrase the message."
    ),
    ErrorKind.API_ERROR: "Try again; the details are in the server log.",
    ErrorKind.UNEXPECTED: "Try again; the details are in the server log.",
    ErrorKind.BAD_OPTIONS: "Change it in Settings and send again.",
    ErrorKind.STORE: "Try again in a moment; the details are in the server log.",
    ErrorKind.NOT_FOUND: "It may have been deleted: pick another chat in the sidebar.",
}


def say(error: ChatError) -> str:
    """The failure as the page shows it."""
    remedy = REMEDIES.get(error.kind, "")
    return f"{error.message} {remedy}".strip()
