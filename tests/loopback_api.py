"""A Messages API server on 127.0.0.1 for tests and the benchmark.

It streams scripted replies in the documented SSE wire format, records every request it
gets, and notices at once when a client hangs up mid-stream. GET /v1/models lists `models`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from chat.models import BUILT_IN_MODELS
from chat.wire import (
    ScriptedMessage,
    TextBlock,
    ThinkingBlock,
    error_event,
    message_events,
    model_list,
    split_into_chunks,
)

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
    hang_up_after: int | None = None  # close the connection after this many events
    hang_up: HangUp = "close"
    stall_after: int | None = None
    steady: bool = False  # deltas on a fixed clock (`delay` apart on average), not `delay` after each send


@dataclass
class Failure:
    """A non-streaming HTTP error response, as the API sends it before a stream starts."""

    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


Response = Stream | Failure
Script = Callable[[dict[str, Any]], Response]


@dataclass
class Exchange:
    """What one request was, and what became of its stream."""

    body: dict[str, Any]
    headers: dict[str, str]
    started_at: float
    events_sent: int = 0
    finished_at: float | None = None
    client_left_at: float | None = None
    first_delta_at: float | None = None  # when the first content delta went out (the model's first token)
    deltas_sent: int = 0


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message of a request body."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if part.get("type") == "text")


def echo_reply(text: str, *, delay: float = 0.0, words_per_chunk: int = 2) -> Stream:
    """A text stream of these words, a few at a time."""
    message = ScriptedMessage([TextBlock(split_into_chunks(text, words_per_chunk))], model="loopback")
    return Stream(list(message_events(message)), delay=delay)


def echo_script(delay: float = 0.0) -> Script:
    """Answer each request with 'You said: <last user text>'."""
    return lambda body: echo_reply(f"You said: {last_user_text(body)}", delay=delay)


def thinking_script(**message: Any) -> Script:
    """Answer request n with thinking 'sig-n' (block 0), then 'Answer n: <last user text>' (block 1)."""

    def script(body: dict[str, Any]) -> Stream:
        number = sum(1 for m in body["messages"] if m["role"] == "user")
        blocks = [
            ThinkingBlock(["I should ", f"answer turn {number}."], signature=f"sig-{number}"),
            TextBlock(["Answer ", f"{number}: ", last_user_text(body)]),
        ]
        return Stream(list(message_events(ScriptedMessage(blocks, **message))), delay=0.02)

    return script


def replies(*responses: Response, then: Script | None = None) -> Script:
    """Answer requests with these responses in turn, then as `then` says (echo by default)."""
    queue: Iterator[Response] = iter(responses)
    after = then or echo_script()
    return lambda body: next(queue, None) or after(body)


def text_events(text: str, words_per_chunk: int = 2) -> list[bytes]:
    """The whole event list of a streamed text reply."""
    message = ScriptedMessage([TextBlock(split_into_chunks(text, words_per_chunk))], model="loopback")
    return list(message_events(message))


def _sent_through(events: Sequence[bytes]) -> int:
    """How many events carry the whole text: everything up to its last delta."""
    return 1 + max(i for i, event in enumerate(events) if b"content_block_delta" in event)


def error_mid_stream(text: str, error_type: str = "overloaded_error", message: str = "Overloaded") -> Stream:
    """A stream that sends `text`, then an `event: error` instead of the end."""
    events = text_events(text)
    return Stream([*events[: _sent_through(events)], error_event(error_type, message)])


def cut_mid_stream(text: str, how: HangUp = "truncate") -> Stream:
    """A stream that sends `text`, then loses its connection as `how` says."""
    events = text_events(text)
    return Stream(events, hang_up_after=_sent_through(events), hang_up=how)


def stall_mid_stream(text: str) -> Stream:
    """A stream that sends `text`, then goes silent with the connection open."""
    events = text_events(text)
    return Stream(events, stall_after=_sent_through(events))


class LoopbackMessagesAPI:
    """Serves POST /v1/messages on 127.0.0.1 in a thread of its own; use as a context manager."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or echo_script()
        self.models: list[dict[str, Any]] | Failure = model_list(BUILT_IN_MODELS)["data"]
        self.exchanges: list[Exchange] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The base URL to give the SDK (ANTHROPIC_BASE_URL)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies received, oldest first."""
        return [exchange.body for exchange in self.exchanges]

    def __enter__(self) -> LoopbackMessagesAPI:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll until condition() holds or the timeout passes; return whether it held."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.005)
        return condition()

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=512)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in asyncio.all_tasks(self._loop) - {asyncio.current_task()}:
            task.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, headers, body = await _read_request(reader)
            if method == "POST" and path.startswith("/v1/messages"):
                exchange = Exchange(json.loads(body), headers, time.monotonic())
                self.exchanges.append(exchange)
                await self._respond(self.script(exchange.body), exchange, reader, writer)
            elif method == "GET" and path.split("?")[0] == "/v1/models":
                await _send_models(writer, self.models)
            else:
                await _send_failure(writer, Failure(404, "not_found_error", f"No route {path}"))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client left, or the server is shutting down mid-stream
        finally:
            writer.close()

    async def _respond(
        self,
        response: Response,
        exchange: Exchange,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if isinstance(response, Failure):
            await _send_failure(writer, response)
            return
        chunked = response.hang_up == "truncate"
        framing = "transfer-encoding: chunked\r\n" if chunked else ""
        head = f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n{framing}connection: close\r\n\r\n"
        writer.write(head.encode())
        client_left = asyncio.create_task(reader.read())  # returns b"" when the client hangs up
        next_delta_at: float | None = None
        try:
            for number, event in enumerate(response.events):
                pause = response.first_delay if number == 0 else response.delay
                if b"content_block_delta" not in event and number:
                    pause = 0.0
                elif number and response.steady:
                    next_delta_at = (next_delta_at or time.monotonic()) + response.delay
                    pause = max(0.0, next_delta_at - time.monotonic())
                if response.hang_up_after is not None and number >= response.hang_up_after:
                    _hang_up(writer, response.hang_up)
                    return
                if response.stall_after is not None and number >= response.stall_after:
                    pause = STALL_LIMIT
                if await _client_left_within(client_left, pause):
                    exchange.client_left_at = time.monotonic()
                    return
                writer.write(_chunk(event) if chunked else event)
                await writer.drain()
                exchange.events_sent += 1
                if b"content_block_delta" in event:
                    exchange.first_delta_at = exchange.first_delta_at or time.monotonic()
                    exchange.deltas_sent += 1
            if chunked:
                writer.write(b"0\r\n\r\n")
            exchange.finished_at = time.monotonic()
            if await _client_left_within(client_left, 0.0):
                exchange.client_left_at = time.monotonic()
        finally:
            client_left.cancel()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _hang_up(writer: asyncio.StreamWriter, how: HangUp) -> None:
    if how == "reset":  # linger 0: close() sends a TCP RST instead of a clean FIN
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    elif how == "truncate":
        writer.write(b"40\r\n" + b"event: content_block_delta\ndata: {")  # a chunk cut short


async def _client_left_within(client_left: asyncio.Task[bytes], seconds: float) -> bool:
    if seconds > 0:
        await asyncio.wait({client_left}, timeout=seconds)
    else:
        await asyncio.sleep(0)
    return client_left.done()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, path, headers, body


async def _send_failure(writer: asyncio.StreamWriter, failure: Failure) -> None:
    body = json.dumps({"type": "error", "error": {"type": failure.error_type, "message": failure.message}})
    extra = "".join(f"{name}: {value}\r\n" for name, value in failure.headers.items())
    head = (
        f"HTTP/1.1 {failure.status} Error\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n"
    )
    writer.write(head.encode() + body.encode())
    await writer.drain()


async def _send_models(writer: asyncio.StreamWriter, models: list[dict[str, Any]] | Failure) -> None:
    if isinstance(models, Failure):
        await _send_failure(writer, models)
        return
    first, last = (models[0]["id"], models[-1]["id"]) if models else (None, None)
    body = json.dumps({"data": models, "has_more": False, "first_id": first, "last_id": last})
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    writer.write(f"{head}connection: close\r\n\r\n".encode() + body.encode())
    await writer.drain()
