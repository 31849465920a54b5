"""What one message costs on the wire as the conversation grows: one tab, one conversation, many turns.

    python -m bench.run --only-turns                 # turns 1, 10, 40, 80 (about 4 minutes)
    python -m bench.run --only-turns --turns 1,5     # a quick look

One tab holds one conversation for the last turn's number of messages. Every message runs what the
page runs when the message box is submitted: the chain of events in the app's /config that starts
at the box's submit (ChatInterface's `_clear_and_save_textbox`, `_append_message_to_history`,
`_submit_fn`, the copy of the screen into the chat state, re-enabling the box, saving, and the app's
own events chained on them: the sidebar's list, the title, the stop receipt, the context meter).
Each is run as the page runs it: unqueued ones through POST run/predict, queued ones through POST
queue/join and the session's Server-Sent Events stream, with the inputs the page would send (the
chatbot's value as shown, the other components' values; gr.State stays on the server). For the
chosen turns it records the bytes of every response body the server sent, split by event and, for
the answer's stream, into its first full value, its diffs, process_completed and the rest, and the
bytes of every request body the tab sent. HTTP headers, the page load and the heartbeat (every
15 s, not per message) are not counted.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.page_client import API, PageConfig, answer_text, apply_diff

SUBMIT = "_submit_fn"
STREAM_PARTS = ("queue/join", "first value", "diffs", "process_completed", "stream other")
TARGET_TURN, TARGET_RATIO = 40, 3.0  # issue 14: a message at turn 40 costs at most 3x one at turn 1


@dataclass
class Cost:
    """The bytes of one part of a message: the server's response bodies, and the tab's request bodies."""

    received: int = 0
    sent: int = 0


@dataclass
class MessageCost:
    """One message's bytes, by where they went (insertion order: the order the page ran them)."""

    turn: int
    parts: dict[str, Cost] = field(default_factory=dict)
    answer: str = ""

    def add(self, label: str, received: int = 0, sent: int = 0) -> None:
        """Count bytes for one part."""
        cost = self.parts.setdefault(label, Cost())
        cost.received += received
        cost.sent += sent

    def summary(self) -> dict[str, Any]:
        """As benchmark.json holds it."""
        return {
            "turn": self.turn,
            "received": sum(cost.received for cost in self.parts.values()),
            "sent": sum(cost.sent for cost in self.parts.values()),
            "parts": {label: {"received": c.received, "sent": c.sent} for label, c in self.parts.items()},
        }


