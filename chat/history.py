"""Conversation turns, the messages they send to Claude, and keeping them in step with the screen."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from anthropic.types import MessageParam

ShownPair = tuple[str, str | None]
THINKING_TYPES = {"thinking", "redacted_thinking"}


@dataclass(frozen=True)
class Turn:
    """One exchange: the user's message and what Claude's answer became in history."""

    user: MessageParam
    assistant: MessageParam | None  # None: no answer worth sending back (failed or empty)
    shown_user: str
    shown_answer: str | None
    system: str | None = None  # the system prompt it was answered under; None: rebuilt from the screen

    @classmethod
    def from_text(cls, user: str, answer: str | None) -> Turn:
        """A turn rebuilt from what the screen shows (plain text only)."""
        reply: MessageParam | None = None
        if answer and answer.strip():
            reply = {"role": "assistant", "content": [{"type": "text", "text": answer}]}
        return cls({"role": "user", "content": user}, reply, user, answer)

    def matches(self, pair: ShownPair) -> bool:
        """True when the screen still shows this turn as it was recorded."""
        user, answer = pair
        return same_words(self.shown_user, user) and same_words(self.shown_answer, answer)


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
    while kept < min(len(turns), len(shown)) and turns[kept].matches(shown[kept]):
        kept += 1
    return list(turns[:kept]) + [Turn.from_text(user, answer) for user, answer in shown[kept:]]


def shown_pairs(history: Sequence[Mapping[str, Any]]) -> list[ShownPair]:
    """Read chat messages (openai-style dicts) into (user, answer) pairs.

    Display-only messages (those with a metadata title, such as thinking or usage boxes)
    are skipped; several answer messages in a row are joined.
    """
    pairs: list[list[str | None]] = []
    for message in history:
        role, text = message.get("role"), text_of(message.get("content"))
        if role == "user":
            pairs.append([text, None])
        elif role == "assistant" and pairs and not display_only(message):
            answer = pairs[-1][1]
            pairs[-1][1] = text if answer is None else f"{answer}\n\n{text}"
    return [(user or "", answer) for user, answer in pairs]


def display_only(message: Mapping[str, Any]) -> bool:
    """True for a box the UI shows but never sends (it has a metadata title)."""
    metadata = message.get("metadata") or {}
    return bool(isinstance(metadata, Mapping) and metadata.get("title"))


def text_of(content: Any) -> str:
    """The text of a chat message's content (a string, or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return ""


def same_words(recorded: str | None, shown: str | None) -> bool:
    """True when two texts have the same words (the UI may re-indent or re-wrap text)."""
    # Gradio runs inspect.cleandoc on displayed strings, so compare words, not characters.
    return (recorded or "").split() == (shown or "").split()
