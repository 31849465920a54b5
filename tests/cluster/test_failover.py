"""Two replicas behind nginx, a real Chromium in front: a tab that lands on the other replica, and a
replica killed mid-answer.

The tests run in this order on one cluster: the kill comes last, since it leaves one replica.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from chat.store import INTERRUPTED_MESSAGE
from cluster.launcher import ROUTE_COOKIE, Cluster, ClusterError, Replica
from tests.browser.chat_page import ARTIFACTS, ChatPage, chromium, missing_browser
from tests.cluster.conftest import require_cluster_tools, unavailable

WAIT = 30.0  # the most any step here waits
CARRIED_ONE_TURN = "The request carried 1 earlier turn"  # the offline model's answer to a second message


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two replicas on the offline model, answering slowly enough (about 20 s) to act mid-answer."""
    require_cluster_tools()
    reason = missing_browser()
    if reason is not None:
        unavailable(reason)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CHAT_", "APP_"))}
    try:
        with Cluster(
            replicas=2, env={"CHAT_OFFLINE": "1", "CHAT_OFFLINE_DELAY": "0.2"}, base_env=base_env
        ) as running:
            yield running
    except ClusterError as error:
        pytest.fail(str(error), pytrace=False)


def stored(cluster: Cluster) -> list[dict[str, Any]]:
    """Every stored exchange (status, who streams it, its record), read straight from PostgreSQL."""

    async def read() -> list[dict[str, Any]]:
        connection = await asyncpg.connect(cluster.database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            rows = await connection.fetch(
                "SELECT status, streamed_by, record FROM exchanges ORDER BY conversation_id, position"
            )
        finally:
            await connection.close()
        return [
            {"status": r["status"], "streamed_by": r["streamed_by"], **json.loads(r["record"])} for r in rows
        ]

    # Playwright's sync API runs an event loop in this thread: read from a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as reader:
        return reader.submit(asyncio.run, read()).result(WAIT)


def answer_of(record: dict[str, Any]) -> str:
    response = record.get("response") or {}
    return "".join(block.get("text", "") for block in response.get("content", []))


def until(condition: Callable[[], Any], what: str) -> Any:
    """Poll (bounded) until the condition gives something true; return it."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"waited {WAIT:.0f} s for {what}")


def route_of(context: Any, cluster: Cluster) -> str:
    """The route cookie nginx gave this browser."""
    cookies = {c["name"]: c["value"] for c in context.cookies(cluster.url)}
    assert ROUTE_COOKIE in cookies, f"nginx set no {ROUTE_COOKIE} cookie: {cookies}"
    return cookies[ROUTE_COOKIE]


def route_to_other_than(cluster: Cluster, replica: Replica) -> str:
    """A route cookie that nginx sends to a replica other than this one."""
    for n in range(64):
        route = f"probe-{n}"
        httpx.get(f"{cluster.url}/config", cookies={ROUTE_COOKIE: route}, timeout=10).raise_for_status()
        if cluster.serving(route) is not replica:
            return route
    raise AssertionError("64 route cookies all hashed to one replica")


@contextlib.contextmanager
def told_with_logs(cluster: Cluster, page: ChatPage, name: str) -> Iterator[None]:
    """A failure says what each replica logged, and leaves a screenshot in test-artifacts/."""
    try:
        yield
    except Exception as failure:  # an assertion, or a browser wait that timed out
        page.screenshot(ARTIFACTS / f"cluster-{name}.png")
        logs = "\n".join(f"--- {r.name} ---\n{r.log[-2000:]}" for r in cluster.replicas)
        raise AssertionError(f"{failure}\n{logs}") from failure


def test_a_tab_on_the_other_replica_follows_the_live_answer_and_stops_it(cluster: Cluster, tmp_path: Path):
    with chromium(tmp_path / "profile") as browser:
        asking = ChatPage(browser.new_page(), cluster.url)
        asking.open()
        asking.ask("Tell me a long story")
        with told_with_logs(cluster, asking, "asking"):
            asking.watch_answers(until=lambda answers: bool(answers) and len(answers[-1]) > 40)
        streaming = cluster.serving(route_of(browser, cluster))
        # The same browser (its visitor), its route cookie changed: its next tab lands elsewhere.
        browser.add_cookies(
            [{"name": ROUTE_COOKIE, "value": route_to_other_than(cluster, streaming), "url": cluster.url}]
        )
        following = ChatPage(browser.new_page(), cluster.url)
        following.open()
        assert cluster.serving(route_of(browser, cluster)) is not streaming
        with told_with_logs(cluster, following, "following"):
            first = following.watch_answers(until=lambda answers: bool(answers) and len(answers[-1]) > 0)
            assert "Tell me a long story" in following.page.inner_text("#chat")
            # It follows the answer as the other replica saves it (once a second): the text grows.
            following.watch_answers(
                until=lambda answers: bool(answers) and len(answers[-1]) > len(first[-1][-1])
            )
            assert stored(cluster)[0]["status"] != "complete", (
                "the answer ended before the test could stop it"
            )
            following.stop_answer()
        (record,) = until(
            lambda: [r for r in stored(cluster) if r["status"] == "stopped"], "the answer stopped"
        )
        assert record["error"] is None  # stopped by a Stop, where it streamed
        assert 0 < len(answer_of(record)) < 400 and record["streamed_by"] is None
        asking.watch_answers(until=lambda answers: "Stopped" in asking.boxes())


def test_a_conversation_survives_its_replica_being_killed_mid_answer(cluster: Cluster, tmp_path: Path):
    with chromium(tmp_path / "profile") as browser:
        page = ChatPage(browser.new_page(), cluster.url)
        page.open()
        page.ask("Tell me another long story")
        page.watch_answers(until=lambda answers: bool(answers) and len(answers[-1]) > 40)
        route = route_of(browser, cluster)
        victim = cluster.serving(route)
        until(
            lambda: [r for r in stored(cluster) if r["status"] == "streaming" and answer_of(r)],
            "the partial answer's first save",
        )
        victim.kill()

        # The partial answer is kept and marked (by the surviving replica, within its sweep).
        def marked() -> list[dict[str, Any]]:
            return [r for r in stored(cluster) if r["prompt"]["text"] == "Tell me another long story"]

        (record,) = until(
            lambda: [r for r in marked() if r["status"] == "stopped"], "the partial to be marked"
        )
        assert answer_of(record).startswith("This is the offline demo model")
        assert record["error"]["kind"] == "interrupted" and record["error"]["message"] == INTERRUPTED_MESSAGE

        # The next message goes to the other replica, with the conversation (partial included) as history.
        joined_before = len(cluster.requests())
        page.page.wait_for_timeout(2000)  # Gradio's page finds the server again after a lost connection
        page.ask("And then?")
        page.watch_answers(
            until=lambda answers: bool(answers) and CARRIED_ONE_TURN in answers[-1], timeout=WAIT
        )
        joins = [
            r
            for r in cluster.requests()[joined_before:]
            if r.route == route and r.path.endswith("/queue/join")
        ]
        assert joins and {r.replica for r in joins} == {
            next(r.name for r in cluster.replicas if r is not victim)
        }

        page.reload()  # the conversation as stored: the first answer's partial, marked, then the second
        page.watch_answers(until=lambda answers: len(answers) == 2 and CARRIED_ONE_TURN in answers[1])
        assert "Interrupted" in page.page.inner_text("#chat")
