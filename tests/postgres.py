"""PostgreSQL for the tests: a throwaway server (cluster/postgres.py) started once a session, a
fresh database per test. Without PostgreSQL's binaries the tests that need it skip, or fail when CI=true.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from chat.store import Store
from cluster.postgres import PostgresServer, find_bin_dir


def unavailable(reason: str) -> None:
    """Skip for want of PostgreSQL; in CI (CI=true), fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL is not available: {reason}")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresServer]:
    """A PostgreSQL server running for the whole session."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable(
            "no initdb/pg_ctl under /usr/lib/postgresql/*/bin or on PATH (apt-get install postgresql)"
        )
        raise AssertionError("unreachable")
    try:
        cluster = PostgresServer(bin_dir)
    except RuntimeError as error:
        unavailable(str(error))
        raise
    try:
        cluster.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        cluster.stop()
        unavailable(f"the server did not start: {error}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty database: a SQLite file, or a fresh database on the session's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
        return
    async with fresh_database(request.getfixturevalue("postgres_cluster")) as url:
        yield url


@pytest.fixture
async def postgres_url(postgres_cluster: PostgresServer) -> AsyncIterator[str]:
    """A URL of a fresh database on the session's PostgreSQL server."""
    async with fresh_database(postgres_cluster) as url:
        yield url


@asynccontextmanager
async def fresh_database(server: PostgresServer) -> AsyncIterator[str]:
    """A new empty database on this server, dropped afterwards: its URL."""
    name = await server.create_database()
    try:
        yield server.url(name)
    finally:
        await server.drop_database(name)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """An open store on an empty database."""
    opened = await Store.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()
