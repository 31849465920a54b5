"""Terminal mode: ask Claude from the shell, one question or an interactive session, streamed to stdout."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from dotenv import load_dotenv

from chat import blocks
from chat.config import Settings
from chat.conversation import Conversation
from chat.errors import ChatError, ErrorKind
from chat.reply import BlockDelta, Reply, TextDelta
from chat.service import ChatService

PROMPT = "> "
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # the shell convention for a program stopped by Ctrl-C
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
    ErrorKind.API_ERROR: "Try again; run with --verbose for the details.",
    ErrorKind.UNEXPECTED: "Try again; run with --verbose for the details.",
}


def say(error: ChatError) -> str:
    """A failure as the terminal words it."""
    return f"{error.message} {REMEDIES.get(error.kind, '')}".strip()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of `python -m chat`."""
    parser = argparse.ArgumentParser(
        prog="python -m chat",
        description="Ask Claude from the terminal. With a question, print the answer as it streams; "
        "without one, chat until Ctrl-D. Settings come from the environment and ./.env.",
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
        print(f"Configuration error: {error.message}", file=err)
        return EXIT_CONFIG
    conversation = service.conversation()
    with asyncio.Runner() as runner:
        if args.question:
            return ask_once(runner, service, conversation, " ".join(args.question), out, err)
        return converse(runner, service, conversation, out, err)


def ask_once(
    runner: asyncio.Runner,
    service: ChatService,
    conversation: Conversation,
    question: str,
    out: TextIO,
    err: TextIO,
) -> int:
    """Stream one answer; a failure or Ctrl-C ends it with a one-line message on stderr."""
    try:
        runner.run(stream_answer(service, conversation, question, out))
    except KeyboardInterrupt:
        print("\nStopped.", file=err)
        return EXIT_INTERRUPTED
    except ChatError as error:
        print(f"\nError: {say(error)}", file=err)
        return EXIT_FAILED
    return 0


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
        try:
            runner.run(stream_answer(service, conversation, question, out))
        except KeyboardInterrupt:
            print("\n[stopped]", file=err)
        except ChatError as error:
            print(f"\nError: {say(error)}", file=err)


async def stream_answer(service: ChatService, conversation: Conversation, question: str, out: TextIO) -> None:
    """Print Claude's answer as it arrives, flushing each piece; other blocks as a line in brackets."""
    async with service.stream_reply(conversation, question) as reply:
        async for delta in reply:
            if isinstance(delta, TextDelta):
                out.write(delta.text)
            elif isinstance(delta, BlockDelta) and delta.event == "stop":
                out.write(_block_line(reply, delta.index))
            out.flush()
    out.write("\n")
    out.flush()


def _block_line(reply: Reply, index: int) -> str:
    content = reply.content
    if index >= len(content):
        return ""
    part = blocks.part(content[index])
    if isinstance(part, blocks.ToolCallPart):
        if part.server:
            return f"\n[{blocks.tool_action(part)}: {part.query or part.name}]\n"
        return f"\n[Claude asked to run the tool {part.name}; this app runs no tools]\n"
    if isinstance(part, blocks.ToolResultPart):
        if part.error:
            return f"[the search failed: {part.error}]\n"
        return "".join(f"  - {source.title} <{source.url}>\n" for source in part.sources)
    if isinstance(part, blocks.RedactedThinkingPart):
        return ""
    if isinstance(part, blocks.OtherBlock):
        return f"\n[a {part.type} block this terminal cannot show]\n"
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
