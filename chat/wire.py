"""The Messages API as a script: SSE events as the API sends them, and a transport that serves them.

One language for every fake upstream: a `Script` maps a request body to a `Stream` (events,
pacing, faults) or a `Failure` (an HTTP error). `ScriptTransport` serves it in process through
the real SDK (the offline model, service tests); tests/loopback_api.py serves the same script
over TCP on 127.0.0.1 where sockets matter (cuts, stalls, the app process, the browser).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx2


def sse(event: str, data: dict[str, Any]) -> bytes:
    """Encode one SSE event; the trailing blank line is what ends it."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@dataclass(frozen=True)
class TextBlock:
    """A text content block, sent as these deltas; then a `citations_delta` for each citation."""

    chunks: Sequence[str]
    citations: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class ThinkingBlock:
    """A thinking content block: thinking deltas, then its signature."""

    chunks: Sequence[str]
    signature: str = "offline-signature"


@dataclass(frozen=True)
class ServerToolUseBlock:
    """A server tool call (`web_search`, `web_fetch`): it starts with an empty input, then the
    input arrives as `input_json_delta` pieces (the first one empty, as the API sends it)."""

    id: str
    input: Mapping[str, Any]
    name: str = "web_search"

    @property
    def chunks(self) -> list[str]:
        """The input's JSON in the pieces its deltas carry."""
        text = json.dumps(self.input, ensure_ascii=False)
        return ["", *(text[start : start + 8] for start in range(0, len(text), 8))]


@dataclass(frozen=True)
class WebSearchResultBlock:
    """A `web_search_tool_result`: the pages found, whole in its start event (it has no deltas).

    `pause` is the seconds before it starts: the time the search takes.
    """

    tool_use_id: str
    results: Sequence[Mapping[str, Any]]
    pause: float = 0.0
    chunks: Sequence[str] = ()


Block = TextBlock | ThinkingBlock | ServerToolUseBlock | WebSearchResultBlock


def web_search_result(url: str, title: str, page_age: str | None = None) -> dict[str, Any]:
    """One page of a web search result, as the API lists it (its content encrypted, for Claude)."""
    encrypted = f"scripted-{_digest(url)}"
    return {
        "type": "web_search_result",
        "title": title,
        "url": url,
        "encrypted_content": encrypted,
        "page_age": page_age,
    }


def web_search_citation(url: str, title: str, cited_text: str) -> dict[str, Any]:
    """A citation of a web search result, as a `citations_delta` carries it."""
    return {
        "type": "web_search_result_location",
        "url": url,
        "title": title,
        "encrypted_index": f"scripted-{_digest(url + cited_text)}",
        "cited_text": cited_text,
    }


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]  # stable, unlike hash()


@dataclass(frozen=True)
class ScriptedMessage:
    """Everything one streamed message says, in order."""

    blocks: Sequence[Block]
    model: str = "claude-sonnet-5-5"
    message_id: str = "msg_offline"
    input_tokens: int = 10
    stop_reason: str = "end_turn"
    usage_extra: dict[str, int] = field(default_factory=dict)
    server_tool_use: dict[str, int] | None = None  # the final usage's server tool counts

    @property
    def output_tokens(self) -> int:
        return sum(len(chunk.split()) for block in self.blocks for chunk in block.chunks)


def message_events(message: ScriptedMessage) -> Iterator[bytes]:
    """Yield the SSE events of a streamed message, one per wire event."""
    for event, _ in _timed_events(message):
        yield event


