"""A throwaway PostgreSQL cluster for the tests: started once a session, a fresh database per test.

The cluster lives in a temporary folder owned by the `postgres` user (PostgreSQL refuses to run as
root), listens only on 127.0.0.1 on a free port with its unix socket in that folder, trusts local
connections as user `chat`, and is stopped and deleted at the end. Without PostgreSQL's binaries
the tests that need it skip, or fail when CI=true.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from chat.store import Store

USER = "chat"
PREFERRED_MAJOR = "15"
START_SECONDS = 30


def find_bin_dir() -> Path | None:
    """The folder with initdb and pg_ctl: PostgreSQL 15's when there, else the newest installed."""
    found = {Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")}
    on_path = shutil.which("initdb")
    if on_path:
        found.add(Path(on_path).resolve().parent)
    usable = [d for d in found if (d / "pg_ctl").exists()]
    if not usable:
        return None
    preferred = [d for d in usable if d.parent.name == PREFERRED_MAJOR]
    return preferred[0] if preferred else max(usable, key=lambda d: d.parent.name)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One running PostgreSQL cluster in its own folder."""

    def __init__(self, bin_dir: Path) -> None:
        owner = None
        if os.geteuid() == 0:  # PostgreSQL refuses root: run it as `postgres`, in a folder it owns
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root, but there is no `postgres` user to run it as") from None
        self.bin_dir = bin_dir
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="chat-pg-"))
        self._as: list[str] = []
        if owner is not None:
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        command = [*self._as, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.directory / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{tail}")

    def start(self) -> None:
        """Create the cluster and start it, waiting until it accepts connections."""
        data = self.directory / "data"
        self._run(str(self.bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8")
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            *("-D", str(data), "-o", options, "-l", str(self.directory / "log")),
            *("-w", "-t", str(START_SECONDS), "start"),
        )

    def stop(self) -> None:
        """Stop the cluster and delete its folder."""
        try:
            data = self.directory / "data"
            if (data / "postmaster.pid").exists():
                self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one of its databases."""
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{database}"

    async def create_database(self) -> str:
        """A new empty database's name."""
        name = f"test_{secrets.token_hex(6)}"
        await self._admin(f'CREATE DATABASE "{name}"')
        return name

    async def drop_database(self, name: str) -> None:
        """Drop a database, closing any connection still open to it."""
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user=USER, database="postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


def unavailable(reason: str) -> None:
    """Skip for want of PostgreSQL; in CI (CI=true), fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL is not available: {reason}")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster running for the whole session."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable(
            "no initdb/pg_ctl under /usr/lib/postgresql/*/bin or on PATH (apt-get install postgresql)"
        )
        raise AssertionError("unreachable")
    try:
        cluster = Cluster(bin_dir)
    except RuntimeError as error:
        unavailable(str(error))
        raise
    try:
        cluster.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        cluster.stop()
        unavailable(f"the cluster did not start: {error}")
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
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    name = await cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        await cluster.drop_database(name)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """An open store on an empty database."""
    opened = await Store.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()
