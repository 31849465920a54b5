"""One exchange with Claude, as plain data: the prompt, the request as sent, the answer as returned.

An `Exchange` is the conversation's only record. The next request, the export, the transcript
and every screen derive from a list of them. It is JSON-serialisable (`to_dict`/`from_dict`);
files are referenced by hash (chat/files.py), never held inline.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chat.blocks import block_text
from chat.errors import ChatError
from chat.files import FileRef


class Status(enum.Enum):
    """Where an exchange's answer is in its life."""

    PENDING = "pending"
    STREAMING = "streaming"
    COMPLETE = "complete"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        """True once the answer is complete, stopped or failed."""
        return self in (Status.COMPLETE, Status.STOPPED, Status.FAILED)


@dataclass(frozen=True)
class Prompt:
    """What the user sent: text and attached files."""

    text: str
    files: tuple[FileRef, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The prompt as plain data."""
        return {"text": self.text, "files": [ref.to_dict() for ref in self.files]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prompt:
        """A prompt read back from a record."""
        return cls(str(data.get("text", "")), tuple(FileRef.from_dict(f) for f in data.get("files", ())))


@dataclass(frozen=True)
class Timings:
    """Seconds from the request to the first token, to the first answer text, and to the end."""

    first_token: float | None = None
    answer_started: float | None = None  # the first text: thinking ends here
    finished: float | None = None


@dataclass
class Exchange:
    """A prompt, the request it went out in, and the answer: complete, or partial and marked so.

    `request` holds every request option as sent (model, system, max_tokens, thinking,
    output_config, cache_control, tools); its messages are those of the first `context`
    exchanges before this one, then this prompt: see chat/history.py.
    `response` is the final message's `to_dict()`, or for a stopped or failed answer the SDK's
    snapshot of what had arrived; None when nothing did.
    """

    prompt: Prompt
    request: dict[str, Any]
    context: int = 0
    status: Status = Status.PENDING
    response: dict[str, Any] | None = None
    error: ChatError | None = None
    timings: Timings = field(default_factory=Timings)
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def partial(self) -> bool:
        """True unless the answer arrived whole."""
        return self.status is not Status.COMPLETE

    @property
    def content(self) -> list[dict[str, Any]]:
        """The answer's content blocks as they arrived (empty while nothing has)."""
        return list((self.response or {}).get("content") or [])

    @property
    def text(self) -> str:
        """The answer's text blocks, joined."""
        return block_text(self.content, "text")

    @property
    def thinking(self) -> str:
        """The answer's thinking, joined."""
        return block_text(self.content, "thinking")

    @property
    def usage(self) -> dict[str, Any] | None:
        """The usage the API reported (for a partial answer: what message_start said)."""
        return (self.response or {}).get("usage")

    @property
    def stop_reason(self) -> str | None:
        """Why the answer ended, as the API said; None for a partial one."""
        return None if self.partial else (self.response or {}).get("stop_reason")

    @property
    def model(self) -> str:
        """The model that answered (the one asked for, until it says)."""
        return str((self.response or {}).get("model") or self.request.get("model", ""))

    def to_dict(self) -> dict[str, Any]:
        """The exchange as JSON-ready data."""
        return {
            "id": self.id,
            "started_at": self.started_at,
            "prompt": self.prompt.to_dict(),
            "request": self.request,
            "context": self.context,
            "status": self.status.value,
            "partial": self.partial,
            "response": self.response,
            "error": self.error.to_dict() if self.error else None,
            "timings": {
                "first_token": self.timings.first_token,
                "answer_started": self.timings.answer_started,
                "finished": self.timings.finished,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Exchange:
        """An exchange read back from `to_dict()`'s output."""
        timings = data.get("timings") or {}
        error = data.get("error")
        status = Status(data.get("status", "complete"))
        if not status.ended:
            status = Status.STOPPED  # a record left streaming: what arrived is all there is
        return cls(
            prompt=Prompt.from_dict(data.get("prompt") or {}),
            request=dict(data.get("request") or {}),
            context=int(data.get("context", 0)),
            status=status,
            response=dict(data["response"]) if data.get("response") else None,
            error=ChatError.from_dict(error) if isinstance(error, Mapping) else None,
            timings=Timings(
                timings.get("first_token"), timings.get("answer_started"), timings.get("finished")
            ),
            started_at=str(data.get("started_at", "")),
            id=str(data.get("id") or uuid.uuid4().hex),
        )
