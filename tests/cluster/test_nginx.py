"""The page through deploy/nginx.conf: sticky per browser, spread over replicas, streamed unbuffered."""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.page_client import Answer, PageChat, PageConfig
from chat.offline import offline_answer
from cluster.launcher import NGINX_CONF, ROUTE_COOKIE, Cluster, ProxiedRequest
from tests.cluster.conftest import RATE_LIMIT_PER_ADDRESS, Browser, route_of

QUEUE_JOIN, QUEUE_DATA = "/gradio_api/queue/join", "/gradio_api/queue/data"


async def send(client: httpx.AsyncClient, cluster: Cluster | str, message: str) -> Answer:
    """Load the page (nginx's, or at this URL) in this browser, send one message as the page does;
    return its answer."""
    url = cluster if isinstance(cluster, str) else cluster.url
    (await client.get(url)).raise_for_status()
    tab = PageChat(client, await PageConfig.fetch(client, url))
    async for _ in tab.send(message):
        pass
    assert tab.answer is not None
    return tab.answer


def logged(cluster: Cluster, route: str, path: str, timeout: float = 10) -> list[ProxiedRequest]:
    """This browser's requests in nginx's log, once one to `path` is there (a stream logs at its end)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in cluster.requests() if r.route == route]
        if any(r.path == path for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


async def test_the_page_is_served_through_nginx_by_the_replicas(cluster: Cluster, browser: Browser) -> None:
    async with browser() as client:
        page = await client.get(cluster.url)
    assert page.status_code == 200 and "gradio" in page.text.lower()
    assert len(cluster.replicas) == 2
    assert all(r.process.poll() is None for r in cluster.replicas)


async def test_a_browser_is_given_its_route_cookie_once(cluster: Cluster, browser: Browser) -> None:
    async with browser() as client:
        first = await client.get(cluster.url)
        again = await client.get(f"{cluster.url}/config")
    assert ROUTE_COOKIE in first.headers.get("set-cookie", ""), first.headers
    assert "HttpOnly" in first.headers["set-cookie"] and "SameSite=Lax" in first.headers["set-cookie"]
    assert "set-cookie" not in again.headers, again.headers


async def test_one_browser_stays_on_one_replica_for_page_join_and_stream(
    cluster: Cluster, browser: Browser
) -> None:
    async with browser() as client:
        answer = await send(client, cluster, "which replica am I on?")
        route = route_of(client)
    assert answer.error is None, answer.error
    requests = logged(cluster, route, QUEUE_DATA)
    paths = {r.path for r in requests}
    assert {"/", "/config", QUEUE_JOIN, QUEUE_DATA} <= paths, paths
    assert len({r.replica for r in requests}) == 1, requests
    assert cluster.serving(route).name == requests[0].replica


async def test_different_browsers_are_spread_over_both_replicas(cluster: Cluster, browser: Browser) -> None:
    routes = []
    for _ in range(20):  # all 20 on one replica by chance: 2 in a million
        async with browser() as client:
            (await client.get(cluster.url)).raise_for_status()
            routes.append(route_of(client))
    assert {cluster.serving(route).name for route in routes} == {"replica-1", "replica-2"}


async def test_an_answer_streams_through_nginx_unbuffered(cluster: Cluster, browser: Browser) -> None:
    async with browser() as client:
        direct = await send(client, cluster.replicas[0].url, "stream to me")  # the same answer, no nginx
    async with browser() as client:
        proxied = await send(client, cluster, "stream to me")
    assert direct.error is None and proxied.error is None, (direct.error, proxied.error)
    # Held back in a buffer, every update would arrive together at the end: the time from the
    # first update to the last would shrink to nothing instead of matching the direct stream's.
    assert proxied.updates >= 5, proxied.updates
    assert streamed_for(proxied) > streamed_for(direct) / 2, (proxied.update_times, direct.update_times)


async def test_a_chat_through_nginx_completes(cluster: Cluster, browser: Browser) -> None:
    async with browser() as client:
        answer = await send(client, cluster, "hello through nginx")
    assert answer.error is None, answer.error
    assert answer.text == offline_answer([{"role": "user", "content": "hello through nginx"}])


async def test_the_app_limits_the_address_nginx_forwards_not_nginx_own(
    cluster: Cluster, browser: Browser
) -> None:
    # One browser (one replica) under two addresses: the limit follows X-Forwarded-For. Were the
    # app counting nginx's 127.0.0.1, the other address would be refused too.
    async with browser("203.0.113.7") as client:
        answers = [await send(client, cluster, f"message {n}") for n in range(RATE_LIMIT_PER_ADDRESS + 1)]
        client.headers["X-Forwarded-For"] = "203.0.113.8"
        other = await send(client, cluster, "from another address")
    assert [a.error is None for a in answers[:-1]] == [True] * RATE_LIMIT_PER_ADDRESS, answers
    assert answers[-1].error and "your network address has sent" in answers[-1].error, answers[-1]
    assert other.error is None, other.error


async def test_browsers_chat_at_once_through_nginx(cluster: Cluster, browser: Browser) -> None:
    async def one(n: int) -> Answer:
        async with browser() as client:
            return await send(client, cluster, f"at once {n}")

    answers = await asyncio.gather(*(one(n) for n in range(6)))
    assert [a.error for a in answers] == [None] * 6


def streamed_for(answer: Answer) -> float:
    """Seconds from the answer's first update to its end, as the browser received them."""
    assert answer.first_update_at is not None and answer.completed_at is not None, answer
    return answer.completed_at - answer.first_update_at


def test_the_launcher_runs_the_shipped_config_changing_only_its_marked_blocks(cluster: Cluster) -> None:
    shipped = outside_marked_blocks(NGINX_CONF.read_text())
    running = outside_marked_blocks((cluster.directory / "nginx.conf").read_text())
    assert running == shipped
    assert "proxy_buffering off;" in "\n".join(running) and "hash $chat_route" in "\n".join(running)


def outside_marked_blocks(conf: str) -> list[str]:
    """The config's lines outside its `# BEGIN cluster:` ... `# END cluster:` blocks."""
    kept, inside = [], False
    for line in conf.splitlines():
        if "# BEGIN cluster:" in line:
            inside = True
        elif "# END cluster:" in line:
            inside = False
        elif not inside:
            kept.append(line)
    return kept


async def test_an_upload_as_large_as_the_app_allows_passes_nginx(cluster: Cluster, browser: Browser) -> None:
    upload = b"%PDF-1.4\n" + b"0" * (24 * 1024 * 1024)  # APP_MAX_FILE_MB is 25
    async with browser() as client:
        (await client.get(cluster.url)).raise_for_status()
        response = await client.post(
            f"{cluster.url}/gradio_api/upload", files={"files": ("big.pdf", upload, "application/pdf")}
        )
    assert response.status_code == 200, response.text[:500]
    assert len(response.json()) == 1, response.text[:500]
