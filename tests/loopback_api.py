"""A Messages API server on 127.0.0.1 for tests and the benchmark.

It serves a script of the fake-upstream language (tests/upstream.py, chat/wire.py) over TCP,
records every request it gets, and notices at once when a client hangs up mid-stream.
GET /v1/models lists `models`; POST /v1/messages/count_tokens answers as `count` says.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from chat.models import BUILT_IN_MODELS
from chat.wire import (
    STALL_LIMIT,
    Count,
    Failure,
    HangUp,
    Response,
    Script,
    UpstreamCall,
    count_reply,
    model_list,
    pauses,
    rough_count,
)
from tests.upstream import echo_script


class LoopbackMessagesAPI:
    """Serves POST /v1/messages on 127.0.0.1 in a thread of its own; use as a context manager."""

    def __init__(self, script: Script | None = None, count: Count = rough_count) -> None:
        self.script = script or echo_script()
        self.count = count
        self.models: list[dict[str, Any]] | Failure = model_list(BUILT_IN_MODELS)["data"]
        self.exchanges: list[UpstreamCall] = []  # POST /v1/messages only
        self.counted: list[dict[str, Any]] = []  # the count_tokens bodies, oldest first
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
        self._loop.close()

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
            if method == "POST" and path.split("?")[0] == "/v1/messages/count_tokens":
                self.counted.append(json.loads(body))
                await _send_json(writer, *count_reply(self.count(self.counted[-1])))
            elif method == "POST" and path.startswith("/v1/messages"):
                exchange = UpstreamCall(json.loads(body), headers, time.monotonic())
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
        exchange: UpstreamCall,
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
        try:
            for number, event, pause in pauses(response):
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
    body = failure.body().decode()
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
    await _send_json(writer, 200, body.encode())


async def _send_json(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    head = f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\ncontent-type: application/json\r\n"
    writer.write(f"{head}content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
    await writer.drain()
