"""The offline model: a deterministic Claude stand-in behind the real SDK, for demos with no key."""

from __future__ import annotations

from typing import Any

from chat.models import BUILT_IN_MODELS
from chat.wire import (
    Script,
    ScriptedMessage,
    ScriptTransport,
    Stream,
    TextBlock,
    ThinkingBlock,
    split_into_chunks,
)

OFFLINE_MODEL = "offline-demo"


def offline_answer(messages: list[dict[str, Any]]) -> str:
    """The reply the offline model gives to a conversation: the same input, the same words."""
    question = " ".join(_text_of(messages[-1]).split()) if messages else ""
    if len(question) > 120:
        question = question[:117] + "..."
    earlier = (len(messages) - 1) // 2
    turns = "no earlier turns" if earlier == 0 else f"{earlier} earlier turn{'s' * (earlier > 1)}"
    return (
        "This is the offline demo model, not Claude, so the answer is canned. "
        f"You asked: \u201c{question}\u201d. The request carried {turns} of this conversation, "
        "exactly as Claude would receive them. To talk to Claude, set ANTHROPIC_API_KEY in .env "
        "and restart the app. Meanwhile this reply shows how streaming behaves: words arrive a few "
        "at a time, stopping an answer keeps whatever has arrived, and the finished message goes into the "
        "conversation history for the next turn."
    )


def offline_message(request: dict[str, Any]) -> ScriptedMessage:
    """The whole scripted message for one Messages API request body."""
    messages = request.get("messages", [])
    blocks: list[TextBlock | ThinkingBlock] = []
    if (request.get("thinking") or {}).get("type") in {"enabled", "adaptive"}:
        thought = "The user is on the offline model. I will explain that and answer in kind."
        blocks.append(ThinkingBlock(split_into_chunks(thought)))
    blocks.append(TextBlock(split_into_chunks(offline_answer(messages))))
    input_tokens = sum(len(_text_of(m).split()) for m in messages)
    # It answers as itself, whichever model was asked for: the record then says it was not Claude.
    return ScriptedMessage(blocks, model=OFFLINE_MODEL, input_tokens=input_tokens)


def offline_script(delay: float = 0.04) -> Script:
    """The offline model as a script: every request gets its scripted message, paced."""
    return lambda body: Stream.of(offline_message(body), delay=delay)


def offline_transport(delay: float = 0.04) -> ScriptTransport:
    """An httpx2 transport that answers like the offline model (and lists the built-in models)."""
    return ScriptTransport(offline_script(delay), BUILT_IN_MODELS, record=False)


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
