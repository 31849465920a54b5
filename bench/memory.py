"""How much memory each visitor's session costs the server: this app against a trivial echo app.

    python -m bench.memory                       # 2,000 one-message sessions per app (a few minutes)
    python -m bench.memory --sessions 200        # a quick look
    python -m bench.memory --images              # 20 sessions, each sending six ~3.6 MB images

Each app runs as a real process on 127.0.0.1: `app.py` against the loopback Messages API
(bench/upstream.py, a process of its own), and `bench/echo_app.py`, a bare ChatInterface.
Every session is one browser tab replayed from the page's own config: its heartbeat opened,
the page's load events, then one message sent through the message box's whole event chain (the
unqueued events through /run/predict, the queued ones through /queue/join and the session's
event stream, each follower once its trigger ended, as the page runs them), then the tab closed.
The server's resident memory (VmRSS in /proc/PID/status) is read after a warm-up and after the
sessions, each time once it has settled; the figure is the growth per session, in KB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.page_client import API, apply_diff
from bench.run import served
from bench.upstream import TokenRate, Upstream

ROOT = Path(__file__).resolve().parent.parent
APPS = {"echo": "bench/echo_app.py", "app": "app.py"}
RATE = TokenRate(deltas=20, delta_chars=6, interval=0.0, first_token=0.0)
WARM_UP_SESSIONS = 20
EVENT_TIMEOUT_SECONDS = 300.0
IMAGE_SIDE_PX = 1100  # random RGB pixels: a PNG of about 3.6 MB that does not compress


@dataclass(frozen=True)
class Figure:
    """One app's memory growth over a number of sessions."""

    app: str
    sessions: int
    rss_before_kb: int
    rss_after_kb: int
    failed: int
    seconds: float

    @property
    def kb_per_session(self) -> float:
        """The growth of the server's resident memory per session."""
        return (self.rss_after_kb - self.rss_before_kb) / self.sessions


