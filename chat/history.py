"""The messages Claude gets, derived from the exchanges: always valid under the API's rules.

- Only ended exchanges with an answer worth sending go back; so roles alternate from the user.
- A complete answer goes back as its content blocks (thinking and signatures included), except
  thinking produced under another system prompt: a thinking block is only valid after the prefix
  it came from. A stopped or failed answer goes back as the text the user saw.
- Every `tool_use` is answered in the next user message by a `tool_result` (this app runs no
  client tools, so it says so as an error), and the request carries those tools' definitions.
- An answer that used a server tool (web search, web fetch) goes back as its blocks only while that
  tool is on: the API documents no way to send `server_tool_use`, its results and citations of them
  without the tool defined (and is reported to refuse tool blocks in a request without tools). With
  the tool off it goes back as the text the user saw.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from anthropic.types import ContentBlockParam, MessageParam

from chat import blocks
from chat.errors import ChatError
from chat.exchange import Exchange, Prompt, Status
from chat.files import FileStore

THINKING_TYPES = {"thinking", "redacted_thinking"}
NO_TOOLS = "This app runs no tools, so this tool was not run."
UNKNOWN_TOOL_DESCRIPTION = "A tool used earlier in this conversation. This app cannot run it."


@dataclass(frozen=True)
class History:
    """The messages to send before a new prompt, and what that prompt must answer first."""

    messages: list[MessageParam]
    open_tool_calls: list[str]  # tool_use ids the next user message must answer
    tools: list[dict[str, Any]]  # definitions of every client tool the messages use


def history(
    exchanges: Sequence[Exchange], system: str, files: FileStore, server_tools: Collection[str] = ()
) -> History:
    """The history for a request under this system prompt, with these server tools on (by name)."""
    messages: list[MessageParam] = []
    open_calls: list[str] = []
    used: dict[str, dict[str, Any]] = {}
    for exchange in exchanges:
        answer = assistant_content(exchange)
        if answer is None:
            continue
        if not server_tools_used(answer) <= set(server_tools):
            text = shown_text(exchange)
            if not text.strip():
                continue
            answer = [{"type": "text", "text": text}]
        if str(exchange.request.get("system", "")) != system:
            answer = [b for b in answer if b.get("type") not in THINKING_TYPES]
        messages += [
            user_message(exchange.prompt, files, open_calls),
            {"role": "assistant", "content": answer},
        ]
        open_calls = blocks.tool_call_ids(answer)
        for block in answer:
            if block.get("type") == "tool_use":
                used.setdefault(str(block.get("name")), _definition(exchange, str(block.get("name"))))
    return History(messages, open_calls, list(used.values()))


def assistant_content(exchange: Exchange) -> list[dict[str, Any]] | None:
    """What of an answer goes back to Claude; None when nothing worth sending arrived."""
    if not exchange.status.ended:
        return None
    # A paused turn (stop_reason pause_turn) may end on a server tool call with no result yet:
    # valid only as the last message, so under a new question it goes back as its text.
    if exchange.status is Status.COMPLETE and exchange.stop_reason != "pause_turn":
        kept = [block for block in exchange.content if _sendable(block)]
        return kept if any(b.get("type") not in THINKING_TYPES for b in kept) else None
    text = shown_text(exchange)
    return [{"type": "text", "text": text}] if text.strip() else None


def server_tools_used(content: Sequence[Mapping[str, Any]]) -> set[str]:
    """The server tools an answer's blocks call or carry results of, by tool name."""
    used = set()
    for part in blocks.parts(content):
        if isinstance(part, blocks.ToolCallPart) and part.server:
            used.add(part.name)
        elif isinstance(part, blocks.ToolResultPart):  # `web_search_tool_result` is web_search's
            used.add(part.type.removesuffix("_tool_result"))
    return used


def _sendable(block: Mapping[str, Any]) -> bool:
    # The API refuses empty text blocks and thinking without its signature.
    if block.get("type") == "text":
        return isinstance(block.get("text"), str) and bool(block["text"].strip())
    if block.get("type") == "thinking":
        return isinstance(block.get("signature"), str) and bool(block["signature"])
    return True


def shown_text(exchange: Exchange) -> str:
    """The answer's text as the user saw it: text blocks joined with paragraph breaks."""
    texts = [p for p in blocks.parts(exchange.content) if isinstance(p, blocks.TextPart)]
    return blocks.joined_text(texts)


def user_message(prompt: Prompt, files: FileStore, answering: Sequence[str] = ()) -> MessageParam:
    """A user message: tool results it owes first, then the files, then the text."""
    results: list[ContentBlockParam] = [
        {"type": "tool_result", "tool_use_id": tool_id, "content": NO_TOOLS, "is_error": True}
        for tool_id in answering
    ]
    attached = [_file_block(files, ref) for ref in prompt.files]
    if not results and not attached:
        return {"role": "user", "content": prompt.text}
    text: list[ContentBlockParam] = [{"type": "text", "text": prompt.text}] if prompt.text.strip() else []
    return {"role": "user", "content": [*results, *attached, *text]}


def _file_block(files: FileStore, ref: Any) -> ContentBlockParam:
    try:
        return files.block(ref)
    except ChatError as error:
        # The file cannot be sent again: say so in its place rather than drop it unseen.
        return {"type": "text", "text": f"[{ref.name} was attached here but is unavailable: {error.message}]"}


def _definition(exchange: Exchange, name: str) -> dict[str, Any]:
    for tool in exchange.request.get("tools") or ():
        if isinstance(tool, Mapping) and tool.get("name") == name:
            return dict(tool)
    return {"name": name, "description": UNKNOWN_TOOL_DESCRIPTION, "input_schema": {"type": "object"}}
