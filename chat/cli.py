"""Terminal mode: ask Claude from the shell, one question or an interactive session, streamed to stdout.

Only the answer goes to stdout (its citation markers and the list of cited sources included),
so it can be piped or redirected; the banner, thinking, tool notes, receipts and errors go to
stderr. On a terminal, text is broken at spaces to its width, never inside a word, and
thinking is dimmed (unless NO_COLOR is set).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from dotenv import load_dotenv

from chat import blocks
from chat.config import Settings
from chat.conversation import Conversation
from chat.errors import ChatError, ErrorKind
from chat.exchange import Exchange
from chat.offline import OFFLINE_MODEL
from chat.reply import BlockDelta, Delta, Reply, TextDelta, ThinkingDelta
from chat.service import ChatService
from chat.usage import turn_stats

PROMPT = "> "
QUIT_COMMANDS = frozenset({"/quit", "/exit", "quit", "exit"})
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # the shell convention for a program stopped by Ctrl-C
DIM, RESET = "\x1b[2m", "\x1b[0m"
THINKING_LABEL = "Thinking: "
REMEDIES = {
    ErrorKind.KEY_REJECTED: "Set ANTHROPIC_API_KEY in the environment or in ./.env.",
    ErrorKind.START_TIMEOUT: "Try again in a moment.",
    ErrorKind.INTERRUPTED: (
        "What arrived is printed above and kept in the conversation; ask again for a whole answer."
    ),
    ErrorKind.MODEL_NOT_FOUND: "Set CHAT_MODEL to a model your key can use, such as claude-sonnet-5-5.",
    ErrorKind.CONTEXT_TOO_LONG: "Start a new conversation, or send a shorter message.",
    ErrorKind.INVALID_REQUEST: (
        "Check CHAT_MODEL, CHAT_MAX_TOKENS and CHAT_SYSTEM_PROMPT, or rephrase the message."
    ),
    ErrorKind.RATE_LIMITED: "CHAT_RATE_LIMIT_PER_MINUTE sets the limit (0 turns it off).",
    ErrorKind.API_ERROR: "Try again; run with --verbose for the details.",
    ErrorKind.UNEXPECTED: "Try again; run with --verbose for the details.",
}
STOP_REASONS = {
    "max_tokens": "Cut off at the max tokens limit ({limit:,} tokens, thinking included): "
    "ask Claude to continue, or raise CHAT_MAX_TOKENS.",
    "model_context_window_exceeded": "Cut off: the conversation filled the model's context window. "
    "Start a new session, with a summary if need be.",
    "refusal": "Claude declined to continue. Rephrase the request, or start a new session.",
    "pause_turn": "Paused: the web searches took long enough that the API handed the turn back. "
    "Type \u201ccontinue\u201d to let Claude go on.",
}


def say(error: ChatError) -> str:
    """A failure as the terminal words it."""
    if error.kind is ErrorKind.BUDGET_SPENT:
        return _budget_spent(error)
    return f"{error.message} {REMEDIES.get(error.kind, '')}".strip()


def _budget_spent(error: ChatError) -> str:
    # The service words this one for the page (its Settings panel): the terminal names the variables.
    facts = error.facts
    per_day, left, needed = facts.get("per_day", 0), facts.get("left", 0), facts.get("needed", 0)
    variable = "CHAT_DAILY_TOKEN_BUDGET" if facts.get("scope") == "app" else "CHAT_VISITOR_DAILY_TOKENS"
    if left:
        opening = (
            f"This message could cost up to {needed:,} tokens, more than is left of today's budget "
            f"({left:,} of {per_day:,} tokens); lower CHAT_MAX_TOKENS, or wait."
        )
    else:
        opening = f"Today's token budget ({per_day:,} tokens) is used up."
    return f"{opening} It resets at midnight UTC; nothing was sent. {variable} sets it (0 turns it off)."


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of `python -m chat`."""
    parser = argparse.ArgumentParser(
        prog="python -m chat",
        description="Ask Claude from the terminal. With a question, print the answer as it streams; "
        "without one, chat until Ctrl-D (or /quit). Ctrl-C stops an answer. "
        "Settings come from the environment and ./.env.",
    )
    parser.add_argument("question", nargs="*", help="the question (quote it, or it is joined with spaces)")
    parser.add_argument("--offline", action="store_true", help="use the built-in offline model")
    parser.add_argument("--verbose", action="store_true", help="log details (never the key) to stderr")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run terminal mode; return the process exit status."""
    args = parse_args(argv)
    out, err = out or sys.stdout, err or sys.stderr
    # Failures are reported in one line below; the details go to the log only when asked for.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL + 1, stream=err)
    try:
        load_dotenv(Path.cwd() / ".env")  # the environment wins over the file
        settings = Settings.from_env()
        if args.offline:
            settings = dataclasses.replace(
                settings, client=dataclasses.replace(settings.client, force_offline=True)
            )
        service = ChatService.from_settings(settings)
    except ChatError as error:
        tell(err, f"Configuration error: {error.message}")
        return EXIT_CONFIG
    conversation = service.conversation()
    with asyncio.Runner() as runner:
        if args.question:
            return ask_once(runner, service, conversation, " ".join(args.question), out, err)
        tell(err, banner(service))
        return converse(runner, service, conversation, out, err)


def banner(service: ChatService) -> str:
    """Who answers and how to leave, said once at the start of an interactive session."""
    settings = service.settings
    if settings.offline:
        who = (
            "the offline model: canned replies, not Claude. Set ANTHROPIC_API_KEY (in the environment "
            "or ./.env) to talk to Claude"
        )
    else:
        model = settings.defaults.model
        choice = service.models.get(model)
        who = f"{choice.label if choice else model} ({settings.client.backend})"
    thinking = " Thinking is shown as it arrives." if settings.defaults.thinking else ""
    return f"Chatting with {who}.{thinking}\nCtrl-C stops an answer; Ctrl-D, /quit or exit ends the session."


def ask_once(
    runner: asyncio.Runner,
    service: ChatService,
    conversation: Conversation,
    question: str,
    out: TextIO,
    err: TextIO,
) -> int:
    """Stream one answer; a failure or Ctrl-C ends it with a one-line message on stderr."""
    code = 0
    try:
        runner.run(stream_answer(service, conversation, question, out, err))
    except KeyboardInterrupt:
        tell(err, "Stopped.")
        code = EXIT_INTERRUPTED
    except ChatError as error:
        tell(err, f"Error: {say(error)}")
        code = EXIT_FAILED
    _print_receipt(service, conversation, err)
    return code


def converse(
    runner: asyncio.Runner, service: ChatService, conversation: Conversation, out: TextIO, err: TextIO
) -> int:
    """Chat turn after turn; Ctrl-C stops an answer, Ctrl-C or Ctrl-D at the prompt ends the session."""
    while True:
        try:
            question = _read_line(out)
        except (KeyboardInterrupt, EOFError):
            print(file=out)
            return 0
        if not question.strip():
            continue
        if question.strip().lower() in QUIT_COMMANDS:
            return 0
        try:
            runner.run(stream_answer(service, conversation, question, out, err))
        except KeyboardInterrupt:
            tell(err, "Stopped: what arrived is kept in the conversation.")
        except ChatError as error:
            tell(err, f"Error: {say(error)}")
        _print_receipt(service, conversation, err)


async def stream_answer(
    service: ChatService, conversation: Conversation, question: str, out: TextIO, err: TextIO | None = None
) -> None:
    """Print Claude's answer as it arrives, flushing each piece; thinking and tool notes go to `err`."""
    async with service.stream_reply(conversation, question) as reply:
        view = AnswerView(reply, out, err or sys.stderr)
        try:
            async for delta in reply:
                view.show(delta)
        finally:
            view.finish()


