"""Benchmark the chat under N concurrent users, against the seed's naive app in the same run.

    make bench                                   # the full run: N = 1, 20, 50, 100 (about 10 minutes)
    python -m bench.run --users 1,5 --deltas 50  # a quick look
    make bench BENCH_ARGS='--replicas 2'         # and "app" again as 2 replicas behind nginx on PostgreSQL
    python -m bench.run --only-turns             # only the bytes per message at turns 1, 10, 40, 80

It starts the loopback Messages API (its own process) streaming one answer of `--deltas` deltas of
`--delta-chars` characters, one every `--delta-interval` seconds after `--first-token` seconds;
then, for each app (`bench/baseline_app.py`, then `app.py`, each a subprocess), sends N chats at
once through the web page's own protocol (bench/page_client.py) and measures what the page gets.
N = 1 is run `--single-runs` times, one after another, and its median wall time is "one chat".
Then one tab holds one conversation in a fresh app process and the bytes of its messages at
`--turns` are counted (bench/turns.py).
Results: a JSON file and a PNG chart in `--out` (see BENCHMARKS.md for what each figure means).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from bench import profile, report, turns
from bench.chart import draw_chart
from bench.page_client import Answer, PageChat, PageConfig
from bench.upstream import TokenRate, Upstream
from cluster.launcher import Cluster, ClusterError, wait_until_serving
from cluster.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent
APPS = {"baseline": "bench/baseline_app.py", "app": "app.py"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_SECONDS = 120.0  # an app process builds its page (and opens its store) before it serves


@dataclass(frozen=True)
class Options:
    """What to run: which apps, how many users, how the upstream answers, where results go."""

    users: tuple[int, ...] = (1, 20, 50, 100)
    rate: TokenRate = field(default_factory=TokenRate)
    apps: tuple[str, ...] = ("baseline", "app")
    single_runs: int = 5
    out: Path = ROOT / "bench" / "results"
    chat_timeout: float = 900.0
    app_env: tuple[tuple[str, str], ...] = ()
    profile_users: int | None = None  # sample the app with py-spy during this N (bench/profile.py)
    replicas: int = 0  # run "app" as this many replicas behind nginx on PostgreSQL (0: one process, SQLite)
    turns: tuple[int, ...] = ()  # count one message's bytes at these turns of one conversation
    only_turns: bool = False  # run only that count, not the apps at N users


def run_benchmark(options: Options) -> dict[str, Any]:
    """Run every app at every N; write benchmark.json and benchmark.png; return the results."""
    started = time.time()
    result: dict[str, Any] = {
        "machine": machine(),
        "options": _options_dict(options),
        "runs": {},
    }
    with Upstream(options.rate) as upstream:
        for name, replicas in () if options.only_turns else app_runs(options):
            result["runs"][run_name(name, replicas)] = run_app(name, options, upstream, replicas)
        if options.turns:
            result["turns"] = run_turns(options, upstream)
    result["machine"]["load_average_after"] = os.getloadavg()
    result["duration_s"] = round(time.time() - started, 1)
    targets = evaluate_targets(result["runs"].get("app", []))
    if options.replicas:
        targets += evaluate_cluster_targets(result["runs"], run_name("app", options.replicas))
    result["targets"] = [*targets, turns.target(result.get("turns"))]
    result = json.loads(json.dumps(result))  # exactly what the file holds (lists, not tuples)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    draw_chart(result, options.out / "benchmark.png")
    (options.out / "benchmark.md").write_text(report.markdown(result))
    return result


def app_runs(options: Options) -> list[tuple[str, int]]:
    """Each app to run and as how many replicas (0: one process); with --replicas, "app" both ways."""
    runs = [(name, 0) for name in options.apps]
    if options.replicas and "app" in options.apps:
        runs.append(("app", options.replicas))
    return runs


def run_app(name: str, options: Options, upstream: Upstream, replicas: int = 0) -> list[dict[str, Any]]:
    """Every N for one app, in one app process; N = 1 first, as the reference."""
    rows = []
    clustered = name == "app" and replicas > 0
    if clustered:
        serving = served_cluster(name, upstream.url, options.out, options.app_env, replicas)
    else:
        serving = served(name, upstream.url, options.out, options.app_env)
    round_of = functools.partial(chat_round, browsers_apart=clustered)
    with serving as app:
        for url in app.warm_up_urls:  # every replica's first chat pays one-time costs
            asyncio.run(round_of(url, 1, f"{name} warm-up", options.chat_timeout))
        upstream.take_exchanges()
        for users in sorted(set(options.users) | {1}):
            rounds = options.single_runs if users == 1 else 1
            cpu_before, others_before = app.cpu_seconds(), _other_cpu(upstream)
            answers, walls = [], []
            raw_profile = options.out / f"profile-{name}-n{users}.raw.tmp"
            with profiled(app, raw_profile, users == options.profile_users):
                for number in range(rounds):
                    label = f"{name} n={users} round {number}"
                    answers += asyncio.run(round_of(app.url, users, label, options.chat_timeout))
                    walls.append(wall_time(answers[-users:]))
            cpu = app.cpu_seconds() - cpu_before
            row = summarize(users, answers, upstream.take_exchanges(), cpu, options.rate)
            row["wall_s"] = round(statistics.median(walls), 3)
            others = _other_cpu(upstream)
            row["cpu_s_upstream"] = round(others[0] - others_before[0], 2)
            row["cpu_s_load_generator"] = round(others[1] - others_before[1], 2)
            if users == options.profile_users:
                row["profile"] = profile.summarize(raw_profile)
            rows.append(row)
            print(f"{run_name(name, replicas):8} n={users:<4} {_brief(row)}", flush=True)
    one_chat = rows[0]["wall_s"]
    for row in rows:
        row["wall_ratio"] = round(row["wall_s"] / one_chat, 2)
    return rows


def run_turns(options: Options, upstream: Upstream) -> dict[str, Any]:
    """The app's bytes per message at each of `options.turns`, in an app process of its own."""
    # One visitor sends every message: more than the app's default 20 a minute.
    env = (("CHAT_RATE_LIMIT_PER_MINUTE", "0"), *options.app_env)
    with served("app", upstream.url, options.out, env) as app:
        measured = asyncio.run(
            turns.measure(app.url, options.turns, options.chat_timeout, options.rate.answer())
        )
    upstream.take_exchanges()
    for row in measured["rows"]:
        print(f"turns    turn {row['turn']:<4} {row['received']:>9,} B received  {row['sent']:>9,} B sent")
    if measured["turns_not_answered_in_full"]:
        print(f"turns    NOT answered in full at turns {measured['turns_not_answered_in_full']}", flush=True)
    return measured


