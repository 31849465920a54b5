"""The benchmark's count of a message's bytes (bench/turns.py) is what Chromium sends and receives."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench import turns
from tests.browser.chat_page import ChatPage
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import echo_reply

ANSWER = " ".join(f"w{number:04d}" for number in range(200))  # 1,200 characters, as the benchmark's
TURNS = (1, 2)
# Sent: the same bodies but for a digit here and there. Received: the page runs the events after an
# answer at once, where the benchmark runs them one by one, so Chromium also gets the queue's
# estimates of each for the others (about 600 bytes a message, whatever its turn).
SENT_TOLERANCE, RECEIVED_TOLERANCE = 0.02, 0.05


class NetworkLog:
    """The page's API requests as Chromium's DevTools reports them: body bytes each way."""

    def __init__(self, chat_page: ChatPage) -> None:
        self.requests: dict[str, dict[str, Any]] = {}
        self.cdp = chat_page.page.context.new_cdp_session(chat_page.page)
        self.cdp.on("Network.requestWillBeSent", self._sent)
        self.cdp.on("Network.dataReceived", self._received)
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.on("Network.loadingFailed", self._finished)
        self.cdp.send("Network.enable")

    def _sent(self, event: dict[str, Any]) -> None:
        request = event["request"]
        if "/gradio_api/" not in request["url"] or "/heartbeat/" in request["url"]:
            return  # the heartbeat is per page, every 15 s, not per message
        body = request.get("postData")
        if body is None and request.get("hasPostData"):
            body = self.cdp.send("Network.getRequestPostData", {"requestId": event["requestId"]})["postData"]
        fn_index = json.loads(body).get("fn_index") if body else None
        self.requests[event["requestId"]] = {"sent": len((body or "").encode()), "received": 0, "done": False}
        self.requests[event["requestId"]]["fn_index"] = fn_index

    def _received(self, event: dict[str, Any]) -> None:
        if event["requestId"] in self.requests:
            self.requests[event["requestId"]]["received"] += event["dataLength"]

    def _finished(self, event: dict[str, Any]) -> None:
        if event["requestId"] in self.requests:
            self.requests[event["requestId"]]["done"] = True

    def mark(self) -> int:
        """Where the log is now (for `since`)."""
        return len(self.requests)

    def since(self, mark: int) -> list[dict[str, Any]]:
        """The requests made after that mark (dicts insert in order), as far as they have got."""
        return list(self.requests.values())[mark:]


def counted_by_the_benchmark(url: str) -> list[dict[str, Any]]:
    """bench/turns.py's count of the same conversation, in a tab of its own."""
    coroutine = turns.measure(url, TURNS, 60, ANSWER)
    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's event loop
        return thread.submit(asyncio.run, coroutine).result()["rows"]


def events_of(row: dict[str, Any], config: dict[str, Any]) -> set[int]:
    """The events a counted message ran (its parts, by event name)."""
    names = {label.split(" ")[0] for label in row["parts"]}
    return {dep["id"] for dep in config["dependencies"] if dep.get("api_name") in names}


def test_the_benchmarks_count_of_a_messages_bytes_is_what_chromium_sends_and_receives(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI, app_url: str
):
    one_delta = echo_reply(ANSWER, words_per_chunk=len(ANSWER))  # an answer's pacing varies, one delta's not
    loopback_api.script = lambda body: one_delta
    counted = counted_by_the_benchmark(app_url)
    config = httpx.get(f"{app_url.rstrip('/')}/config").json()
    log = NetworkLog(chat_page)
    for turn, row in zip(TURNS, counted, strict=True):
        mark = log.mark()
        chat_page.send(f"turn {turn}: tell me more", ANSWER)
        events = events_of(row, config)
        requests = log.since(mark)
        for _ in range(400):  # until every event the page runs after the answer has run and ended
            if events <= {r["fn_index"] for r in requests} and all(r["done"] for r in requests):
                break
            chat_page.page.wait_for_timeout(25)  # Playwright delivers DevTools events while it waits
            requests = log.since(mark)
        received, sent = sum(r["received"] for r in requests), sum(r["sent"] for r in requests)
        assert events <= {r["fn_index"] for r in requests}, f"turn {turn}: the page ran other events"
        assert abs(row["sent"] - sent) <= SENT_TOLERANCE * sent, (turn, row["sent"], sent)
        off = abs(row["received"] - received)
        assert off <= RECEIVED_TOLERANCE * received, (turn, row["received"], received)
