"""Conversation turns, the messages they send to Claude, and keeping them in step with the screen."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from anthropic.types import ContentBlockParam, MessageParam

from chat.attachments import file_path, load_attachment
from chat.errors import ChatError


class ShownPair(NamedTuple):
    """One exchange as the screen shows it: the user's text, the answer, the attached files' paths."""

    user: str
    answer: str | None
    files: tuple[str, ...] = ()


THINKING_TYPES = {"thinking", "redacted_thinking"}


@dataclass(frozen=True)
class Turn:
    """One exchange: the user's message and what Claude's answer became in history."""

    user: MessageParam
    assistant: MessageParam | None  # None: no answer worth sending back (failed or empty)
    shown_user: str
    shown_answer: str | None
    shown_files: tuple[str, ...] = ()  # names of the files shown with the user's message
    system: str | None = None  # the system prompt it was answered under; None: rebuilt from the screen

    @classmethod
    def from_text(cls, user: str, answer: str | None) -> Turn:
        """A turn rebuilt from what the screen shows (plain text only)."""
        return cls.from_screen(ShownPair(user, answer))

    @classmethod
    def from_screen(cls, pair: ShownPair) -> Turn:
        """A turn rebuilt from what the screen shows, its files read again from their paths."""
        reply: MessageParam | None = None
        if pair.answer and pair.answer.strip():
            reply = {"role": "assistant", "content": [{"type": "text", "text": pair.answer}]}
        return cls(user_message(pair.user, [_shown_file_block(p) for p in pair.files]), reply, *_shown(pair))

    def matches(self, pair: ShownPair) -> bool:
        """True when the screen still shows this turn as it was recorded."""
        user, answer, files = _shown(pair)
        return (
            same_words(self.shown_user, user)
            and same_words(self.shown_answer, answer)
            and self.shown_files == files
        )


def user_message(text: str, blocks: Sequence[ContentBlockParam] = ()) -> MessageParam:
    """A user message: plain text, or the files' blocks followed by the text (Claude reads images first)."""
    if not blocks:
        return {"role": "user", "content": text}
    text_blocks: list[ContentBlockParam] = [{"type": "text", "text": text}] if text.strip() else []
    return {"role": "user", "content": [*blocks, *text_blocks]}


def message_parts(message: str | Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """The text and files of a message from the UI: a string, or a dict with 'text' and 'files'."""
    if isinstance(message, Mapping):
        return str(message.get("text") or ""), list(message.get("files") or [])
    return message or "", []


def messages_for(turns: Sequence[Turn], system: str | None = None) -> list[MessageParam]:
    """The message list Claude gets: answered turns only, so roles always alternate.

    Given the system prompt of the coming request, thinking blocks of turns answered under
    another system prompt are left out: a thinking block is only valid after the same prefix
    (system prompt included) it was produced with, and the API rejects or drops it otherwise.
    """
    messages: list[MessageParam] = []
    for turn in turns:
        if turn.assistant is None:
            continue
        assistant = turn.assistant
        if system is not None and turn.system is not None and turn.system != system:
            assistant = _without_thinking(assistant)
        messages += [turn.user, assistant]
    return messages


def _without_thinking(message: MessageParam) -> MessageParam:
    content = message["content"]
    if isinstance(content, str):
        return message
    kept = [b for b in content if not (isinstance(b, Mapping) and b.get("type") in THINKING_TYPES)]
    return {"role": message["role"], "content": kept}


def reconcile(turns: Sequence[Turn], shown: Sequence[ShownPair]) -> list[Turn]:
    """Keep the recorded turns the screen still shows; rebuild the rest from the screen."""
    kept = 0
    while kept < min(len(turns), len(shown)) and turns[kept].matches(ShownPair(*shown[kept])):
        kept += 1
    return list(turns[:kept]) + [Turn.from_screen(ShownPair(*pair)) for pair in shown[kept:]]


def shown_pairs(history: Sequence[Mapping[str, Any]]) -> list[ShownPair]:
    """Read chat messages (openai-style dicts) into (user, answer, files) triples.

    Display-only messages (those with a metadata title, such as thinking or usage boxes)
    are skipped; several answer messages in a row are joined.
    """
    if isinstance(history, str | bytes) or not isinstance(history, Sequence):
        raise ChatError("The chat history must be a list of messages; nothing was sent.")
    pairs: list[ShownPair] = []
    for message in history:
        if not isinstance(message, Mapping):
            raise ChatError("The chat history has an entry that is not a message; nothing was sent.")
        role, content = message.get("role"), message.get("content")
        if role == "user":
            pairs.append(ShownPair(text_of(content), None, _files(content)))
        elif role == "assistant" and pairs and not display_only(message):
            answer, text = pairs[-1].answer, text_of(content)
            pairs[-1] = pairs[-1]._replace(answer=text if answer is None else f"{answer}\n\n{text}")
    return pairs


def _shown(pair: ShownPair) -> tuple[str, str | None, tuple[str, ...]]:
    return pair.user, pair.answer, tuple(Path(path).name for path in pair.files)


def _shown_file_block(path: str) -> ContentBlockParam:
    try:
        return load_attachment(path).block()
    except ChatError as error:
        # The screen still shows the file but it can no longer be sent: say so instead.
        return {"type": "text", "text": f"[{Path(path).name} was attached here but is unavailable: {error}]"}


def display_only(message: Mapping[str, Any]) -> bool:
    """True for a box the UI shows but never sends (it has a metadata title)."""
    metadata = message.get("metadata") or {}
    return bool(isinstance(metadata, Mapping) and metadata.get("title"))


def _parts(content: Any) -> list[Any]:
    if isinstance(content, str | Mapping):
        return [content]
    return list(content) if isinstance(content, Sequence) else []


def text_of(content: Any) -> str:
    """The text of a chat message's content (a string, or a list of parts)."""
    if isinstance(content, str):
        return content
    texts = [
        part if isinstance(part, str) else part.get("text") for part in _parts(content) if _is_text(part)
    ]
    return "".join(text for text in texts if isinstance(text, str))


def _files(content: Any) -> tuple[str, ...]:
    # From the page a file part is {"type": "file", "file": {"path": ...}}; from the API, {"path": ...}.
    files = [p.get("file") if p.get("type") == "file" else p for p in _parts(content) if _is_file(p)]
    return tuple(path for path in (file_path(f) for f in files if isinstance(f, Mapping)) if path)


def _is_text(part: Any) -> bool:
    # From gradio_client a message's parts can be plain strings beside file dicts.
    return isinstance(part, str) or (isinstance(part, Mapping) and not _is_file(part))


def _is_file(part: Any) -> bool:
    return isinstance(part, Mapping) and (part.get("type") == "file" or "path" in part)


def same_words(recorded: str | None, shown: str | None) -> bool:
    """True when two texts have the same words (the UI may re-indent or re-wrap text)."""
    # Gradio runs inspect.cleandoc on displayed strings, so compare words, not characters.
    return (recorded or "").split() == (shown or "").split()