async def chat_round(
    url: str, users: int, label: str, timeout: float, browsers_apart: bool = False
) -> list[Answer]:
    """N browser tabs send one message each, all at once; return what each page showed.

    `browsers_apart`: each tab its own cookie jar, as separate browsers (nginx's sticky route cookie
    would send tabs sharing one to a single replica)."""
    # Drop idle connections before uvicorn does (after 5 s): reusing one it is closing fails a POST,
    # which a browser would quietly retry and httpx does not.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=4 * users, keepalive_expiry=2.0)
    timeouts = httpx.Timeout(timeout, connect=60)
    async with contextlib.AsyncExitStack() as clients:
        http = await clients.enter_async_context(httpx.AsyncClient(timeout=timeouts, limits=limits))
        config = await PageConfig.fetch(http, url)
        if browsers_apart:
            own = httpx.Limits(max_connections=None, max_keepalive_connections=4, keepalive_expiry=2.0)
            jars = [httpx.AsyncClient(timeout=timeouts, limits=own) for _ in range(users)]
            tabs = [PageChat(await clients.enter_async_context(jar), config) for jar in jars]
        else:
            tabs = [PageChat(http, config) for _ in range(users)]
        await asyncio.gather(*(_chat(tab, f"{label} chat {n}", timeout) for n, tab in enumerate(tabs)))
    return [tab.answer for tab in tabs if tab.answer is not None]


