"""Issue 12, item 4 measured: oversized and malformed conversation files against `python app.py`.

    python -m bench.hostile_requests                 # this checkout
    python -m bench.hostile_requests --root DIR      # another checkout (main, before the bounds)

It starts the loopback Messages API (in this process) and `app.py` from `--root` (a subprocess
with its own data folder), then, each through the app's own `/load` and `/chat` endpoints:
loads a 52 MB conversation and sends a message (how many bytes went upstream); loads 100,000
messages while another tab streams an answer (the app's CPU, that tab's longest silence);
loads a 5,000-message history and sends a message; loads the largest file the bounds accept
while the other tab streams; and loads JSON nested 100,000 deep, a document titled `..`, and
a title holding a NUL byte (what the page says). Extra environment for the app: `--env K=V`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from gradio_client import Client, handle_file

from bench.page_client import PageChat, PageConfig
from tests.conftest import free_port, wait_until_serving, write_pdf
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY, echo_script, last_user_text, text_reply

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
STREAM_SECONDS = 12.0
DELTA_SECONDS = 0.02


def messages_body(turns: int, answer: str = "ok") -> dict[str, Any]:
    """A plain Messages API body of this many answered turns."""
    messages: list[dict[str, Any]] = []
    for number in range(turns):
        messages += [{"role": "user", "content": f"q{number}"}, {"role": "assistant", "content": answer}]
    return {"model": "claude-sonnet-5-5", "max_tokens": 100, "messages": messages}


def script(body: dict[str, Any]) -> Any:
    """A long, paced answer for the streaming tab; a short echo for everything else."""
    if last_user_text(body) == "stream please":
        count = int(STREAM_SECONDS / DELTA_SECONDS)
        return text_reply(*(f"w{n} " for n in range(count)), delay=DELTA_SECONDS)
    return echo_script()(body)


@contextmanager
def app_process(root: Path, api: LoopbackMessagesAPI, extra: dict[str, str]) -> Iterator[tuple[str, int]]:
    """`python app.py` from this checkout, talking to the loopback API; yields its URL and pid."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CHAT_"))}
    env.update(
        ANTHROPIC_API_KEY=TEST_KEY,
        ANTHROPIC_BASE_URL=api.url,
        CHAT_DATA_DIR=tempfile.mkdtemp(prefix="bench-hostile-"),
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    log = open(tempfile.mktemp(prefix="bench-hostile-app-", suffix=".log"), "w")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, process)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, path: Path, client: Client | None = None) -> tuple[Client, str, float]:
    """Press Load with this file (in a new tab unless given one): the tab, what happened, how long."""
    client = client or Client(url, verbose=False)
    started = time.monotonic()
    try:
        client.predict(handle_file(str(path)), api_name="/load")
        outcome = "loaded"
    except Exception as error:  # the page's message (gr.Error) arrives as AppError
        outcome = f"refused: {str(error).strip()[:220]}"
    return client, outcome, time.monotonic() - started


def send_after_load(client: Client, api: LoopbackMessagesAPI) -> str:
    """Send a message in a tab that loaded a conversation: what went upstream, or what was said."""
    before = len(api.exchanges)
    try:
        updates = list(client.submit({"text": "and now?", "files": []}, api_name="/chat"))
    except Exception as error:
        return f"failed: {error}"
    if len(api.exchanges) == before:
        last = updates[-1][-1]["content"] if updates and updates[-1] else "?"
        return f"nothing sent upstream; the page said: {str(last)[:200]}"
    body = api.exchanges[-1].body
    size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    return f"sent upstream: {size / MB:.1f} MB, {len(body['messages']):,} messages"


async def load_while_streaming(url: str, path: Path, pid: int) -> dict[str, Any]:
    """Load this file in one tab while another streams: the load, its CPU, the stream's worst gap."""
    async with httpx.AsyncClient(timeout=120) as http:
        config = await PageConfig.fetch(http, url)
        streaming = PageChat(http, config)
        updates: list[float] = []
        loaded: dict[str, Any] = {}

        async def stream() -> None:
            async for answer in streaming.send("stream please"):
                updates[:] = answer.update_times

        # Made first: a tab's first API call has the app build its API description (a second of CPU).
        tab = await asyncio.to_thread(Client, url, verbose=False)
        task = asyncio.create_task(stream())
        while len(updates) < 20:  # streaming steadily
            await asyncio.sleep(0.05)
        cpu = cpu_seconds(pid)
        started = time.monotonic()
        _client, outcome, took = await asyncio.to_thread(load, url, path, tab)
        ended = time.monotonic()
        loaded.update(outcome=outcome, seconds=round(took, 2), cpu=round(cpu_seconds(pid) - cpu, 2))
        await task
    during = [b - a for a, b in itertools.pairwise(updates) if b >= started and a <= ended]
    normal = [b - a for a, b in itertools.pairwise(updates) if b < started]
    loaded["longest_gap_during_load"] = round(max(during, default=0.0), 2)
    loaded["longest_gap_before"] = round(max(normal, default=0.0), 2)
    return loaded


def write(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def files(folder: Path) -> dict[str, Path]:
    """The conversation files the measurements load."""
    pdf = base64.b64encode(write_pdf(folder / "p.pdf").read_bytes()).decode()

    def document(title: str) -> dict[str, Any]:
        source = {"type": "base64", "media_type": "application/pdf", "data": pdf}
        block = {"type": "document", "title": title, "source": source}
        return {"messages": [{"role": "user", "content": [block, {"type": "text", "text": "read"}]}]}

    largest = messages_body(200, "w " * 12_600)  # the most exchanges the defaults allow, under 10 MB
    return {
        "52 MB": write(folder, "big.json", messages_body(4, "y" * (13 * MB))),
        "100,000 messages": write(folder, "many.json", messages_body(50_000)),
        "5,000 messages": write(folder, "history.json", messages_body(2_500)),
        "largest accepted (200 exchanges, 9.6 MB)": write(folder, "largest.json", largest),
        "nested 100k deep": write(folder, "deep.json", '{"messages": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        "a document titled ..": write(folder, "dots.json", document("..")),
        "a title with a NUL byte": write(folder, "nul.json", document("a\x00b.pdf")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py runs")
    parser.add_argument("--env", action="append", default=[], help="extra app environment, K=V")
    options = parser.parse_args()
    extra = dict(item.split("=", 1) for item in options.env)
    folder = Path(tempfile.mkdtemp(prefix="bench-hostile-files-"))
    made = files(folder)
    results: dict[str, Any] = {"root": str(options.root), "env": extra}
    with LoopbackMessagesAPI(script) as api, app_process(options.root, api, extra) as (url, pid):
        for label in ("52 MB", "5,000 messages"):
            client, outcome, took = load(url, made[label])
            results[label] = {"load": outcome, "seconds": round(took, 2)}
            if outcome == "loaded":
                results[label]["next message"] = send_after_load(client, api)
        for label in ("100,000 messages", "largest accepted (200 exchanges, 9.6 MB)"):
            results[label] = asyncio.run(load_while_streaming(url, made[label], pid))
        for label in ("nested 100k deep", "a document titled ..", "a title with a NUL byte"):
            _client, outcome, took = load(url, made[label])
            results[label] = {"load": outcome, "seconds": round(took, 2)}
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