def receipt(exchange: Exchange, service: ChatService) -> str | None:
    """One line on what an ended answer used and cost (None when nothing was sent or came back)."""
    if exchange.model == OFFLINE_MODEL:
        return "(offline: no cost)"
    if exchange.usage is None and not exchange.content:
        return None
    stats = turn_stats(exchange, service.prices)
    approx = "≈ " if stats.estimated else ""
    usage = stats.usage
    parts = [f"{usage.prompt:,} tokens in", f"{approx}{usage.output:,} out"]
    if usage.cache_read:
        parts[0] += f" ({usage.cache_read:,} from the cache)"
    if stats.cost is None:
        parts.append(f"cost unknown (no price for {stats.model})")
    else:
        parts.append("< $0.0001" if 0 < stats.cost < 0.0001 else f"{approx}${stats.cost:.4f}")
    searches = usage.web_searches or sum(  # the billed count; a cut-short answer's, by its calls
        1
        for part in blocks.parts(exchange.content)
        if isinstance(part, blocks.ToolCallPart) and part.server and part.name == "web_search"
    )
    if searches:
        parts.append(f"{searches} web search{'es' * (searches != 1)}")
    return f"({' · '.join(parts)})"


def ending(exchange: Exchange) -> str | None:
    """What a complete answer's stop reason means for the reader, if it cut the answer short."""
    template = STOP_REASONS.get(exchange.stop_reason or "")
    return template.format(limit=exchange.request.get("max_tokens", 0)) if template else None


