"""Messages API streaming wire format: Server-Sent Events as the API sends them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


def sse(event: str, data: dict[str, Any]) -> bytes:
    """Encode one SSE event; the trailing blank line is what ends it."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@dataclass(frozen=True)
class TextBlock:
    """A text content block, sent as these deltas."""

    chunks: Sequence[str]


@dataclass(frozen=True)
class ThinkingBlock:
    """A thinking content block: thinking deltas, then its signature."""

    chunks: Sequence[str]
    signature: str = "offline-signature"


Block = TextBlock | ThinkingBlock


@dataclass(frozen=True)
class ScriptedMessage:
    """Everything one streamed message says, in order."""

    blocks: Sequence[Block]
    model: str = "claude-sonnet-5-5"
    message_id: str = "msg_offline"
    input_tokens: int = 10
    stop_reason: str = "end_turn"
    usage_extra: dict[str, int] = field(default_factory=dict)

    @property
    def output_tokens(self) -> int:
        return sum(len(chunk.split()) for block in self.blocks for chunk in block.chunks)


def message_events(message: ScriptedMessage) -> Iterator[bytes]:
    """Yield the SSE events of a streamed message, one per wire event."""
    yield sse("message_start", _message_start(message))
    yield sse("ping", {"type": "ping"})
    for index, block in enumerate(message.blocks):
        yield from _block_events(index, block)
    usage = {"output_tokens": message.output_tokens}
    delta = {"stop_reason": message.stop_reason, "stop_sequence": None}
    yield sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
    yield sse("message_stop", {"type": "message_stop"})


def error_event(error_type: str, message: str) -> bytes:
    """An `event: error` as the API sends it mid-stream."""
    return sse("error", {"type": "error", "error": {"type": error_type, "message": message}})


def _message_start(message: ScriptedMessage) -> dict[str, Any]:
    usage = {"input_tokens": message.input_tokens, "output_tokens": 1, **message.usage_extra}
    body = {
        "id": message.message_id,
        "type": "message",
        "role": "assistant",
        "model": message.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return {"type": "message_start", "message": body}


def _block_events(index: int, block: Block) -> Iterator[bytes]:
    if isinstance(block, ThinkingBlock):
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": c} for c in block.chunks]
        deltas.append({"type": "signature_delta", "signature": block.signature})
    else:
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": c} for c in block.chunks]
    yield sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
    for delta in deltas:
        yield sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
    yield sse("content_block_stop", {"type": "content_block_stop", "index": index})


def split_into_chunks(text: str, words_per_chunk: int = 3) -> list[str]:
    """Split text into chunks of a few words, keeping every character."""
    pieces = text.split(" ")
    chunks = []
    for start in range(0, len(pieces), words_per_chunk):
        chunk = " ".join(pieces[start : start + words_per_chunk])
        chunks.append(chunk if start + words_per_chunk >= len(pieces) else chunk + " ")
    return [c for c in chunks if c]


def model_list(models: Sequence[Any]) -> dict[str, Any]:
    """A GET /v1/models response body listing these models (anything with id, label, effort_levels)."""
    data = [model_info(m.id, m.label, m.effort_levels, m.can_disable_thinking) for m in models]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return {"data": data, "has_more": False, "first_id": first, "last_id": last}


def model_info(
    model_id: str, label: str, effort_levels: Sequence[str] = (), can_disable_thinking: bool = False
) -> dict[str, Any]:
    """One entry of GET /v1/models, with the capabilities the chat reads."""
    no = {"supported": False}
    effort = {
        level: {"supported": level in effort_levels} for level in ("low", "medium", "high", "xhigh", "max")
    }
    thinking_types = {"adaptive": {"supported": True}, "between_tools": no, "enabled": no}
    thinking_types["disabled"] = {"supported": can_disable_thinking}
    plain = ("batch", "citations", "code_execution", "image_input", "pdf_input", "structured_outputs")
    capabilities: dict[str, Any] = {name: {"supported": True} for name in plain}
    capabilities.update(
        context_management={"supported": False},
        effort={"supported": bool(effort_levels), **effort},
        server_tools={"supported": False, "code_execution": no, "web_search": no},
        thinking={"supported": True, "types": thinking_types},
    )
    return {
        "type": "model",
        "id": model_id,
        "display_name": label,
        "created_at": "2026-10-07T00:00:00Z",
        "lifecycle": "active",
        "capabilities": capabilities,
    }
