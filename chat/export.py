"""A conversation as a file: the exact Messages API payload (JSON) or a readable transcript (Markdown).

The JSON is what the app sends to POST /v1/messages, so it can be replayed with curl; cut the
messages after any user message to reproduce that turn. Loading it back restores the
conversation; the model, system prompt and settings stay the app's own.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from anthropic.types import MessageParam

from chat.attachments import EXTENSIONS, Attachment, check_attachment
from chat.errors import ChatError
from chat.history import Turn
from chat.session import ChatSession

TEXT_BLOCKS = {"text"}
FILE_BLOCKS = {"image", "document"}
THINKING_BLOCKS = {"thinking", "redacted_thinking"}


def conversation_payload(session: ChatSession) -> dict[str, Any]:
    """The Messages API request body for the whole conversation, as the app streams it."""
    return {**session.request_for(session.messages), "stream": True}


def conversation_json(session: ChatSession) -> str:
    """The conversation payload as indented JSON."""
    return json.dumps(conversation_payload(session), indent=2, ensure_ascii=False) + "\n"


def conversation_markdown(session: ChatSession) -> str:
    """A readable transcript: who said what, which files were attached."""
    lines = ["# Conversation with Claude", "", f"Model: `{session.settings.model}`", ""]
    if session.settings.system_prompt:
        lines += ["System prompt:", "", *_quoted(session.settings.system_prompt), ""]
    for turn in session.turns:
        lines += ["## You", ""]
        lines += [f"*Attached: {', '.join(turn.shown_files)}*", ""] if turn.shown_files else []
        lines += [turn.shown_user, ""] if turn.shown_user.strip() else []
        lines += ["## Claude", "", turn.shown_answer or "*(no answer)*", ""]
    return "\n".join(lines)


def load_conversation(data: bytes | str, name: str = "the file") -> list[Turn]:
    """Turns from an exported payload; raise ChatError saying what is wrong with it."""
    try:
        payload = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ChatError(f"{name} is not a conversation export: it is not valid JSON ({error}).") from None
    messages = payload.get("messages") if isinstance(payload, Mapping) else None
    if not isinstance(messages, list) or not messages:
        raise ChatError(f"{name} is not a conversation export: it has no list of messages.")
    for number, message in enumerate(messages, start=1):
        _check_message(message, number, "user" if number % 2 else "assistant")
    names = _FileNames()
    return [
        _turn(user, messages[index + 1] if index + 1 < len(messages) else None, names)
        for index, user in enumerate(messages)
        if index % 2 == 0
    ]


def shown_messages(turns: Sequence[Turn], directory: Path) -> list[dict[str, Any]]:
    """Chat messages showing these turns, their files written into directory so the screen can show them."""
    shown: list[dict[str, Any]] = []
    for number, turn in enumerate(turns):
        folder = directory / f"turn-{number + 1}"
        files = zip(turn.shown_files, _file_blocks(turn.user), strict=False)  # a lost file has no block
        paths = [_write(folder / name, block) for name, block in files]
        text = [turn.shown_user] if turn.shown_user.strip() else []
        shown.append({"role": "user", "content": [*({"path": str(p)} for p in paths), *text]})
        if turn.shown_answer is not None:
            shown.append({"role": "assistant", "content": turn.shown_answer})
    return shown


class _FileNames:
    """Names for files from an export: a document's title, else image-1.png, document-2.pdf..."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, block: Mapping[str, Any], taken: set[str]) -> str:
        self.count += 1
        extension = EXTENSIONS.get(block["source"]["media_type"], "pdf")
        title = Path(str(block.get("title") or "")).name
        name = title if block["type"] == "document" and title else f"{block['type']}-{self.count}.{extension}"
        name = name if name not in taken else f"{self.count}-{name}"
        taken.add(name)
        return name


def _turn(user: MessageParam, answer: MessageParam | None, names: _FileNames) -> Turn:
    taken: set[str] = set()
    files = tuple(names(block, taken) for block in _file_blocks(user))
    answer_text = _text(answer) if answer is not None else None
    return Turn(user, answer, _text(user), answer_text, files)


def _check_message(message: Any, number: int, role: str) -> None:
    where = f"message {number}"
    if not isinstance(message, Mapping) or message.get("role") != role:
        raise ChatError(f"The conversation is not valid: {where} should be from the {role}.")
    content = message.get("content")
    if isinstance(content, str):
        if not content.strip():
            raise ChatError(f"The conversation is not valid: {where} is empty.")
        return
    if not isinstance(content, list) or not content:
        raise ChatError(f"The conversation is not valid: {where} has no content.")
    allowed = TEXT_BLOCKS | (FILE_BLOCKS if role == "user" else THINKING_BLOCKS)
    for block in content:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind not in allowed:
            raise ChatError(f"The conversation is not valid: {where} has a block of type {kind!r}.")
        if kind in FILE_BLOCKS:
            _check_file_block(block, where)
    if not any(block.get("type") in TEXT_BLOCKS | FILE_BLOCKS for block in content):
        raise ChatError(f"The conversation is not valid: {where} has no text.")


def _check_file_block(block: Mapping[str, Any], where: str) -> None:
    source = block.get("source")
    if not isinstance(source, Mapping) or source.get("type") != "base64":
        raise ChatError(f"The conversation is not valid: a file in {where} is not base64 data.")
    try:
        data = base64.b64decode(str(source.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise ChatError(f"The conversation is not valid: a file in {where} is not base64 data.") from None
    check_attachment(Attachment(f"The {block['type']} in {where}", str(source.get("media_type")), data))


def _file_blocks(message: MessageParam) -> list[Mapping[str, Any]]:
    content = message["content"]
    if isinstance(content, str):
        return []
    return [block for block in content if isinstance(block, Mapping) and block.get("type") in FILE_BLOCKS]


def _text(message: MessageParam) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    texts = [b.get("text", "") for b in content if isinstance(b, Mapping) and b.get("type") == "text"]
    return "".join(str(text) for text in texts)


def _write(path: Path, block: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(block["source"]["data"]))
    return path


def _quoted(text: str) -> list[str]:
    return [f"> {line}" for line in text.splitlines()]
