"""A throwaway PostgreSQL server: its own temporary folder, 127.0.0.1 only, deleted when stopped.

The server lives in a temporary folder owned by the `postgres` user (PostgreSQL refuses to run as
root), listens only on 127.0.0.1 on a free port with its unix socket in that folder, and trusts
local connections as user `chat`. The tests (tests/postgres.py) and the cluster launcher use it.
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
from pathlib import Path

import asyncpg

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


class PostgresServer:
    """One PostgreSQL server (a "cluster" in PostgreSQL's words) running in its own folder."""

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

    @property
    def log_path(self) -> Path:
        """The server's own log file."""
        return self.directory / "log"

    def _run(self, *args: str) -> None:
        command = [*self._as, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{tail}")

    def start(self) -> None:
        """Create the server's data folder and start it, waiting until it accepts connections."""
        data = self.directory / "data"
        self._run(str(self.bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8")
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            *("-D", str(data), "-o", options, "-l", str(self.log_path)),
            *("-w", "-t", str(START_SECONDS), "start"),
        )

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        try:
            data = self.directory / "data"
            if (data / "postmaster.pid").exists():
                self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one of its databases."""
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str | None = None) -> str:
        """A new empty database (this name, else a random test_ one); returns its name."""
        name = name or f"test_{secrets.token_hex(6)}"
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
