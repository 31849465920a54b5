"""`python -m cluster` as a user runs it: serves through nginx, and SIGTERM stops every part."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from cluster.postgres import free_port
from tests.cluster.conftest import require_cluster_tools

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_stops_nginx_the_replicas_and_postgres_and_removes_the_temp_folder() -> None:
    require_cluster_tools()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CHAT_", "APP_"))}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "cluster", "--replicas", "2", "--port", str(port)],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert launcher.stdout is not None
    printed = []
    try:
        for line in launcher.stdout:
            printed.append(line)
            if "serving on" in line or "did not start" in line:
                break
        assert f"serving on http://127.0.0.1:{port}" in "".join(printed), "".join(printed)
        folder = Path(re.search(r"logs in (\S+)\)", printed[0])[1])  # type: ignore[index]
        replica_pids = [int(pid) for pid in re.findall(r"pid (\d+)", "".join(printed))]
        database_port = int(re.search(r"database: \S+@127.0.0.1:(\d+)/", "".join(printed))[1])  # type: ignore[index]
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
        launcher.send_signal(signal.SIGTERM)
        rest = launcher.communicate(timeout=60)[0]
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, "".join(printed) + rest
    assert "stopped" in rest
    assert not folder.exists(), list(folder.iterdir())
    assert len(replica_pids) == 2 and not any(alive(pid) for pid in replica_pids), replica_pids
    assert refuses(port), "nginx still listens"
    assert refuses(database_port), "PostgreSQL still listens"


def alive(pid: int) -> bool:
    """Whether a process of this id still runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def refuses(port: int) -> bool:
    """Whether nothing listens on this port of 127.0.0.1 any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False
