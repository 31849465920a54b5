"""A light client that chats with a Gradio ChatInterface the way its web page does.

Recorded from the real page (Chromium, Gradio 6.31): sending a message runs two unqueued events
(`_clear_and_save_textbox`, then `_append_message_to_history`) through POST /gradio_api/run/predict,
then joins the queue with `_submit_fn` (POST /gradio_api/queue/join) and reads its updates from the
session's Server-Sent Events stream (GET /gradio_api/queue/data). Stop posts /gradio_api/cancel.
After an answer the page copies the chatbot into the chat state (the `lambda` after `_submit_fn`),
which the next turn reads as its history; this client does that too. The page's purely cosmetic
events (swapping the submit and stop buttons, re-enabling the textbox, the saved-chats list) are
left out. One `PageChat` is one browser tab; hundreds share one `httpx.AsyncClient`.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "gradio_api"
# ui.render.NOTICE_TITLE (also app.NOTICE_TITLE); not imported, to keep this client free of Gradio.
NOTICE_TITLE = "\u26a0\ufe0f Error"
FAILURE_MARK = re.compile(r'^<div class="chat-failure" role="alert">|</div>$')  # ui.render.notice_box's


@dataclass
class PageConfig:
    """What the page learns from /config: event ids and where the chatbot is in their outputs."""

    url: str
    events: dict[str, dict[str, Any]]
    component_types: dict[int, str]

    @classmethod
    async def fetch(cls, http: httpx.AsyncClient, url: str) -> PageConfig:
        """Read the app's /config."""
        response = await http.get(f"{url.rstrip('/')}/config")
        response.raise_for_status()
        config = response.json()
        events = {dep["api_name"]: dep for dep in config["dependencies"] if dep.get("api_name")}
        types = {component["id"]: component["type"] for component in config["components"]}
        return cls(url.rstrip("/"), events, types)

    def event(self, api_name: str) -> dict[str, Any]:
        """The dependency the page runs for this step."""
        return self.events[api_name]

    def follow_up(self, api_name: str) -> str:
        """The event the page runs right after this one."""
        event_id = self.events[api_name]["id"]
        return next(name for name, dep in self.events.items() if dep.get("trigger_after") == event_id)

    def message_box_value(self, text: str) -> str | dict[str, Any]:
        """What the page sends for a typed message: a string, or text and files for a multimodal box."""
        box = self.events["_clear_and_save_textbox"]["inputs"][0]
        return {"text": text, "files": []} if self.component_types[box] == "multimodaltextbox" else text

    def chatbot_output(self, api_name: str) -> int:
        """Where the chatbot's value is among an event's outputs."""
        outputs = self.events[api_name]["outputs"]
        return next(i for i, block in enumerate(outputs) if self.component_types[block] == "chatbot")


@dataclass
class Answer:
    """One message's answer as the page saw it, with its timings (time.monotonic) and costs."""

    message: str
    sent_at: float
    first_update_at: float | None = None
    completed_at: float | None = None
    updates: int = 0
    text: str = ""
    bytes_received: int = 0
    error: str | None = None
    update_times: list[float] = field(default_factory=list)