async def _chat(tab: PageChat, message: str, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            async for _ in tab.send(message):
                pass
    except (httpx.HTTPError, TimeoutError, KeyError, ValueError) as exc:
        where = ""
        if isinstance(exc, httpx.RequestError | httpx.HTTPStatusError):
            where = f" on {exc.request.method} {exc.request.url.path}"
        if tab.answer is not None:
            tab.answer.error = tab.answer.error or f"{type(exc).__name__}{where}: {exc}"


def summarize(
    users: int, answers: Sequence[Answer], exchanges: Sequence[dict[str, Any]], cpu: float, rate: TokenRate
) -> dict[str, Any]:
    """The figures for one app at one N (see BENCHMARKS.md)."""
    upstream = {exchange["message"]: exchange for exchange in exchanges}
    expected = rate.answer().strip()
    waits, net_waits, after_token, to_upstream, upstream_first = [], [], [], [], []
    for answer in answers:
        exchange = upstream.get(answer.message)
        if answer.first_update_at is None or exchange is None or exchange["first_delta_at"] is None:
            continue
        model_first_token = exchange["first_delta_at"] - exchange["started_at"]
        waits.append(answer.first_update_at - answer.sent_at)
        net_waits.append(waits[-1] - model_first_token)
        after_token.append(answer.first_update_at - exchange["first_delta_at"])
        to_upstream.append(exchange["started_at"] - answer.sent_at)
        upstream_first.append(model_first_token)
    good = [a for a in answers if a.error is None and a.text.strip() == expected]
    rates = [a.updates / (a.completed_at - a.first_update_at) for a in good if _streamed_for(a) > 0]
    characters = sum(len(a.text) for a in answers)
    deltas = sum(exchange["deltas_sent"] for exchange in exchanges)
    return {
        "users": users,
        "chats": len(answers),
        "completed": len(good),
        "errors": sum(a.error is not None for a in answers),
        "error_messages": sorted({a.error for a in answers if a.error})[:5],
        "first_update_ms": _percentiles(net_waits),
        "first_update_wait_ms": _percentiles(waits),
        "first_update_after_token_ms": _percentiles(after_token),
        "sent_to_api_request_ms": _percentiles(to_upstream),
        "upstream_first_token_ms": _percentiles(upstream_first),
        "upstream_chars_per_s": _upstream_rate(exchanges, rate),
        "updates_per_s_per_chat": round(statistics.mean(rates), 1) if rates else None,
        "updates_per_chat": round(statistics.mean(a.updates for a in good), 1) if good else None,
        "bytes_per_char": round(sum(a.bytes_received for a in answers) / max(characters, 1), 2),
        "deltas": deltas,
        "cpu_s": round(cpu, 2),
        "cpu_s_per_1000_deltas": round(cpu / deltas * 1000, 3) if deltas else None,
    }


def evaluate_targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with the app's figure and whether it was met."""
    by_users = {row["users"]: row for row in rows}

    def figure(users: int, *path: str) -> Any:
        value: Any = by_users.get(users)
        for key in path:
            value = None if value is None else value.get(key)
        return value

    checks = [
        ("20 users: wall at most 1.3x one chat", figure(20, "wall_ratio"), 1.3),
        ("20 users: first update p50 at most 250 ms", figure(20, "first_update_ms", "p50"), 250),
        ("50 users: wall at most 2x one chat", figure(50, "wall_ratio"), 2.0),
        ("100 users: chats that did not complete", _incomplete(by_users.get(100)), 0),
        ("1 user: bytes per character at most 15", figure(1, "bytes_per_char"), 15),
        ("1 user: first update at most 30 ms", figure(1, "first_update_ms", "p50"), 30),
    ]
    return [
        {"target": name, "figure": value, "limit": limit, "met": None if value is None else value <= limit}
        for name, value, limit in checks
    ]


def run_name(name: str, replicas: int = 0) -> str:
    """The name an app's figures go under: "app, 2 replicas" when "app" runs as a cluster."""
    return f"{name}, {replicas} replicas" if name == "app" and replicas else name


def evaluate_cluster_targets(runs: dict[str, list[dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    """The targets of the replicas behind nginx, each with its figure and whether it was met."""
    by_users = {row["users"]: row for row in runs.get(name, [])}
    wall = by_users.get(100, {}).get("wall_ratio")
    first = by_users.get(20, {}).get("first_update_ms", {}).get("p50")
    checks = [
        (f"{name}, 100 users: wall at most 2x one chat", wall, 2.0),
        (f"{name}, 20 users: first update p50 at most 250 ms", first, 250),
        (f"{name}, 100 users: chats that did not complete", _incomplete(by_users.get(100)), 0),
    ]
    return [
        {"target": target, "figure": value, "limit": limit, "met": None if value is None else value <= limit}
        for target, value, limit in checks
    ]


@dataclass
class AppProcess:
    """A running app subprocess: where it serves, and how much CPU it has used."""

    process: subprocess.Popen[bytes]
    url: str

    @property
    def warm_up_urls(self) -> list[str]:
        """Where the warm-up chat goes."""
        return [self.url]

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the app process so far (from /proc)."""
        return process_cpu_seconds(self.process.pid)


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextmanager
def profiled(app: AppProcess, raw_path: Path, enabled: bool) -> Iterator[None]:
    """Sample the app with py-spy during the block when enabled."""
    if not enabled:
        yield
        return
    with profile.sampled(app.process.pid, raw_path):
        yield


def _other_cpu(upstream: Upstream) -> tuple[float, float]:
    """CPU seconds so far of the upstream server and of this process (the load generator)."""
    return process_cpu_seconds(upstream.pid), process_cpu_seconds(os.getpid())


@contextmanager
def served(
    name: str,
    upstream_url: str,
    out: Path,
    extra_env: Sequence[tuple[str, str]] = (),
    script: str | None = None,
) -> Iterator[AppProcess]:
    """Run one app (`script`, else APPS[name]) against the upstream on a free port until the block
    ends; its log goes to `out`."""
    port = free_port()
    ours = ("ANTHROPIC_", "CHAT_", "APP_", "GRADIO_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(ours)}
    env["CHAT_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-data-")  # its conversations: a fresh SQLite file
    env.update(
        ANTHROPIC_API_KEY="sk-bench-not-real",
        ANTHROPIC_BASE_URL=upstream_url,
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        CHAT_RATE_LIMIT_PER_ADDRESS="0",  # every simulated user comes from 127.0.0.1
        **dict(extra_env),
    )
    out.mkdir(parents=True, exist_ok=True)
    log = (out / f"{name}.log.tmp").open("wb")
    process = subprocess.Popen(
        [sys.executable, script or APPS[name]], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(url, process, START_SECONDS)
        except ClusterError as error:
            raise RuntimeError(f"the app {error}; see its log {log.name}") from None
        yield AppProcess(process, url)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


@dataclass
class ClusterApp:
    """The app as replicas behind nginx: nginx's URL, the replicas' CPU summed."""

    cluster: Cluster

    @property
    def url(self) -> str:
        """nginx's address."""
        return self.cluster.url

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The first replica (the one --profile samples)."""
        return self.cluster.replicas[0].process

    @property
    def warm_up_urls(self) -> list[str]:
        """Each replica directly: through nginx a warm-up chat would reach only one of them."""
        return [replica.url for replica in self.cluster.replicas]

    def cpu_seconds(self) -> float:
        """User plus system CPU of every replica so far."""
        return self.cluster.cpu_seconds()


@contextmanager
def served_cluster(
    name: str, upstream_url: str, out: Path, extra_env: Sequence[tuple[str, str]] = (), replicas: int = 2
) -> Iterator[ClusterApp]:
    """Run app.py as `replicas` replicas behind nginx on a throwaway PostgreSQL (cluster/) until the
    block ends; their logs are copied to `out`."""
    ours = ("ANTHROPIC_", "CHAT_", "APP_", "GRADIO_")
    env = {
        "ANTHROPIC_API_KEY": "sk-bench-not-real",
        "ANTHROPIC_BASE_URL": upstream_url,
        "CHAT_RATE_LIMIT_PER_ADDRESS": "0",  # every simulated user comes from 127.0.0.1
        **dict(extra_env),
    }
    base_env = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
    out.mkdir(parents=True, exist_ok=True)
    with Cluster(replicas=replicas, env=env, base_env=base_env) as cluster:
        try:
            yield ClusterApp(cluster)
        finally:
            for replica in cluster.replicas:
                (out / f"{name}-{replica.name}.log.tmp").write_text(replica.log)


def machine() -> dict[str, Any]:
    """Where the figures came from."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {name: version(name) for name in ("gradio", "anthropic", "httpx2", "uvicorn")},
        "load_average_before": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def wall_time(answers: Sequence[Answer]) -> float:
    """From the first message sent to the last answer complete."""
    ends = [a.completed_at or time.monotonic() for a in answers]
    return max(ends) - min(a.sent_at for a in answers)


def _streamed_for(answer: Answer) -> float:
    if answer.completed_at is None or answer.first_update_at is None:
        return 0.0
    return answer.completed_at - answer.first_update_at


def _upstream_rate(exchanges: Sequence[dict[str, Any]], rate: TokenRate) -> float | None:
    spans = [
        (e["deltas_sent"] - 1) * rate.delta_chars / (e["finished_at"] - e["first_delta_at"])
        for e in exchanges
        if e["finished_at"] and e["first_delta_at"] and e["deltas_sent"] > 1
    ]
    return round(statistics.median(spans)) if spans else None


def _incomplete(row: dict[str, Any] | None) -> int | None:
    return None if row is None else row["chats"] - row["completed"]


def _percentiles(seconds: Sequence[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50": None, "p99": None}
    ordered = sorted(seconds)
    nearest_rank = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return {"p50": round(statistics.median(ordered) * 1000, 1), "p99": round(nearest_rank * 1000, 1)}


def _brief(row: dict[str, Any]) -> str:
    return (
        f"wall {row['wall_s']:.2f}s  first update p50/p99 {row['first_update_ms']['p50']}/"
        f"{row['first_update_ms']['p99']} ms  {row['updates_per_s_per_chat']} upd/s  "
        f"{row['bytes_per_char']} B/char  {row['cpu_s_per_1000_deltas']} cpu-s/1k  "
        f"completed {row['completed']}/{row['chats']}"
    )


def _options_dict(options: Options) -> dict[str, Any]:
    described = asdict(options)
    described["out"] = str(options.out)
    described["app_env"] = dict(options.app_env)
    return described


def parse_args(argv: list[str] | None = None) -> Options:
    """Command-line options (see --help)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default, rate = Options(), TokenRate()
    parser.add_argument("--users", default="1,20,50,100", help="concurrent chats, comma-separated")
    parser.add_argument("--deltas", type=int, default=rate.deltas, help="deltas per answer")
    parser.add_argument("--delta-chars", type=int, default=rate.delta_chars, help="characters per delta")
    parser.add_argument("--delta-interval", type=float, default=rate.interval, help="seconds between deltas")
    parser.add_argument("--first-token", type=float, default=rate.first_token, help="upstream's own delay")
    parser.add_argument("--apps", default="baseline,app", help="which apps: baseline, app")
    parser.add_argument("--single-runs", type=int, default=default.single_runs, help="repeats of N=1")
    parser.add_argument("--out", type=Path, default=default.out, help="directory for JSON and PNG")
    parser.add_argument("--app-env", action="append", default=[], help="KEY=VALUE for the app (repeatable)")
    parser.add_argument("--profile", type=int, help="sample the app with py-spy at this N (needs py-spy)")
    parser.add_argument(
        "--replicas", type=int, default=0, help="run app as N replicas behind nginx on PostgreSQL (cluster/)"
    )
    parser.add_argument("--turns", default="1,10,40,80", help="turns whose bytes to count ('' for none)")
    parser.add_argument("--only-turns", action="store_true", help="count only the bytes per turn")
    args = parser.parse_args(argv)
    return Options(
        users=tuple(int(n) for n in args.users.split(",")),
        rate=TokenRate(args.deltas, args.delta_chars, args.delta_interval, args.first_token),
        apps=tuple(name.strip() for name in args.apps.split(",")),
        single_runs=args.single_runs,
        out=args.out,
        app_env=tuple(tuple(item.split("=", 1)) for item in args.app_env),  # type: ignore[misc]
        profile_users=args.profile,
        replicas=args.replicas,
        turns=tuple(int(n) for n in args.turns.split(",") if n.strip()),
        only_turns=args.only_turns,
    )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print where the results went."""
    options = parse_args(argv)
    result = run_benchmark(options)
    for target in result["targets"]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        print(f"{verdict:>12}  {target['target']}: {target['figure']}")
    print(f"results: benchmark.json, .png and .md in {options.out}")


if __name__ == "__main__":
    main()
