"""The benchmark's Messages API: the loopback server in a process of its own, at a set token rate."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chat.wire import ScriptedMessage, Stream, TextBlock, message_events
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import last_user_text

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class TokenRate:
    """How the upstream answers: `deltas` deltas of `delta_chars` characters, `interval` s apart."""

    deltas: int = 200
    delta_chars: int = 6
    interval: float = 0.01
    first_token: float = 0.1  # the model's own delay before it starts answering

    def chunks(self) -> list[str]:
        """The answer's deltas: numbered, so a lost or repeated one shows."""
        width = self.delta_chars - 1
        return [f"{number % 10**width:0{width}d} " for number in range(self.deltas)]

    def answer(self) -> str:
        """The whole answer, as the page must end up showing it."""
        return "".join(self.chunks())

    def stream(self, body: dict[str, Any]) -> Stream:
        """The SSE stream for one request (every request gets the same answer)."""
        message = ScriptedMessage([TextBlock(self.chunks())], model="bench")
        events = list(message_events(message))
        return Stream(events, delay=self.interval, first_delay=self.first_token, steady=True)


class Upstream:
    """Start with `with Upstream(rate) as upstream:`; `take_exchanges()` drains what it has seen.

    The server runs in a subprocess (`python -m bench.upstream`), so its work does not compete with
    the load generator for one interpreter; it answers commands on stdin with JSON lines on stdout.
    """

    def __init__(self, rate: TokenRate) -> None:
        self.rate = rate
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Upstream:
        rate = json.dumps(asdict(self.rate))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.upstream", rate],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self._reply()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.close()  # end of commands: the server stops
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)

    @property
    def pid(self) -> int:
        """The server process's id (for its CPU time)."""
        assert self._process is not None
        return self._process.pid

    def take_exchanges(self) -> list[dict[str, Any]]:
        """Every request answered since the last call: its message and timings (time.monotonic)."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write("exchanges\n")
        self._process.stdin.flush()
        return json.loads(self._reply())

    def _reply(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], 60)
        line = self._process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError("the loopback Messages API is not answering (did it start?)")
        return line.strip()


def serve(rate: TokenRate) -> None:
    """Serve until stdin closes; answer each "exchanges" line with the exchanges as JSON."""
    with LoopbackMessagesAPI(rate.stream) as api:
        print(api.url, flush=True)
        for command in sys.stdin:
            if command.strip() == "exchanges":
                taken, api.exchanges = api.exchanges, []
                print(json.dumps([_summary(exchange) for exchange in taken]), flush=True)


def _summary(exchange: Any) -> dict[str, Any]:
    return {
        "message": last_user_text(exchange.body),
        "started_at": exchange.started_at,
        "first_delta_at": exchange.first_delta_at,
        "finished_at": exchange.finished_at,
        "client_left_at": exchange.client_left_at,
        "deltas_sent": exchange.deltas_sent,
    }


if __name__ == "__main__":
    serve(TokenRate(**json.loads(sys.argv[1])))
