"""N replicas of app.py behind nginx (deploy/nginx.conf), sharing one PostgreSQL and one data folder.

    with Cluster(replicas=2) as cluster:
        httpx.get(cluster.url)

Everything listens on 127.0.0.1 only. The PostgreSQL server is a throwaway one (cluster/postgres.py)
unless CHAT_DATABASE_URL is given; the data folder is a temporary one unless `data_dir` is given.
Stopping goes from the front: nginx, then the replicas (SIGINT, as Ctrl-C: app.py then stops and
saves its live answers), then PostgreSQL; the temporary folders are deleted.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
from dotenv import dotenv_values

from cluster.postgres import PostgresServer, find_bin_dir, free_port

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
ROUTE_COOKIE = "chat_route"  # deploy/nginx.conf's sticky-session cookie
DATABASE_NAME = "chat"
START_SECONDS = 120.0  # a replica builds its page and opens the store; slow machines take a while
STOP_SECONDS = 30.0  # a replica saving its live answers before it exits
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ACCESS_LINE = re.compile(
    r'^(?P<address>\S+) \[[^\]]*\] "(?P<method>\S+) (?P<target>\S+)[^"]*" (?P<status>\d+) \d+ '
    r"route=(?P<route>\S*) upstream=(?P<upstream>.*?) request_time="
)


class ClusterError(RuntimeError):
    """A part of the cluster did not start; the message names its log."""


def nginx_binary() -> Path | None:
    """nginx's executable: /usr/sbin/nginx, else the one on PATH."""
    for candidate in ("/usr/sbin/nginx", shutil.which("nginx")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


@dataclass
class Replica:
    """One running `python app.py` of the cluster."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    interrupted: bool = False

    @property
    def url(self) -> str:
        """Its own address, bypassing nginx."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        """What it has printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL it, as a crash would: nothing is saved."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def interrupt(self) -> None:
        """Send it one Ctrl-C (SIGINT): it stops serving and saves its live answers."""
        # Once only: a second one would interrupt that saving.
        if self.process.poll() is None and not self.interrupted:
            self.interrupted = True
            self.process.send_signal(signal.SIGINT)

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop it as Ctrl-C does (it saves its live answers); SIGKILL after `timeout` seconds."""
        self.interrupt()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def cpu_seconds(self) -> float:
        """User plus system CPU it has used so far."""
        return tree_cpu_seconds(self.process.pid)


@dataclass(frozen=True)
class ProxiedRequest:
    """One request as nginx logged it: which browser (route cookie) went to which replica."""

    method: str
    path: str
    status: int
    route: str
    replica: str | None  # the replica's name; None when nginx answered itself


class Cluster:
    """PostgreSQL, N replicas of app.py and nginx in front; a context manager."""

    def __init__(
        self,
        replicas: int = 2,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        base_env: Mapping[str, str] | None = None,
        data_dir: Path | None = None,
        nginx_conf: Path = NGINX_CONF,
        start_seconds: float = START_SECONDS,
    ) -> None:
        if replicas < 1:
            raise ValueError("a cluster needs at least one replica")
        self.replica_count = replicas
        self.port = port or free_port()
        self.env = dict(env or {})
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.nginx_conf = nginx_conf
        self.start_seconds = start_seconds
        self.directory = Path(tempfile.mkdtemp(prefix="chat-cluster-"))
        self.directory.chmod(0o755)  # nginx's workers (nobody, when started as root) write temp files here
        self.data_dir = data_dir or self.directory / "data"
        self.replicas: list[Replica] = []
        self.postgres: PostgresServer | None = None
        self.database_url = self.env.get("CHAT_DATABASE_URL", "")
        self.nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where browsers go: nginx."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        """nginx's access log: one line per request, with its route cookie and replica."""
        return self.directory / "nginx-access.log"

    @property
    def nginx_log(self) -> Path:
        """nginx's error log."""
        return self.directory / "nginx-error.log"

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop(keep_logs=True)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start PostgreSQL (unless a database URL was given), the replicas, then nginx."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.database_url:
            self.database_url = self._start_postgres()
        # The first replica creates the database's tables alone; the others then start together.
        self._start_replica(1)
        self._wait_until_serving(self.replicas[0])
        for number in range(2, self.replica_count + 1):
            self._start_replica(number)
        for replica in self.replicas[1:]:
            self._wait_until_serving(replica)
        self._start_nginx()

    def stop(self, keep_logs: bool = False) -> None:
        """Stop nginx, then the replicas (saving their answers), then PostgreSQL; delete the temp
        folders (but for the logs, when kept: a failed start's error names them)."""
        try:
            if self.nginx is not None and self.nginx.poll() is None:
                self.nginx.terminate()  # fast shutdown: open SSE streams would hold a graceful one
                try:
                    self.nginx.wait(10)
                except subprocess.TimeoutExpired:
                    self.nginx.kill()
                    self.nginx.wait(5)
            for replica in self.replicas:  # all at once: each takes a few seconds
                replica.interrupt()
            for replica in self.replicas:
                replica.stop()
        finally:
            if self.postgres is not None:
                self.postgres.stop()
            if keep_logs:
                for path in self.directory.iterdir():
                    if path.suffix not in (".log", ".out"):
                        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
            else:
                shutil.rmtree(self.directory, ignore_errors=True)  # a data_dir given lives elsewhere

    def replica_named(self, name: str) -> Replica:
        """The replica of this name (replica-1, replica-2, ...)."""
        return next(replica for replica in self.replicas if replica.name == name)

    def requests(self) -> list[ProxiedRequest]:
        """Every request nginx has finished so far, oldest first (an open SSE stream is logged at its end)."""
        by_port = {str(replica.port): replica.name for replica in self.replicas}
        found = []
        text = self.access_log.read_text(errors="replace") if self.access_log.exists() else ""
        for line in text.splitlines():
            match = ACCESS_LINE.match(line)
            if match is None:
                continue
            # After a failed try nginx lists every replica it tried ("a, b"): the last one answered.
            last = match["upstream"].split(",")[-1].strip()
            port = last.rsplit(":", 1)[-1] if ":" in last else ""
            found.append(
                ProxiedRequest(
                    match["method"],
                    match["target"].split("?", 1)[0],
                    int(match["status"]),
                    match["route"],
                    by_port.get(port),
                )
            )
        return found

    def serving(self, route: str) -> Replica:
        """The replica that answered this browser's (route cookie's) latest finished request."""
        names = [r.replica for r in self.requests() if r.route == route and r.replica is not None]
        if not names:
            raise LookupError(f"nginx has logged no request with route {route!r} yet ({self.access_log})")
        return self.replica_named(names[-1])

    def cpu_seconds(self) -> float:
        """CPU the replicas have used so far, summed."""
        return sum(replica.cpu_seconds() for replica in self.replicas)

    def nginx_cpu_seconds(self) -> float:
        """CPU nginx (master and workers) has used so far."""
        return 0.0 if self.nginx is None else tree_cpu_seconds(self.nginx.pid)

    def replica_env(self, number: int) -> dict[str, str]:
        """The environment replica `number` runs with."""
        environment = {**self.base_env, **self.env}
        dotenv = dotenv_values(ROOT / ".env") if (ROOT / ".env").exists() else {}
        has_key = any(environment.get(k) or dotenv.get(k) for k in ("ANTHROPIC_API_KEY", "CHAT_PROVIDER"))
        if not has_key:
            environment.setdefault("CHAT_OFFLINE", "1")
        environment.update(
            CHAT_DATABASE_URL=self.database_url,
            CHAT_DATA_DIR=str(self.data_dir),
            CHAT_REPLICA_NAME=f"replica-{number}",
            APP_TRUSTED_PROXIES=self.env.get("APP_TRUSTED_PROXIES", "127.0.0.1"),
            GRADIO_ANALYTICS_ENABLED="False",
            PYTHONUNBUFFERED="1",
        )
        environment.pop("GRADIO_SERVER_PORT", None)
        environment.pop("GRADIO_SERVER_NAME", None)
        return environment

    def _start_postgres(self) -> str:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise ClusterError(
                "PostgreSQL is not installed: no initdb/pg_ctl under /usr/lib/postgresql/*/bin or on PATH "
                "(apt-get install postgresql), or set CHAT_DATABASE_URL"
            )
        self.postgres = PostgresServer(bin_dir)
        try:
            self.postgres.start()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            raise ClusterError(f"PostgreSQL did not start (log: {self.postgres.log_path}): {error}") from None
        asyncio.run(self.postgres.create_database(DATABASE_NAME))
        return self.postgres.url(DATABASE_NAME)

    def _start_replica(self, number: int) -> None:
        name, port = f"replica-{number}", free_port()
        log_path = self.directory / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT,
                env=self.replica_env(number),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the launcher alone, which stops things in order
            )
        self.replicas.append(Replica(name, port, process, log_path))

    def _wait_until_serving(self, replica: Replica) -> None:
        try:
            wait_until_serving(replica.url, replica.process, self.start_seconds)
        except ClusterError as error:
            raise ClusterError(
                f"{replica.name} {error}; its log ({replica.log_path}) ends:\n{replica.log[-3000:]}"
            ) from None

    def _start_nginx(self) -> None:
        nginx = nginx_binary()
        if nginx is None:
            raise ClusterError("nginx is not installed (apt-get install nginx)")
        conf = self.directory / "nginx.conf"
        (self.directory / "temp").mkdir(mode=0o755, exist_ok=True)
        conf.write_text(self._render_nginx_conf())
        command = [str(nginx), "-c", str(conf), "-p", f"{self.directory}/", "-e", str(self.nginx_log)]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30, check=False)
        if checked.returncode != 0:
            raise ClusterError(f"nginx refused {conf}:\n{checked.stderr}")
        with (self.directory / "nginx.out").open("wb") as out:
            self.nginx = subprocess.Popen(
                [*command, "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.nginx.poll() is not None:
                raise ClusterError(f"nginx exited with code {self.nginx.returncode}; see {self.nginx_log}")
            try:
                # a route cookie of our own, so this check is not mistaken for a browser
                httpx.get(f"{self.url}/config", cookies={ROUTE_COOKIE: "launcher"}, timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise ClusterError(f"nginx did not answer on {self.url} within 30 s; see {self.nginx_log}")

    def _render_nginx_conf(self) -> str:
        blocks = {
            "main paths": [f"pid {self.directory / 'nginx.pid'};", f"error_log {self.nginx_log} warn;"],
            "http paths": [
                f"access_log {self.access_log} chat;",
                *(f"{kind}_temp_path {self.directory / 'temp' / kind};" for kind in TEMP_PATHS),
            ],
            "listen": [f"listen 127.0.0.1:{self.port};"],
            "replicas": [
                f"server 127.0.0.1:{replica.port} max_fails=1 fail_timeout=10s;" for replica in self.replicas
            ],
        }
        return render_marked_blocks(self.nginx_conf.read_text(), blocks)


TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def wait_until_serving(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Wait until the app process at this URL serves its /config; ClusterError if it exits or is too slow."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(f"exited with code {process.returncode} before serving")
        try:
            if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ClusterError(f"did not serve {url} within {seconds:.0f} s")


def render_marked_blocks(text: str, blocks: Mapping[str, Sequence[str]]) -> str:
    """Replace the lines between `# BEGIN cluster: NAME` and `# END cluster: NAME` (kept) with these."""
    for name, lines in blocks.items():
        marker = re.escape(name)
        pattern = re.compile(
            rf"^(?P<begin>(?P<indent>[ \t]*)# BEGIN cluster: {marker}\n).*?"
            rf"(?P<end>^[ \t]*# END cluster: {marker}\n)",
            re.S | re.M,
        )
        match = pattern.search(text)
        if match is None:
            raise ClusterError(f"the nginx config has no '# BEGIN cluster: {name}' ... '# END' block")
        body = "".join(f"{match['indent']}{line}\n" for line in lines)
        text = text[: match.start()] + match["begin"] + body + match["end"] + text[match.end() :]
    return text


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process and its live descendants (from /proc); 0 once it is gone."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo += [child for child, parent in parents.items() if parent == current]
    return total