def _print_receipt(service: ChatService, conversation: Conversation, err: TextIO) -> None:
    exchange = conversation.exchanges[-1] if conversation.exchanges else None
    if exchange is None or not exchange.status.ended:
        return
    for line in (ending(exchange), receipt(exchange, service)):
        if line:
            tell(err, line, dim=True)


def tell(stream: TextIO, message: str, *, dim: bool = False) -> None:
    """Write a message and a line break, broken at spaces on a terminal (dimmed, if asked and it can)."""
    wrapped = Wrapped(stream, terminal_width(stream), DIM if dim and colored(stream) else "")
    wrapped.write(message)
    wrapped.end_line()
    stream.flush()


def colored(stream: TextIO) -> bool:
    """True when the stream is a terminal that takes ANSI styles (NO_COLOR unset, TERM not dumb)."""
    return _is_tty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def terminal_width(stream: TextIO) -> int | None:
    """The columns of the terminal the stream writes to (COLUMNS wins); None when it is no terminal."""
    if not _is_tty(stream):
        return None
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(stream.fileno()).columns
        except (OSError, ValueError):
            return None
    return columns if columns > 1 else None


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def cells(text: str) -> int:
    """The columns text takes on a terminal (wide East Asian characters take two, combining marks none)."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


class Wrapped:
    """A stream written as lines broken at spaces before `width` columns, never inside a word.

    A word is held until it ends (a space, a line break or `end_line`), then goes on the current
    line if it fits, else on a new one; a word wider than the line is written whole. With no
    width (not a terminal) the text goes through unchanged.
    """

    def __init__(self, stream: TextIO, width: int | None, style: str = "") -> None:
        self.stream = stream
        self.width = width
        self.style = style
        self.column = 0
        self._spaces = ""
        self._word = ""

    def write(self, text: str) -> None:
        """Write text (a streamed piece: it may end mid-word)."""
        if self.width is None:
            self._emit(text)
            line_end = text.rfind("\n")
            self.column = cells(text) + self.column if line_end < 0 else cells(text[line_end + 1 :])
            return
        for char in text:
            if char == "\n":
                self._place_word()
                self._spaces = ""
                self._emit("\n")
                self.column = 0
            elif char in " \t":
                self._place_word()
                self._spaces += char
            else:
                self._word += char

    def end_line(self) -> None:
        """Write what is held, then a line break unless the line is empty."""
        self._place_word()
        self._spaces = ""
        if self.column:
            self._emit("\n")
            self.column = 0

    def _place_word(self) -> None:
        if not self._word:
            return
        word, self._word = self._word, ""
        spaces, self._spaces = self._spaces, ""
        width = cells(word)
        assert self.width is not None
        if self.column and self.column + len(spaces.expandtabs(4)) + width > self.width:
            self._emit("\n")
            self.column, spaces = 0, ""
        self._emit(spaces + word)
        self.column += len(spaces.expandtabs(4)) + width
        if self.column > self.width:  # a word wider than the line: the terminal wrapped it
            self.column %= self.width

    def _emit(self, text: str) -> None:
        if text:
            styled = self.style and not text.isspace()
            self.stream.write(f"{self.style}{text}{RESET}" if styled else text)


class AnswerView:
    """One streamed answer on the terminal: its text on `out`; thinking and tool notes on `err`.

    Citations become [n] markers after the text they back, numbered as the search results
    that brought their pages were, and the cited sources are listed after the answer.
    """

    def __init__(self, reply: Reply, out: TextIO, err: TextIO) -> None:
        self.reply = reply
        self.out, self.err = out, err
        self.answer = Wrapped(out, terminal_width(out))
        self.thinking = Wrapped(err, terminal_width(err), DIM if colored(err) else "")
        self.section = ""  # what was written last: "answer", "thinking" or "note"
        self.sources = blocks.Sources()
        self.cited: dict[int, blocks.Citation] = {}
        self.titles: dict[str, str] = {}  # the search results' titles, by URL
        self._cited_block: int | None = None  # a text block whose citations await its end

    def show(self, delta: Delta) -> None:
        """Write what this delta brought."""
        if self._cited_block_ended(delta):
            self._mark_citations()
        if isinstance(delta, TextDelta):
            self._enter("answer")
            self.answer.write(delta.text)
        elif isinstance(delta, ThinkingDelta):
            if self.section != "thinking":
                self._enter("thinking")
                self.thinking.write(THINKING_LABEL)
            self.thinking.write(delta.text)
        elif delta.event == "delta":
            part = self._part(delta.index)
            if isinstance(part, blocks.TextPart) and part.citations:
                self._cited_block = delta.index
        elif delta.event == "stop":
            note = self._note(self._part(delta.index))
            if note:
                self._enter("note")
                self.err.write(note)
        self.out.flush()
        self.err.flush()

    def finish(self) -> None:
        """End the answer: its last citations, a line break, and the cited sources."""
        if self._cited_block is not None:
            self._mark_citations()
        self._enter("")
        if self.cited:
            self.out.write("\nSources:\n")
            for number, citation in sorted(self.cited.items()):
                title = citation.title or self.titles.get(citation.url or "") or citation.cited_text[:80]
                self.out.write(f"[{number}] {title}" + (f" <{citation.url}>" if citation.url else "") + "\n")
        self.out.flush()
        self.err.flush()

    def _enter(self, section: str) -> None:
        if section == self.section:
            return
        if self.section == "answer":
            self.answer.end_line()
        elif self.section == "thinking":
            self.thinking.end_line()
            self.err.write("\n")  # a blank line between the thinking and what follows
        self.section = section

    def _cited_block_ended(self, delta: Delta) -> bool:
        cited = self._cited_block
        if cited is None or (isinstance(delta, BlockDelta) and delta.index == cited):
            return False
        return len(self.reply.content) > cited + 1  # a later block has started

    def _part(self, index: int) -> blocks.Part | None:
        content = self.reply.content
        return blocks.part(content[index]) if index < len(content) else None

    def _mark_citations(self) -> None:
        part = self._part(self._cited_block or 0)
        self._cited_block = None
        if not isinstance(part, blocks.TextPart):
            return
        numbers: list[int] = []
        for citation in part.citations:
            number = self.sources.number(citation)
            self.cited.setdefault(number, citation)
            if number not in numbers:
                numbers.append(number)
        self._enter("answer")
        self.answer.write("".join(f" [{number}]" for number in numbers))

    def _note(self, part: blocks.Part | None) -> str:
        if isinstance(part, blocks.ToolCallPart):
            if part.server:
                return f"{blocks.tool_action(part, ongoing=True)}: {part.query or part.name}\n"
            return f"Claude asked to run the tool {part.name}; terminal mode runs no tools.\n"
        if isinstance(part, blocks.ToolResultPart):
            if part.error:
                return f"The {blocks.tool_result_name(part).lower()} failed: {part.error}\n"
            lines = []
            for source in part.sources:
                self.titles[source.url] = source.title
                number = self.sources.number(blocks.Citation(source.url, source.title, ""))
                lines.append(f"  [{number}] {source.title} <{source.url}>\n")
            return "".join(lines) or f"The {blocks.tool_result_name(part).lower()} found nothing.\n"
        if isinstance(part, blocks.OtherBlock):
            return f"(a {part.type} block that terminal mode cannot show)\n"
        return ""


def _read_line(out: TextIO) -> str:
    if out is sys.stdout:
        return input(PROMPT)  # line editing in a real terminal
    out.write(PROMPT)
    out.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line
