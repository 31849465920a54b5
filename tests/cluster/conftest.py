"""A real cluster for these tests: PostgreSQL, two app.py replicas and nginx (deploy/nginx.conf).

Without nginx or PostgreSQL the tests skip, or fail when CI=true. `make test` leaves this folder out
(tests/conftest.py); `make test-cluster` runs it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from cluster.launcher import ROUTE_COOKIE, Cluster, ClusterError, nginx_binary
from cluster.postgres import find_bin_dir

RATE_LIMIT_PER_ADDRESS = 2  # messages a minute: small, so one test can reach it
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))  # documentation addresses (RFC 5737)

Browser = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def unavailable(reason: str) -> None:
    """Skip for want of nginx or PostgreSQL; in CI (CI=true), fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the cluster tests need nginx and PostgreSQL in CI: {reason}", pytrace=False)
    pytest.skip(f"no cluster here: {reason}")


def require_cluster_tools() -> None:
    """Skip (or in CI fail) unless nginx and PostgreSQL are installed."""
    if nginx_binary() is None:
        unavailable("nginx is not installed (apt-get install nginx)")
    if find_bin_dir() is None:
        unavailable("PostgreSQL is not installed (apt-get install postgresql)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two replicas behind nginx on one PostgreSQL, on the offline model, for the whole module."""
    require_cluster_tools()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CHAT_", "APP_"))}
    env = {
        "CHAT_OFFLINE": "1",
        "CHAT_OFFLINE_DELAY": "0.02",  # an answer streams for about a second
        "CHAT_RATE_LIMIT_PER_ADDRESS": str(RATE_LIMIT_PER_ADDRESS),
    }
    try:
        with Cluster(replicas=2, env=env, base_env=base_env) as running:
            yield running
    except ClusterError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def browser() -> Browser:
    """Open a browser: one cookie jar, coming (as nginx is told) from an address of its own."""

    @asynccontextmanager
    async def opened(address: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
        headers = {"X-Forwarded-For": address or next(_addresses)}
        async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(60, connect=10)) as client:
            yield client

    return opened


def route_of(client: httpx.AsyncClient) -> str:
    """The route cookie nginx gave this browser."""
    route = client.cookies.get(ROUTE_COOKIE)
    assert route, f"nginx set no {ROUTE_COOKIE} cookie; the browser has {dict(client.cookies)}"
    return route
