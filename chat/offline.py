"""The offline model: a deterministic Claude stand-in behind the real SDK, for demos with no key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx2

from chat.models import BUILT_IN_MODELS
from chat.wire import (
    ScriptedMessage,
    TextBlock,
    ThinkingBlock,
    message_events,
    model_list,
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
        "at a time, Stop keeps whatever has arrived, and the finished message goes into the "
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
    return ScriptedMessage(blocks, model=request.get("model", OFFLINE_MODEL), input_tokens=input_tokens)


class OfflineTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport that answers POST /v1/messages with a paced SSE stream."""

    def __init__(self, delay: float = 0.04) -> None:
        self.delay = delay

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET" and request.url.path.endswith("/v1/models"):
            return httpx2.Response(200, json=model_list(BUILT_IN_MODELS))
        if request.method != "POST" or not request.url.path.endswith("/v1/messages"):
            return httpx2.Response(404, json=_error("not_found_error", "The offline model only chats."))
        body = json.loads(await request.aread())
        events = message_events(offline_message(body))
        headers = {"content-type": "text/event-stream", "request-id": "req_offline"}
        return httpx2.Response(200, headers=headers, stream=_PacedStream(events, self.delay))


class _PacedStream(httpx2.AsyncByteStream):
    def __init__(self, events: Iterable[bytes], delay: float) -> None:
        self.events = events
        self.delay = delay

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.events:
            if b"content_block_delta" in event:
                await asyncio.sleep(self.delay)
            yield event


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
