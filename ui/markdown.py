"""Text from Claude or a tool as the chat shows it: Markdown that renders, raw HTML that shows as text.

The Chatbot renders Markdown and then sanitizes the HTML, which drops what it does not allow: after a
`<style>` or a `<textarea>` the rest of an answer vanished, and an image was fetched from wherever its
URL pointed (a way to carry data out once web search brings in untrusted pages). So every text the
page draws from model or tool output goes through `markdown` first: outside code, `<` becomes
`&lt;` (a tag shows as the text it is), and images become links. Code is left alone: the Chatbot
escapes it itself, so escaping it here would show `&lt;` in code.

Code is found as CommonMark does, closely enough for model output: fenced blocks (also inside lists
and quotes; an unclosed fence runs to the end, as it does while it streams), indented blocks and
inline code spans; `$$...$$` is LaTeX, which the Chatbot takes out (and escapes) before Markdown.
A run of more than 1,000 characters with no space is shown as inline code (ui/gradio_fixes.py, fix 9).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from urllib.parse import quote

from ui.gradio_fixes import LATEX_DELIMITER, long_runs_as_code

IMAGE_LABEL = "Image"
_LATEX = re.compile(re.escape(LATEX_DELIMITER) + r"[\s\S]+?" + re.escape(LATEX_DELIMITER))
_CONTAINER = re.compile(r"(?:[ ]{0,3}>[ ]?)*")  # blockquote markers before a line's content
_LIST_ITEM = re.compile(r"([ ]*)([-+*]|\d{1,9}[.)])([ ]{1,4}|$)")
_FENCE_OPEN = re.compile(r"([ ]*)(`{3,}(?=[^`]*$)|~{3,})")
_BLANK = re.compile(r"[ \t]*")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_BACKTICKS = re.compile(r"`+")
# An autolink (`<https://...>`, `<name@host>`) is Markdown, not HTML: kept; every other `<` is escaped.
_ANGLE = re.compile(
    r"<(?:[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*"
    r"|[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)>|<"
)
_INLINE_IMAGE = re.compile(
    r"(?<!\\)!\[([^\[\]\n]*)\]\([ \t]*(<[^<>\n]*>|[^\s()<>]+)"
    r"(?:[ \t]+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\)))?[ \t]*\)"
)
_OTHER_IMAGE = re.compile(r"(?<!\\)!\[")  # reference-style images, and anything the above missed
# What marks up inline text (`!` only images, before `[`; `_` inside a word never does).
_LITERAL = re.compile(r"([\\`*\[\]~$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_LINE_START = re.compile(r"[#>+=-]|\d+[.)]")  # what makes a line a heading, quote or list
_SPACE = re.compile(r"\s+")
# A fence opened exactly so is drawn as a Mermaid diagram, which can load images from anywhere
# (`<img>` in a label, an image shape); a space before the word leaves it a code block.
_MERMAID = re.compile(r"^((?:[ \t>]|[-+*][ \t]|\d{1,9}[.)][ \t])*```)(mermaid)", re.MULTILINE)


def markdown(text: str, *, allow_remote_images: bool = False) -> str:
    """Model or tool text for the chat: Markdown renders, raw HTML shows as text, images are links."""
    latex: list[str] = []

    def hold(match: re.Match[str]) -> str:
        latex.append(match.group())
        return f"\x00{len(latex) - 1}\x00"

    text = text.replace("\x00", "\ufffd")  # as CommonMark does; \x00 marks where LaTeX was
    held = _LATEX.sub(hold, text) if LATEX_DELIMITER in text else text
    shown = "".join(
        _code(piece, allow_remote_images) if is_code else _prose(piece, allow_remote_images)
        for piece, is_code in _pieces(held)
    )
    return re.sub(r"\x00(\d+)\x00", lambda m: latex[int(m.group(1))], shown) if latex else shown


def literal(text: object) -> str:
    """Text shown exactly as it is, on one line (a title, a link's words): no Markdown, no HTML."""
    text = text if isinstance(text, str) else str(text)  # a loaded file may give a number
    escaped = _LITERAL.sub(r"\\\1", _SPACE.sub(" ", text).strip())
    escaped = escaped.replace("&", "&amp;").replace("<", "&lt;")
    start = _LINE_START.match(escaped)
    if start is None:
        return escaped
    marker = start.group()
    return f"{marker[:-1]}\\{marker[-1]}{escaped[start.end() :]}"


def link(text: str, url: str) -> str:
    """A Markdown link with these words to this web address; only the words if it is not http(s)."""
    words = literal(text or url)
    return f"[{words}]({destination(url)})" if is_web_address(url) else words


def is_web_address(url: str) -> bool:
    """Whether this is an http(s) address (the only kind the page links to for a tool's sources)."""
    return re.match(r"https?://", url.strip(), re.IGNORECASE) is not None


def destination(url: str) -> str:
    """A URL safe to put in a Markdown link's parentheses (spaces, brackets and quotes encoded)."""
    return quote(url.strip(), safe="/:?#@!$&'*+,;=%~-._")


def code_span(text: str) -> str:
    """Inline code showing this text exactly (its own backticks included)."""
    text = _SPACE.sub(" ", text)
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fenced(text: str, language: str = "") -> str:
    """A fenced code block showing this text exactly, whatever fences the text itself holds."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


# --- finding code --------------------------------------------------------------------------------


def _pieces(text: str) -> Iterator[tuple[str, bool]]:
    """The text in order as (piece, is_code): code blocks and code spans, and the prose between."""
    for block, is_code in _blocks(text):
        if is_code:
            yield block, True
            continue
        start = 0
        for paragraph in _paragraphs(block):
            for span_start, span_end in _code_spans(block, *paragraph):
                yield block[start:span_start], False
                yield block[span_start:span_end], True
                start = span_end
        yield block[start:], False


def _blocks(text: str) -> Iterator[tuple[str, bool]]:
    """Runs of whole lines, each code (fenced or indented) or not."""
    lines = text.splitlines(keepends=True)
    run: list[str] = []
    run_is_code = False
    fence: str | None = None  # the open fence's characters, while in a fenced block
    list_indent = 0  # the content column of the list item the lines are in (0: none)
    after_paragraph = False  # an indented line right under a paragraph continues it (not code)
    for line in lines:
        content = line[_CONTAINER.match(line).end() :].expandtabs(4)  # type: ignore[union-attr]
        blank = _BLANK.fullmatch(content.rstrip("\r\n")) is not None
        if fence is not None:
            is_code = True
            stripped = content.strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                fence = None
        else:
            item = _LIST_ITEM.match(content)
            if item and not blank:
                list_indent = len(item.group(1)) + len(item.group(2)) + max(len(item.group(3)), 1)
                content = " " * list_indent + content[item.end() :]
            elif not blank and not content.startswith(" "):
                list_indent = 0
            indent = len(content) - len(content.lstrip(" "))
            opened = _FENCE_OPEN.match(content.rstrip("\r\n"))
            if opened and indent <= list_indent + 3:
                fence, is_code = opened.group(2), True
            else:
                is_code = not blank and not after_paragraph and indent >= list_indent + 4
            after_paragraph = not blank and not is_code
        if is_code != run_is_code and run:
            yield "".join(run), run_is_code
            run = []
        run.append(line)
        run_is_code = is_code
    if run:
        yield "".join(run), run_is_code


def _paragraphs(block: str) -> Iterator[tuple[int, int]]:
    """The (start, end) of each paragraph of a prose block: code spans never cross a blank line."""
    start = 0
    for match in _PARAGRAPH_BREAK.finditer(block):
        yield start, match.start()
        start = match.end()
    yield start, len(block)


def _code_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The code spans between start and end: a run of backticks up to the next run of the same length."""
    runs: list[tuple[int, int]] = []
    for match in _BACKTICKS.finditer(text, start, end):
        begin = slashes = match.start()
        while slashes > start and text[slashes - 1] == "\\":
            slashes -= 1
        if (begin - slashes) % 2:
            begin += 1  # a backslash makes the run's first backtick a literal one
        if begin < match.end():
            runs.append((begin, match.end()))
    by_length: dict[int, list[int]] = {}
    for index, (begin, finish) in enumerate(runs):
        by_length.setdefault(finish - begin, []).append(index)
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(runs):
        begin, finish = runs[index]
        same = by_length[finish - begin]
        closer = bisect.bisect_right(same, index)
        if closer == len(same):
            index += 1
            continue
        spans.append((begin, runs[same[closer]][1]))
        index = same[closer] + 1
    return spans


def _code(text: str, allow_remote_images: bool) -> str:
    return text if allow_remote_images or "```mermaid" not in text else _MERMAID.sub(r"\1 \2", text)


# --- prose ---------------------------------------------------------------------------------------


def _prose(text: str, allow_remote_images: bool) -> str:
    text = _ANGLE.sub(lambda m: m.group() if len(m.group()) > 1 else "&lt;", long_runs_as_code(text))
    return text if allow_remote_images else _images_as_links(text)


def _images_as_links(text: str) -> str:
    """Every image as a link to it, so the browser fetches nothing (`&#33;` shows `!`, not an image)."""
    if "![" not in text:
        return text
    text = _INLINE_IMAGE.sub(_image_link, text)
    return _OTHER_IMAGE.sub("&#33;[", text)


def _image_link(match: re.Match[str]) -> str:
    alt, url = match.group(1).strip(), match.group(2)
    return f"[{IMAGE_LABEL}: {alt}]({url})" if alt else f"[{IMAGE_LABEL}]({url})"