class PageSession:
    """One browser tab of a Gradio app, replaying its page's events from the app's /config."""

    def __init__(self, http: httpx.AsyncClient, url: str, config: dict[str, Any]) -> None:
        self.http = http
        self.url = url
        self.session_hash = secrets.token_hex(6)
        self.deps: dict[int, dict[str, Any]] = {dep["id"]: dep for dep in config["dependencies"]}
        self.types = {c["id"]: c["type"] for c in config["components"]}
        # What the page holds for each component; State values live on the server only.
        self.values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}
        self.failures: list[str] = []
        self._heartbeat: asyncio.Task[None] | None = None
        self._stream: asyncio.Task[None] | None = None  # reads the session's event stream
        self._messages: dict[str, asyncio.Queue[dict[str, Any]]] = {}  # each queued event's, by id

    async def open(self, heartbeat: bool = True) -> None:
        """Open the tab: its heartbeat (as the page keeps one), then the page's load events."""
        if heartbeat:
            self._heartbeat = asyncio.create_task(self._beat())
        loads = [i for i, dep in self.deps.items() if any(t[1] == "load" for t in dep["targets"])]
        await asyncio.gather(*(self.run(i, trigger=None) for i in loads))

    async def send(self, text: str, files: Sequence[Path] = ()) -> None:
        """Type a message (with these files attached) and press Enter."""
        # The ChatInterface's message box: the input of the event its submit starts with.
        box = next(
            d["inputs"][0] for d in self.deps.values() if d.get("api_name") == "_clear_and_save_textbox"
        )
        if self.types[box] == "multimodaltextbox":
            self.values[box] = {"text": text, "files": [await self._upload(path) for path in files]}
        else:
            self.values[box] = text
        roots = [i for i, dep in self.deps.items() if any(t == [box, "submit"] for t in dep["targets"])]
        await asyncio.gather(*(self.run(i, trigger=box) for i in roots))

    async def close(self) -> None:
        """Close the tab: its heartbeat connection drops, as when a browser tab is closed."""
        for task in (self._stream, self._heartbeat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await task

    def answered(self) -> bool:
        """True when the chat on screen ends with an answer."""
        chatbot = next(i for i, kind in self.types.items() if kind == "chatbot")
        shown = self.values.get(chatbot) or []
        return bool(shown) and shown[-1].get("role") == "assistant"

    async def run(self, dep_id: int, trigger: int | None) -> None:
        """Run one event, then the events that follow it, as the page does."""
        dep = self.deps[dep_id]
        success = True
        if dep.get("backend_fn"):
            body = {
                "data": [None if self.types.get(i) == "state" else self.values.get(i) for i in dep["inputs"]],
                "event_data": None,
                "fn_index": dep_id,
                "trigger_id": trigger,
                "session_hash": self.session_hash,
            }
            try:
                success = await (self._queued(dep, body) if dep.get("queue") else self._predicted(dep, body))
            except (httpx.HTTPError, ValueError) as error:
                success = False
                self.failures.append(f"{dep.get('api_name')}: {type(error).__name__}: {error}")
        followers = [
            i
            for i, follower in self.deps.items()
            if follower.get("trigger_after") == dep_id
            and not (follower.get("trigger_only_on_success") and not success)
            and not (follower.get("trigger_only_on_failure") and success)
        ]
        await asyncio.gather(*(self.run(i, trigger) for i in followers))

    async def _predicted(self, dep: dict[str, Any], body: dict[str, Any]) -> bool:
        response = await self.http.post(f"{self.url}/{API}/run/predict", json=body)
        if response.status_code != 200:
            return False
        self._take(dep, response.json()["data"], full=True)
        return True

    async def _queued(self, dep: dict[str, Any], body: dict[str, Any]) -> bool:
        response = await self.http.post(f"{self.url}/{API}/queue/join", json=body)
        response.raise_for_status()
        event_id = response.json()["event_id"]
        messages = self._messages.setdefault(event_id, asyncio.Queue())
        self._listen()
        full = True  # a generator's first update carries whole values, later ones diffs
        try:
            async with asyncio.timeout(EVENT_TIMEOUT_SECONDS):
                while True:
                    event = await messages.get()
                    kind = event.get("msg")
                    output = event.get("output") or {}
                    if kind in ("process_generating", "process_completed") and output.get("data"):
                        self._take(dep, output["data"], full=full or kind == "process_completed")
                        full = False
                    if kind == "process_completed":
                        return bool(event.get("success", True))
                    if kind == "unexpected_error":
                        return False
        finally:
            del self._messages[event_id]

    def _listen(self) -> None:
        """Read the session's one event stream (as the page does), if it is not being read already."""
        if self._stream is None or self._stream.done():
            self._stream = asyncio.create_task(self._read_stream())

    async def _read_stream(self) -> None:
        params = {"session_hash": self.session_hash}
        async with self.http.stream("GET", f"{self.url}/{API}/queue/data", params=params) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("msg") == "close_stream":
                    break  # the server has nothing more pending for this session
                if event.get("event_id"):
                    self._messages.setdefault(event["event_id"], asyncio.Queue()).put_nowait(event)
        if self._messages:  # an event joined as the stream was closing: read on
            self._stream = asyncio.create_task(self._read_stream())

    def _take(self, dep: dict[str, Any], data: list[Any], full: bool) -> None:
        for component, value in zip(dep["outputs"], data, strict=False):
            if self.types.get(component) == "state" or value is None:
                continue
            if isinstance(value, dict) and value.get("__type__") == "update":
                if "value" in value:
                    self.values[component] = value["value"]
            elif full:
                self.values[component] = value
            else:
                self.values[component] = apply_diff(self.values[component], value)

    async def _upload(self, path: Path) -> dict[str, Any]:
        with path.open("rb") as file:
            response = await self.http.post(
                f"{self.url}/{API}/upload", files=[("files", (path.name, file, "image/png"))]
            )
        response.raise_for_status()
        stored = response.json()[0]
        return {
            "path": stored,
            "orig_name": path.name,
            "size": path.stat().st_size,
            "mime_type": "image/png",
            "meta": {"_type": "gradio.FileData"},
        }

    async def _beat(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            async with self.http.stream("GET", f"{self.url}/{API}/heartbeat/{self.session_hash}") as beats:
                async for _ in beats.aiter_bytes():
                    pass


async def visit(
    http: httpx.AsyncClient, url: str, config: dict[str, Any], files: Sequence[Path], heartbeat: bool
) -> list[str]:
    """One tab: opened, one message sent, closed; return what failed."""
    tab = PageSession(http, url, config)
    try:
        await tab.open(heartbeat)
        await tab.send(f"Hello from tab {tab.session_hash}", files)
        if not tab.answered():
            tab.failures.append("no answer on screen")
    finally:
        await tab.close()
    return tab.failures


async def visits(url: str, count: int, files: Sequence[Path], at_once: int, heartbeat: bool) -> int:
    """`count` tabs, `at_once` at a time; return how many had a failure."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=4 * at_once, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300, connect=60), limits=limits) as http:
        config = (await http.get(f"{url}/config")).json()
        gate = asyncio.Semaphore(at_once)
        failed = 0

        async def one() -> None:
            nonlocal failed
            async with gate:
                if await visit(http, url, config, files, heartbeat):
                    failed += 1

        await asyncio.gather(*(one() for _ in range(count)))
    return failed


def rss_kb(pid: int) -> int:
    """The process's resident memory (VmRSS), in KB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def settled_rss_kb(pid: int, quiet: float = 3.0, timeout: float = 30.0) -> int:
    """VmRSS once it has stopped moving (within 0.5% for `quiet` seconds): closed tabs cleaned up."""
    deadline = time.monotonic() + timeout
    steady_since, last = time.monotonic(), rss_kb(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss_kb(pid)
        if abs(now - last) > last * 0.005:
            steady_since, last = time.monotonic(), now
        elif time.monotonic() - steady_since >= quiet:
            return now
    return rss_kb(pid)


def measure(
    name: str,
    sessions: int,
    upstream_url: str,
    files: Sequence[Path] = (),
    at_once: int = 20,
    heartbeat: bool = True,
    app_env: Sequence[tuple[str, str]] = (),
) -> Figure:
    """Start the app, warm it up, and measure its memory growth over `sessions` sessions."""
    out = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    with served(name, upstream_url, out, app_env, script=APPS[name]) as app:
        asyncio.run(visits(app.url, min(WARM_UP_SESSIONS, sessions), files, at_once, heartbeat))
        before = settled_rss_kb(app.process.pid)
        started = time.monotonic()
        failed = asyncio.run(visits(app.url, sessions, files, at_once, heartbeat))
        seconds = time.monotonic() - started
        after = settled_rss_kb(app.process.pid)
    return Figure(name, sessions, before, after, failed, round(seconds, 1))


def noise_png(path: Path, side: int = IMAGE_SIDE_PX) -> Path:
    """A PNG of random pixels (it does not compress): side x side x 3 bytes, about 3.6 MB at 1100."""
    raw = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 0))
        + chunk(b"IEND", b"")
    )
    return path