class CountingTab:
    """One browser tab that runs the page's whole chain of events per message and counts its bytes."""

    def __init__(self, http: httpx.AsyncClient, config: PageConfig, raw: dict[str, Any]) -> None:
        self.http = http
        self.config = config
        self.session_hash = secrets.token_hex(6)
        self.dependencies = {dep["id"]: dep for dep in raw["dependencies"]}
        self.values: dict[int, Any] = {
            component["id"]: component.get("props", {}).get("value") for component in raw["components"]
        }
        self.submit = config.event("_clear_and_save_textbox")
        self.box = self.submit["inputs"][0]
        self.chatbot = next(i for i, kind in config.component_types.items() if kind == "chatbot")

    @classmethod
    async def open(cls, http: httpx.AsyncClient, url: str) -> CountingTab:
        """A tab on the app at `url` (reads its /config), after the page's load events have run."""
        config = await PageConfig.fetch(http, url)
        raw = (await http.get(f"{config.url}/config")).json()
        tab = cls(http, config, raw)
        loaded = MessageCost(0)  # once per page, not per message: not counted
        for dep in tab.dependencies.values():
            if dep.get("backend_fn") and any(event == "load" for _, event in dep["targets"]):
                await tab._run(dep, loaded)  # the visitor's token lands in its BrowserState
        return tab

    @property
    def screen(self) -> list[dict[str, Any]]:
        """The chat as the page shows it."""
        return self.values[self.chatbot] or []

    async def send(self, turn: int, message: str) -> MessageCost:
        """Send a message and run everything the page runs after it; return its bytes."""
        cost = MessageCost(turn)
        self.values[self.box] = self.config.message_box_value(message)
        await self._run(self.submit, cost)
        cost.answer = answer_text(self.screen)
        return cost

    async def _run(self, dep: dict[str, Any], cost: MessageCost, body: bytes | None = None) -> None:
        body = self._body(dep) if body is None else body
        succeeded = await (self._queued(dep, body, cost) if dep["queue"] else self._predict(dep, body, cost))
        followers = [
            follower
            for follower in self.dependencies.values()
            if follower.get("trigger_after") == dep["id"]
            and follower.get("backend_fn")
            and not (follower.get("trigger_only_on_success") and not succeeded)
            and not (follower.get("trigger_only_on_failure") and succeeded)
        ]
        # The page starts them all at once, with the values on screen now: their bodies are made
        # before any of them runs (one's outputs must not reach a sibling's inputs).
        for follower, follower_body in [(follower, self._body(follower)) for follower in followers]:
            await self._run(follower, cost, follower_body)

    def _body(self, dep: dict[str, Any]) -> bytes:
        body: dict[str, Any] = {"data": [self._input(block) for block in dep["inputs"]]}
        if dep is not self.submit:  # the page sends no event data with the box's own submit
            body["event_data"] = None
        body |= {
            "fn_index": dep["id"],
            "trigger_id": self.submit["targets"][0][0] if dep["targets"][0][1] == "then" else 0,
            "session_hash": self.session_hash,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()  # as JSON.stringify

    def _input(self, block: int) -> Any:
        """An input's value as the page sends it: none for a gr.State (kept on the server)."""
        kind, value = self._kind(block), self.values.get(block)
        if kind == "state":
            return None
        return "" if kind == "textbox" and value is None else value

    async def _post(self, path: str, body: bytes) -> httpx.Response:
        headers = {"content-type": "application/json"}
        response = await self.http.post(f"{self.config.url}/{API}/{path}", content=body, headers=headers)
        response.raise_for_status()
        return response

    async def _predict(self, dep: dict[str, Any], body: bytes, cost: MessageCost) -> bool:
        response = await self._post("run/predict", body)
        cost.add(self._label(dep), response.num_bytes_downloaded, len(body))
        self._show(dep, response.json()["data"])
        return True

    async def _queued(self, dep: dict[str, Any], body: bytes, cost: MessageCost) -> bool:
        label = self._label(dep)
        split = label == SUBMIT
        joined = await self._post("queue/join", body)
        cost.add(f"{label} queue/join" if split else label, joined.num_bytes_downloaded, len(body))
        event_id = joined.json()["event_id"]
        url = f"{self.config.url}/{API}/queue/data"
        generated, succeeded, counted = 0, True, 0
        baseline: list[Any] | None = None
        async with self.http.stream("GET", url, params={"session_hash": self.session_hash}) as stream:
            buffer, done = b"", False
            async for chunk in stream.aiter_raw():
                buffer += chunk
                while b"\n\n" in buffer and not done:
                    raw_message, buffer = buffer.split(b"\n\n", 1)
                    size = len(raw_message) + 2
                    counted += size
                    event = _event(raw_message)
                    kind = event.get("msg") if event.get("event_id", event_id) == event_id else None
                    part = "stream other"
                    if kind == "process_generating":
                        data = (event.get("output") or {}).get("data") or []
                        part = "first value" if generated == 0 else "diffs"
                        baseline = data if baseline is None else _apply_all(baseline, data)  # then diffs
                        self._show(dep, baseline)
                        generated += 1
                    elif kind == "process_completed":
                        part = "process_completed"
                        output = event.get("output") or {}
                        succeeded = bool(event.get("success", True))
                        if succeeded and output.get("data") is not None:
                            self._show(dep, output["data"])
                        done = True
                    elif kind in ("close_stream", "unexpected_error"):
                        succeeded = succeeded and kind == "close_stream"
                        done = True
                    cost.add(f"{label} {part}" if split else label, size)
                if done:
                    break
            cost.add(f"{label} stream other" if split else label, stream.num_bytes_downloaded - counted)
        return succeeded

    def _show(self, dep: dict[str, Any], data: Sequence[Any]) -> None:
        """Put an event's outputs on the page: a value, or an update's value if it carries one."""
        for block, value in zip(dep["outputs"], data, strict=False):
            if self._kind(block) == "state":
                continue
            if isinstance(value, dict) and value.get("__type__") == "update":
                if "value" not in value:
                    continue
                value = value["value"]
            self.values[block] = value

    def _kind(self, block: int) -> str:
        return self.config.component_types.get(block, "")

    def _label(self, dep: dict[str, Any]) -> str:
        name = dep.get("api_name") or f"event {dep['id']}"
        inputs = [self._kind(i) for i in dep["inputs"]]
        after = self.dependencies.get(dep.get("trigger_after") or -1, {})
        if after.get("api_name") == SUBMIT and inputs == ["chatbot"]:
            return f"{name} (state sync)"  # ChatInterface's copy of the screen into its history state
        return name


def _event(raw_message: bytes) -> dict[str, Any]:
    text = raw_message.decode("utf-8", "replace")
    payload = "".join(line[5:] for line in text.splitlines() if line.startswith("data:"))
    try:
        return json.loads(payload) if payload else {}
    except ValueError:
        return {}


def _apply_all(baseline: list[Any], diffs: Sequence[Any]) -> list[Any]:
    """Apply a streamed message's per-output diffs to the values so far (as Gradio's client does)."""
    return [apply_diff(old, change) for old, change in zip(baseline, diffs, strict=False)]


async def measure(url: str, turns: Sequence[int], timeout: float, expected_answer: str) -> dict[str, Any]:
    """One tab, one conversation up to the last turn: the bytes of each chosen turn's message."""
    wanted = sorted(set(turns))
    limits = httpx.Limits(max_keepalive_connections=4, keepalive_expiry=2.0)
    rows, failures = [], []
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=60), limits=limits) as http:
        tab = await CountingTab.open(http, url)
        for turn in range(1, wanted[-1] + 1):
            async with asyncio.timeout(timeout):
                cost = await tab.send(turn, f"turn {turn}: tell me more")
            if cost.answer.strip() != expected_answer.strip():
                failures.append(turn)
            if turn in wanted:
                rows.append(cost.summary())
        shown = len(tab.screen)
    first = rows[0]["received"] if rows else 0
    for row in rows:
        row["ratio"] = round(row["received"] / first, 2) if first else None
    return {"rows": rows, "messages_on_screen": shown, "turns_not_answered_in_full": failures}