def _timed_events(message: ScriptedMessage) -> Iterator[tuple[bytes, float]]:
    yield sse("message_start", _message_start(message)), 0.0
    yield sse("ping", {"type": "ping"}), 0.0
    for index, block in enumerate(message.blocks):
        hold = block.pause if isinstance(block, WebSearchResultBlock) else 0.0
        for number, event in enumerate(_block_events(index, block)):
            yield event, hold if number == 0 else 0.0
    usage: dict[str, Any] = {"output_tokens": message.output_tokens}
    if message.server_tool_use is not None:
        usage["server_tool_use"] = message.server_tool_use
    delta = {"stop_reason": message.stop_reason, "stop_sequence": None}
    yield sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}), 0.0
    yield sse("message_stop", {"type": "message_stop"}), 0.0


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
    start: dict[str, Any]
    deltas: list[dict[str, Any]]
    if isinstance(block, ThinkingBlock):
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": c} for c in block.chunks]
        deltas.append({"type": "signature_delta", "signature": block.signature})
    elif isinstance(block, ServerToolUseBlock):
        start = {"type": "server_tool_use", "id": block.id, "name": block.name, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": c} for c in block.chunks]
    elif isinstance(block, WebSearchResultBlock):
        results = [dict(result) for result in block.results]
        start = {"type": "web_search_tool_result", "tool_use_id": block.tool_use_id, "content": results}
        deltas = []
    else:
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": c} for c in block.chunks]
        deltas += [{"type": "citations_delta", "citation": dict(c)} for c in block.citations]
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
    """A GET /v1/models response body listing these models (anything with id, label, effort_levels...)."""
    data = [
        model_info(m.id, m.label, m.effort_levels, m.can_disable_thinking, getattr(m, "context_window", None))
        for m in models
    ]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return {"data": data, "has_more": False, "first_id": first, "last_id": last}


def model_info(
    model_id: str,
    label: str,
    effort_levels: Sequence[str] = (),
    can_disable_thinking: bool = False,
    max_input_tokens: int | None = None,
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
    info: dict[str, Any] = {
        "type": "model",
        "id": model_id,
        "display_name": label,
        "created_at": "2026-10-07T00:00:00Z",
        "lifecycle": "active",
        "capabilities": capabilities,
    }
    if max_input_tokens is not None:
        info["max_input_tokens"] = max_input_tokens
    return info


def recorded(path: str | Path) -> list[bytes]:
    """The events of a recorded SSE stream (a .sse file), one per wire event, blank line included."""
    text = Path(path).read_bytes().replace(b"\r\n", b"\n")
    return [event.strip(b"\n") + b"\n\n" for event in text.split(b"\n\n") if event.strip()]


HangUp = Literal["close", "reset", "truncate"]
STALL_LIMIT = 30.0  # a stalled stream waits at most this long for the client to give up


@dataclass
class Stream:
    """A 200 SSE response: these events, with `delay` seconds before each content delta.

    Faults: `hang_up_after` ends the connection after that many events, as `hang_up` says:
    "close" (a clean end of the body), "reset" (a TCP reset) or "truncate" (the chunked
    body stops mid-way); `stall_after` stops sending after that many events but keeps the
    connection open until the client gives up.
    """

    events: Sequence[bytes]
    delay: float = 0.0
    first_delay: float = 0.0
    hang_up_after: int | None = None
    hang_up: HangUp = "close"
    stall_after: int | None = None
    steady: bool = False  # deltas on a fixed clock (`delay` apart on average), not `delay` after each send
    holds: Mapping[int, float] = field(default_factory=dict)  # extra seconds before these events

    @classmethod
    def of(cls, message: ScriptedMessage, **pacing: Any) -> Stream:
        """The stream of a scripted message, paced as given (its blocks' pauses included)."""
        timed = list(_timed_events(message))
        holds = {number: hold for number, (_, hold) in enumerate(timed) if hold}  # a block's `pause`
        return cls([event for event, _ in timed], holds=holds, **pacing)


@dataclass
class Failure:
    """A non-streaming HTTP error response, as the API sends it before a stream starts."""

    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        """The JSON error body."""
        return json.dumps(
            {"type": "error", "error": {"type": self.error_type, "message": self.message}}
        ).encode()


Response = Stream | Failure
Script = Callable[[dict[str, Any]], Response]
Count = Callable[[dict[str, Any]], "int | Failure"]  # a count_tokens body -> its input tokens, or an error
COUNTED_FIELDS = ("system", "messages", "tools")


def rough_count(body: dict[str, Any]) -> int:
    """A count_tokens answer from the body alone: about four characters a token of what it counts."""
    counted = {key: body[key] for key in COUNTED_FIELDS if key in body}
    return max(1, len(json.dumps(counted, ensure_ascii=False)) // 4)


def count_reply(result: int | Failure) -> tuple[int, bytes]:
    """The status and JSON body of a POST /v1/messages/count_tokens response."""
    if isinstance(result, Failure):
        return result.status, result.body()
    return 200, json.dumps({"input_tokens": result}).encode()


@dataclass
class UpstreamCall:
    """What one request was, and what became of its stream."""

    body: dict[str, Any]
    headers: dict[str, str]
    started_at: float
    events_sent: int = 0
    finished_at: float | None = None
    client_left_at: float | None = None
    first_delta_at: float | None = None  # when the first content delta went out (the model's first token)
    deltas_sent: int = 0


def pauses(stream: Stream) -> Iterator[tuple[int, bytes, float]]:
    """Each event of a stream with the seconds to wait before sending it (stalls and hang-ups aside)."""
    next_delta_at: float | None = None
    for number, event in enumerate(stream.events):
        pause = stream.first_delay if number == 0 else stream.delay
        if b"content_block_delta" not in event and number:
            pause = 0.0
        elif number and stream.steady:
            next_delta_at = (next_delta_at or time.monotonic()) + stream.delay
            pause = max(0.0, next_delta_at - time.monotonic())
        yield number, event, pause + stream.holds.get(number, 0.0)


class ScriptTransport(httpx2.AsyncBaseTransport):
    """Serves a script in process: POST /v1/messages streams, GET /v1/models lists `models`,
    POST /v1/messages/count_tokens answers as `count` says."""

    def __init__(
        self, script: Script, models: Sequence[Any] = (), *, record: bool = True, count: Count = rough_count
    ) -> None:
        self.script = script
        self.models = models
        self.count = count
        self.record = record  # keep every call (tests); off for the offline model, which runs for days
        self.calls: list[UpstreamCall] = []  # POST /v1/messages only
        self.counted: list[dict[str, Any]] = []  # the count_tokens bodies, oldest first

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies received, oldest first."""
        return [call.body for call in self.calls]

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET" and request.url.path.endswith("/v1/models"):
            return httpx2.Response(200, json=model_list(self.models))
        if request.method == "POST" and request.url.path.endswith("/v1/messages/count_tokens"):
            body = json.loads(await request.aread())
            if self.record:
                self.counted.append(body)
            status, content = count_reply(self.count(body))
            return httpx2.Response(status, headers={"content-type": "application/json"}, content=content)
        if request.method != "POST" or not request.url.path.endswith("/v1/messages"):
            return httpx2.Response(404, content=Failure(404, "not_found_error", "No such route").body())
        call = UpstreamCall(json.loads(await request.aread()), dict(request.headers), time.monotonic())
        if self.record:
            self.calls.append(call)
        response = self.script(call.body)
        if isinstance(response, Failure):
            headers = {"content-type": "application/json", **response.headers}
            return httpx2.Response(response.status, headers=headers, content=response.body())
        headers = {"content-type": "text/event-stream", "request-id": "req_scripted"}
        return httpx2.Response(200, headers=headers, stream=_ScriptedBody(response, call))


class _ScriptedBody(httpx2.AsyncByteStream):
    def __init__(self, stream: Stream, call: UpstreamCall) -> None:
        self.stream = stream
        self.call = call

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream, call = self.stream, self.call
        for number, event, pause in pauses(stream):
            if stream.hang_up_after is not None and number >= stream.hang_up_after:
                _hang_up(stream.hang_up)
                return
            if stream.stall_after is not None and number >= stream.stall_after:
                raise httpx2.ReadTimeout("the scripted stream stalled")  # what httpx2 raises on a socket
            if pause > 0:
                await asyncio.sleep(pause)
            yield event
            call.events_sent += 1
            if b"content_block_delta" in event:
                call.first_delta_at = call.first_delta_at or time.monotonic()
                call.deltas_sent += 1
        call.finished_at = time.monotonic()

    async def aclose(self) -> None:
        if self.call.finished_at is None and self.call.client_left_at is None:
            self.call.client_left_at = time.monotonic()


def _hang_up(how: HangUp) -> None:
    if how == "reset":
        raise httpx2.ReadError("connection reset by the scripted upstream")
    if how == "truncate":
        raise httpx2.RemoteProtocolError("the scripted upstream cut a chunk short")
    # "close": the body just ends, before message_stop