class PageChat:
    """One browser tab: its own session, its chat on screen, one message at a time."""

    def __init__(self, http: httpx.AsyncClient, config: PageConfig) -> None:
        self.http = http
        self.config = config
        self.session_hash = secrets.token_hex(6)
        self.chatbot: list[dict[str, Any]] = []
        self.event_id: str | None = None
        self.answer: Answer | None = None  # the latest message's answer, as far as it got
        self._trigger = config.event("_clear_and_save_textbox")["targets"][0][0]

    async def send(self, message: str) -> AsyncIterator[Answer]:
        """Send a message; yield the answer after every update the page would render."""
        answer = self.answer = Answer(message, time.monotonic())
        await self._predict("_clear_and_save_textbox", [self.config.message_box_value(message)], answer)
        shown = await self._predict("_append_message_to_history", [None, self.chatbot], answer)
        self.chatbot = shown[0]
        submit = self.config.event("_submit_fn")
        joined = await self._post("queue/join", self._body(submit, [None] * len(submit["inputs"])), answer)
        self.event_id = joined["event_id"]
        try:
            async for _ in self._updates(answer):
                yield answer
        finally:
            self.event_id = None
        await self._predict(self.config.follow_up("_submit_fn"), [self.chatbot], answer)  # screen -> state

    async def cancel(self) -> None:
        """Press Stop: ask the server to cancel the running answer, as the page does."""
        submit = self.config.event("_submit_fn")
        body = {"event_id": self.event_id, "session_hash": self.session_hash, "fn_index": submit["id"]}
        response = await self.http.post(f"{self.config.url}/{API}/cancel", json=body)
        response.raise_for_status()

    async def _updates(self, answer: Answer) -> AsyncIterator[None]:
        chatbot_at = self.config.chatbot_output("_submit_fn")
        url = f"{self.config.url}/{API}/queue/data"
        full_value_next = True  # the first update carries the whole chatbot, later ones a diff
        async with self.http.stream("GET", url, params={"session_hash": self.session_hash}) as stream:
            try:
                async for line in stream.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    kind = event.get("msg")
                    if kind in ("process_generating", "process_completed"):
                        self._apply(event, chatbot_at, answer, full_value_next or kind == "process_completed")
                        full_value_next = False
                        if kind == "process_generating":
                            yield
                    if kind in ("process_completed", "close_stream", "unexpected_error"):
                        if kind == "unexpected_error":
                            answer.error = event.get("message") or "unexpected error"
                        break
            finally:
                answer.bytes_received += stream.num_bytes_downloaded
        answer.completed_at = time.monotonic()

    def _apply(self, event: dict[str, Any], chatbot_at: int, answer: Answer, full_value: bool) -> None:
        output = event.get("output") or {}
        if event.get("success") is False:
            answer.error = output.get("error") or "error"
            return
        data = output.get("data")
        if not data:
            return
        value = data[chatbot_at]
        if isinstance(value, dict) and value.get("__type__") == "update":  # no change (the app's fix 15)
            value = value.get("value", self.chatbot)
        self.chatbot = value if full_value else apply_diff(self.chatbot, value)
        text = answer_text(self.chatbot)
        answer.error = answer.error or notice_text(self.chatbot)
        if event["msg"] == "process_generating" and text != answer.text:
            now = time.monotonic()
            answer.first_update_at = answer.first_update_at or now
            answer.updates += 1
            answer.update_times.append(now)
        answer.text = text

    async def _predict(self, api_name: str, data: list[Any], answer: Answer) -> list[Any]:
        body = self._body(self.config.event(api_name), data)
        return (await self._post("run/predict", body, answer))["data"]

    async def _post(self, path: str, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        response = await self.http.post(f"{self.config.url}/{API}/{path}", json=body)
        answer.bytes_received += response.num_bytes_downloaded
        response.raise_for_status()
        return response.json()

    def _body(self, event: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        return {
            "data": data,
            "event_data": None,
            "fn_index": event["id"],
            "trigger_id": self._trigger,
            "session_hash": self.session_hash,
        }


def answer_text(chatbot: list[dict[str, Any]]) -> str:
    """The text of the last answer on screen ("" before there is one), without its titled boxes."""
    answer: list[str] = []
    for message in reversed(chatbot):
        if message.get("role") != "assistant":
            break
        if not (message.get("metadata") or {}).get("title"):
            answer.insert(0, _text(message.get("content")))
    return "\n\n".join(answer)


def notice_text(chatbot: list[dict[str, Any]]) -> str | None:
    """The failure notice the last answer ends with (the app's titled error box), if any."""
    last = chatbot[-1] if chatbot else {}
    if last.get("role") == "assistant" and (last.get("metadata") or {}).get("title") == NOTICE_TITLE:
        return FAILURE_MARK.sub("", _text(last.get("content"))).strip()
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def apply_diff(value: Any, diff: list[list[Any]]) -> Any:
    """Apply Gradio's streaming diff (append / replace / add / delete at a path), in place."""
    for action, path, change in diff:
        if not path:
            value = value + change if action == "append" else change
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if action == "append":
            parent[key] += change
        elif action == "replace":
            parent[key] = change
        elif action == "add":
            if isinstance(parent, list):
                parent.insert(int(key), change)
            else:
                parent[key] = change
        elif action == "delete":
            del parent[int(key) if isinstance(parent, list) else key]
    return value