def report(figures: Sequence[Figure]) -> str:
    """The figures as lines, with this app's growth as a ratio of the echo app's."""
    lines = [
        f"{f.app:5} {f.sessions:5} sessions in {f.seconds:6.1f} s: RSS {f.rss_before_kb / 1024:7.1f} MB -> "
        f"{f.rss_after_kb / 1024:7.1f} MB, {f.kb_per_session:8.1f} KB per session"
        + (f" ({f.failed} sessions had a failure)" if f.failed else "")
        for f in figures
    ]
    by_app = {f.app: f for f in figures}
    if "echo" in by_app and "app" in by_app and by_app["echo"].kb_per_session > 0:
        ratio = by_app["app"].kb_per_session / by_app["echo"].kb_per_session
        lines.append(f"app / echo: {ratio:.2f} (target: at most 1.10)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Measure (see --help) and print the figures, as text and as JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, help="sessions per app (default 2000; 20 with --images)")
    parser.add_argument("--images", action="store_true", help="each session sends six ~3.6 MB images")
    parser.add_argument("--apps", default="echo,app", help="which apps: echo, app")
    parser.add_argument("--at-once", type=int, default=20, help="sessions open at the same time")
    parser.add_argument("--no-heartbeat", action="store_true", help="sessions as scripts: no heartbeat")
    parser.add_argument("--app-env", action="append", default=[], help="KEY=VALUE for the app (repeatable)")
    args = parser.parse_args(argv)
    sessions = args.sessions or (20 if args.images else 2000)
    app_env = tuple(tuple(item.split("=", 1)) for item in args.app_env)
    with tempfile.TemporaryDirectory(prefix="bench-memory-images-") as folder:
        files = [noise_png(Path(folder) / f"image-{n}.png") for n in range(6)] if args.images else []
        figures = []
        with Upstream(RATE) as upstream:
            for name in args.apps.split(","):
                figure = measure(
                    name,
                    sessions,
                    upstream.url,
                    files,
                    at_once=min(args.at_once, 4) if files else args.at_once,
                    heartbeat=not args.no_heartbeat,
                    app_env=app_env,  # type: ignore[arg-type]
                )
                figures.append(figure)
                print(report([figure]), flush=True)
    print(report(figures))
    print(json.dumps([{**f.__dict__, "kb_per_session": round(f.kb_per_session, 1)} for f in figures]))


if __name__ == "__main__":
    sys.exit(main())
