"""Terminal mode: ask Claude from the shell, one question or an interactive session, streamed to stdout."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from chat.client import make_client
from chat.config import Settings, load_env_file
from chat.errors import ChatError
from chat.reply import TextDelta
from chat.session import ChatSession

PROMPT = "> "
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # the shell convention for a program stopped by Ctrl-C


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
        load_env_file()
        settings = Settings.from_env()
        if args.offline:
            settings = dataclasses.replace(settings, force_offline=True)
        session = ChatSession(make_client(settings), settings)
    except ChatError as error:
        print(f"Configuration error: {error.message}", file=err)
        return EXIT_CONFIG
    with asyncio.Runner() as runner:
        if args.question:
            return ask_once(runner, session, " ".join(args.question), out, err)
        return converse(runner, session, out, err)


def ask_once(runner: asyncio.Runner, session: ChatSession, question: str, out: TextIO, err: TextIO) -> int:
    """Stream one answer; a failure or Ctrl-C ends it with a one-line message on stderr."""
    try:
        runner.run(stream_answer(session, question, out))
    except KeyboardInterrupt:
        print("\nStopped.", file=err)
        return EXIT_INTERRUPTED
    except ChatError as error:
        print(f"\nError: {error.message}", file=err)
        return EXIT_FAILED
    return 0


def converse(runner: asyncio.Runner, session: ChatSession, out: TextIO, err: TextIO) -> int:
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
            runner.run(stream_answer(session, question, out))
        except KeyboardInterrupt:
            print("\n[stopped]", file=err)
        except ChatError as error:
            print(f"\nError: {error.message}", file=err)


async def stream_answer(session: ChatSession, question: str, out: TextIO) -> None:
    """Print Claude's answer as it arrives, flushing each piece."""
    async with session.stream_reply(question) as reply:
        async for delta in reply:
            if isinstance(delta, TextDelta):
                out.write(delta.text)
                out.flush()
    out.write("\n")
    out.flush()


def _read_line(out: TextIO) -> str:
    if out is sys.stdout:
        return input(PROMPT)  # line editing in a real terminal
    out.write(PROMPT)
    out.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line
