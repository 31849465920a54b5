"""Reading an assistant message's content blocks as plain parts, for any front end to show.

Every block type the stream can carry becomes a part: text (with its citations), thinking,
redacted thinking, a tool call (client or server tool), a server tool's result (sources or an
error), and, for a type this code does not know, `OtherBlock` naming it. Nothing is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Citation:
    """Where a piece of text comes from: a web page (url) or a document, and the words cited."""

    url: str | None
    title: str | None
    cited_text: str


@dataclass(frozen=True)
class TextPart:
    """Answer text, with the citations that back it."""

    text: str
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True)
class ThinkingPart:
    """Claude's (summarized) thinking."""

    text: str


@dataclass(frozen=True)
class RedactedThinkingPart:
    """Thinking the API returns encrypted: nothing to read, but it goes back to Claude."""


@dataclass(frozen=True)
class ToolCallPart:
    """Claude calling a tool: a client tool (`server` False) or one the API runs (web search...)."""

    id: str
    name: str
    input: Any
    server: bool

    @property
    def query(self) -> str | None:
        """The search query or fetched URL, for the server tools that have one."""
        if isinstance(self.input, Mapping):
            value = self.input.get("query") or self.input.get("url")
            return str(value) if value else None
        return None

    def input_json(self) -> str:
        """The tool's input as indented JSON."""
        return json.dumps(self.input, indent=2, ensure_ascii=False)


@dataclass(frozen=True)
class Source:
    """One result a server tool brought back."""

    url: str
    title: str
    page_age: str | None = None


@dataclass(frozen=True)
class ToolResultPart:
    """A server tool's result: the sources it found, or the error it met."""

    tool_use_id: str
    type: str
    sources: tuple[Source, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class OtherBlock:
    """A block of a type this app does not know yet: shown by its type, kept as it came."""

    type: str
    data: Mapping[str, Any]


Part = TextPart | ThinkingPart | RedactedThinkingPart | ToolCallPart | ToolResultPart | OtherBlock
SERVER_TOOL_CALLS = {"server_tool_use", "mcp_tool_use"}


def parts(content: Iterable[Mapping[str, Any]]) -> list[Part]:
    """The parts of a message's content blocks, in order."""
    return [part(block) for block in content]


def part(block: Mapping[str, Any]) -> Part:
    """One content block as a part."""
    kind = str(block.get("type", ""))
    if kind == "text":
        return TextPart(str(block.get("text", "")), tuple(_citations(block.get("citations"))))
    if kind == "thinking":
        return ThinkingPart(str(block.get("thinking", "")))
    if kind == "redacted_thinking":
        return RedactedThinkingPart()
    if kind == "tool_use" or kind in SERVER_TOOL_CALLS:
        name = str(block.get("name", "tool"))
        return ToolCallPart(str(block.get("id", "")), name, block.get("input"), kind != "tool_use")
    if kind.endswith("_tool_result"):
        return _tool_result(kind, block)
    return OtherBlock(kind or "unknown", block)


def joined_text(texts: Sequence[TextPart], marker: Any = None) -> str:
    """Adjacent text blocks as one text: a paragraph break between them, except around citations.

    The API splits a cited passage into a block of its own, mid-sentence, so blocks next to a
    cited one are joined as they are; other block boundaries get a blank line, never glued.
    `marker(citation)` may return a string put after each cited block (a numbered link, say).
    """
    out = ""
    for index, text in enumerate(texts):
        previous = texts[index - 1] if index else None
        if previous is not None and not (previous.citations or text.citations):
            out = out.rstrip() + "\n\n" + text.text.lstrip()
        else:
            out += text.text
        if marker is not None and text.citations:
            out += "".join(marker(citation) for citation in text.citations)
    return out


def tool_call_ids(content: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ids of the client tool calls (`tool_use`) in a message: each needs a tool_result."""
    return [str(block.get("id")) for block in content if block.get("type") == "tool_use"]


def _citations(raw: Any) -> Iterable[Citation]:
    for citation in raw or ():
        if isinstance(citation, Mapping):
            url = citation.get("url")
            title = citation.get("title") or citation.get("document_title")
            yield Citation(
                str(url) if url else None, str(title) if title else None, str(citation.get("cited_text", ""))
            )


def _tool_result(kind: str, block: Mapping[str, Any]) -> ToolResultPart:
    content = block.get("content")
    tool_use_id = str(block.get("tool_use_id", ""))
    if isinstance(content, Mapping):
        if content.get("error_code"):
            return ToolResultPart(tool_use_id, kind, error=str(content["error_code"]))
        url = content.get("url")  # a fetched page
        document = content.get("content") if isinstance(content.get("content"), Mapping) else {}
        title = str(document.get("title") or url or "")
        return ToolResultPart(tool_use_id, kind, (Source(str(url), title),) if url else ())
    sources = tuple(
        Source(str(item.get("url", "")), str(item.get("title") or item.get("url", "")), item.get("page_age"))
        for item in content or ()
        if isinstance(item, Mapping) and item.get("url")
    )
    return ToolResultPart(tool_use_id, kind, sources)


class Sources:
    """Numbers for cited pages: the first citation of a URL gets the next number."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}
        self.cited: list[tuple[int, Citation]] = []

    def number(self, citation: Citation) -> int:
        """The citation's number (its page's, if cited before)."""
        key = citation.url or citation.title or citation.cited_text
        if key not in self.numbers:
            self.numbers[key] = len(self.numbers) + 1
            self.cited.append((self.numbers[key], citation))
        return self.numbers[key]

    def marker(self, citation: Citation) -> str:
        """A numbered Markdown link to the cited page."""
        number = self.number(citation)
        return f" [[{number}]]({citation.url})" if citation.url else f" [{number}]"


TOOL_ACTIONS = {"web_search": ("Searched the web", "Searching the web"), "web_fetch": ("Fetched", "Fetching")}
TOOL_RESULT_NAMES = {"web_search_tool_result": "Web search", "web_fetch_tool_result": "Web fetch"}


def tool_action(part: ToolCallPart, *, ongoing: bool = False) -> str:
    """What a server tool did (or, `ongoing`, is doing), in words: searched the web, fetched a page..."""
    done, doing = TOOL_ACTIONS.get(part.name, (f"Used {part.name}", f"Using {part.name}"))
    return doing if ongoing else done


def tool_result_name(part: ToolResultPart) -> str:
    """The tool a result came from, in words: "Web search", "Web fetch", "Code execution"..."""
    fallback = part.type.removesuffix("_tool_result").replace("_", " ").capitalize()
    return TOOL_RESULT_NAMES.get(part.type, fallback)


def block_text(content: Iterable[Mapping[str, Any]], kind: str) -> str:
    """The `text` of a message's text blocks, or the `thinking` of its thinking blocks, joined."""
    return "".join(str(block.get(kind) or "") for block in content if block.get("type") == kind)