def target(turns: dict[str, Any] | None) -> dict[str, Any]:
    """Issue 14's target: the bytes a message receives at turn 40 at most 3x those at turn 1."""
    by_turn = {row["turn"]: row for row in (turns or {}).get("rows", [])}
    ratio = by_turn[TARGET_TURN]["ratio"] if 1 in by_turn and TARGET_TURN in by_turn else None
    return {
        "target": f"turn {TARGET_TURN}: bytes a message receives at most {TARGET_RATIO:g}x turn 1",
        "figure": ratio,
        "limit": TARGET_RATIO,
        "met": None if ratio is None else ratio <= TARGET_RATIO,
    }


def markdown(turns: dict[str, Any]) -> list[str]:
    """The per-message bytes table, then where they went (received / sent per part, per turn)."""
    rows = turns["rows"]
    lines = [
        "**bytes per message against conversation length** (one tab; response and request bodies)\n",
        "| turn | bytes received | bytes sent | received / turn 1 |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {r['turn']} | {r['received']:,} | {r['sent']:,} | {r['ratio']}x |" for r in rows]
    labels = list(dict.fromkeys(label for row in rows for label in row["parts"]))
    lines += ["", "| part (received / sent bytes) | " + " | ".join(f"turn {r['turn']}" for r in rows) + " |"]
    lines.append("| --- |" + " --- |" * len(rows))
    for label in labels:
        cells = [row["parts"].get(label, {"received": 0, "sent": 0}) for row in rows]
        lines.append(f"| {label} | " + " | ".join(f"{c['received']:,} / {c['sent']:,}" for c in cells) + " |")
    lines.append("")
    return lines


def draw_panel(axes: Any, turns: dict[str, Any]) -> None:
    """The chart's panel: bytes per message against turn, received and sent, with the 3x target."""
    rows = turns["rows"]
    numbers = [row["turn"] for row in rows]
    axes.plot(numbers, [row["received"] / 1000 for row in rows], "o-", color="tab:blue", label="received")
    axes.plot(numbers, [row["sent"] / 1000 for row in rows], "s--", color="tab:green", label="sent")
    if rows and rows[0]["turn"] == 1:
        limit = TARGET_RATIO * rows[0]["received"] / 1000
        axes.axhline(limit, color="gray", linestyle=":", label=f"target: {TARGET_RATIO:g}x turn 1")
    axes.set(xlabel="turn (messages in the conversation)", ylabel="KB per message", title="Bytes per message")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
