"""Terminal mode (`python -m chat`), run as a real process against the loopback Messages API."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from chat.cli import DIM, RESET, Wrapped, main, say
from chat.errors import ChatError, ErrorKind
from chat.wire import ScriptedMessage, Stream, TextBlock
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import (
    TEST_KEY,
    Failure,
    Response,
    cut_mid_stream,
    echo_reply,
    error_mid_stream,
    fixture,
    last_user_text,
    replies,
    text_reply,
)

ROOT = Path(__file__).parent.parent
LONG_ANSWER = " ".join(f"word{n}" for n in range(200))


class Terminal:
    """`python -m chat` in a subprocess, its output collected as it arrives."""

    def __init__(self, *args: str, env: dict[str, str], cwd: Path = ROOT) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chat", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.out, self.err = bytearray(), bytearray()
        self._readers = [
            threading.Thread(target=_copy, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=_copy, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def stdout(self) -> str:
        return self.out.decode()

    @property
    def stderr(self) -> str:
        return self.err.decode()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out; stdout={self.stdout!r} stderr={self.stderr!r}"
            assert self.process.poll() is None or condition(), f"exited; stderr={self.stderr!r}"
            time.sleep(0.01)

    def type(self, line: str) -> None:
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _copy(stream, into: bytearray) -> None:
    while chunk := stream.read1(4096):
        into.extend(chunk)


def environment(api: LoopbackMessagesAPI | None = None, **extra: str) -> dict[str, str]:
    inherited = ("NO_COLOR", "COLUMNS")  # a developer's terminal settings stay out too
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "CHAT_")) and k not in inherited
    }
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="0", **extra)
    if api is not None:
        env.update(ANTHROPIC_API_KEY=TEST_KEY, ANTHROPIC_BASE_URL=api.url)
    return env


@pytest.fixture
def slow_api():
    with LoopbackMessagesAPI(lambda body: echo_reply(LONG_ANSWER, delay=0.05)) as api:
        yield api


@pytest.fixture
def terminals(tmp_path):
    """Start terminals; each runs in an empty tmp dir unless told (a developer's .env stays out)."""
    started: list[Terminal] = []
    yield lambda *args, **kw: started.append(Terminal(*args, **{"cwd": tmp_path, **kw})) or started[-1]
    for terminal in started:
        terminal.kill()


def test_a_question_prints_the_streamed_answer_and_exits_zero(loopback_api, terminals):
    terminal = terminals("what", "is", "up?", env=environment(loopback_api))
    assert terminal.finish() == 0
    assert terminal.stdout == "You said: what is up?\n"
    assert loopback_api.requests[0]["messages"] == [{"role": "user", "content": "what is up?"}]


def test_the_answer_is_flushed_while_it_is_still_streaming(slow_api, terminals):
    terminal = terminals("go", env=environment(slow_api))
    terminal.wait_for(lambda: "word3" in terminal.stdout)
    assert slow_api.exchanges[0].finished_at is None
    assert terminal.finish() == 0 and terminal.stdout == LONG_ANSWER + "\n"


def test_ctrl_c_stops_the_answer_closes_the_stream_and_keeps_the_partial_text(slow_api, terminals):
    terminal = terminals("go", env=environment(slow_api))
    terminal.wait_for(lambda: "word5" in terminal.stdout)
    terminal.process.send_signal(signal.SIGINT)
    assert terminal.finish() == 130
    assert slow_api.wait_for(lambda: slow_api.exchanges[0].client_left_at is not None)
    assert slow_api.exchanges[0].finished_at is None
    assert terminal.stdout.startswith("word0 word1 word2 word3 word4 word5")
    stopped, receipt = terminal.stderr.splitlines()
    assert stopped == "Stopped." and receipt.startswith("(") and "≈ " in receipt


def test_an_api_failure_exits_non_zero_with_a_one_line_message(loopback_api, terminals):
    loopback_api.script = lambda body: Failure(400, "invalid_request_error", "bad request")
    terminal = terminals("hi", env=environment(loopback_api))
    assert terminal.finish() == 1
    assert terminal.stderr.strip() == (
        "Error: Claude could not answer (error 400): bad request. "
        "Check CHAT_MODEL, CHAT_MAX_TOKENS and CHAT_SYSTEM_PROMPT, or rephrase the message."
    )


def test_a_bad_setting_exits_with_a_configuration_message(terminals):
    terminal = terminals("hi", env=environment(CHAT_MAX_TOKENS="lots"))
    assert terminal.finish() == 2
    assert (
        terminal.stderr.strip()
        == "Configuration error: CHAT_MAX_TOKENS must be a whole number above 0, not 'lots'."
    )


def test_offline_flag_uses_the_offline_model_even_with_a_key(loopback_api, terminals):
    terminal = terminals("--offline", "hello", env=environment(loopback_api, CHAT_OFFLINE_DELAY="0"))
    assert terminal.finish() == 0
    assert "offline demo model" in terminal.stdout and loopback_api.requests == []


def test_settings_come_from_a_dot_env_file_with_the_environment_winning(loopback_api, terminals, tmp_path):
    (tmp_path / ".env").write_text(
        f"ANTHROPIC_API_KEY=sk-from-dotenv\nANTHROPIC_BASE_URL={loopback_api.url}\n"
        "CHAT_MODEL=claude-haiku-5-5\nCHAT_MAX_TOKENS=77\n"
    )
    terminal = terminals("hi", env=environment(CHAT_MAX_TOKENS="55"), cwd=tmp_path)
    assert terminal.finish() == 0
    request = loopback_api.requests[0]
    assert (request["model"], request["max_tokens"]) == ("claude-haiku-5-5", 55)
    assert loopback_api.exchanges[0].headers["authorization"] == "Bearer sk-from-dotenv"


def test_interactive_mode_carries_the_conversation_from_turn_to_turn(loopback_api, terminals):
    terminal = terminals(env=environment(loopback_api))
    terminal.type("my name is Ada")
    terminal.wait_for(lambda: "You said: my name is Ada" in terminal.stdout)
    terminal.type("what is my name?")
    terminal.wait_for(lambda: "You said: what is my name?" in terminal.stdout)
    terminal.process.stdin.close()
    assert terminal.finish() == 0
    assert [last_user_text({"messages": [m]}) for m in loopback_api.requests[1]["messages"]] == [
        "my name is Ada",
        "You said: my name is Ada",
        "what is my name?",
    ]


def test_ctrl_c_in_interactive_mode_stops_the_answer_and_returns_to_the_prompt(slow_api, terminals):
    terminal = terminals(env=environment(slow_api))
    terminal.type("first")
    terminal.wait_for(lambda: "word3" in terminal.stdout)
    terminal.process.send_signal(signal.SIGINT)
    assert slow_api.wait_for(lambda: slow_api.exchanges[0].client_left_at is not None)
    terminal.wait_for(lambda: terminal.stdout.endswith("> "))
    slow_api.script = lambda body: echo_reply(f"You said: {last_user_text(body)}")
    terminal.type("second")
    terminal.wait_for(lambda: terminal.stdout.endswith("You said: second\n> "))
    assert [m["role"] for m in slow_api.requests[1]["messages"]] == ["user", "assistant", "user"]
    terminal.process.send_signal(signal.SIGINT)  # at the prompt: leave
    assert terminal.finish() == 0


# --- failures in terminal words ---------------------------------------------------------------------

# What only the web page has: its buttons, its Settings panel, a server log the visitor never sees.
PAGE_WORDS = re.compile(r"\bpress|\bbutton|server log|\bRetry\b|\bSettings\b", re.IGNORECASE)


def error_line(stderr: str) -> str:
    """The one line saying what failed (a receipt may follow it)."""
    [line] = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    return line


def page_words(text: str) -> list[str]:
    """The web page's words in a text (Retry and Settings only as the page's capitalised names)."""
    found = [match.group(0) for match in PAGE_WORDS.finditer(text)]
    return [word for word in found if word.lower() not in ("retry", "settings") or word[0].isupper()]


def test_a_mid_stream_overload_keeps_the_partial_and_says_to_ask_again_in_terminal_words(
    loopback_api, terminals
):
    loopback_api.script = lambda body: error_mid_stream("The first half of it")
    terminal = terminals("hi", env=environment(loopback_api))
    assert terminal.finish() == 1
    assert terminal.stdout.startswith("The first half of it")
    assert error_line(terminal.stderr) == (
        "Error: Claude became overloaded mid-answer, so the answer stops here. "
        "What arrived is printed above and kept in the conversation; ask again for a whole answer."
    )
    assert page_words(terminal.stderr) == []


def test_a_rejected_key_says_where_to_set_it_in_terminal_words(loopback_api, terminals):
    loopback_api.script = lambda body: Failure(401, "authentication_error", "invalid x-api-key")
    terminal = terminals("hi", env=environment(loopback_api))
    assert terminal.finish() == 1
    assert terminal.stderr.strip() == (
        "Error: The API key was rejected (error 401). Set ANTHROPIC_API_KEY in the environment or in ./.env."
    )
    assert page_words(terminal.stderr) == []


TERMINAL_REMEDIES: dict[str, tuple[Response, str]] = {
    "connection cut": (cut_mid_stream("Half an"), "ask again for a whole answer."),
    "model not found": (
        Failure(404, "not_found_error", "model: claude-nope"),
        "Set CHAT_MODEL to a model your key can use, such as claude-sonnet-5-5.",
    ),
    "context too long": (
        Failure(413, "request_too_large", "too large"),
        "Start a new conversation, or send a shorter message.",
    ),
    "invalid request": (
        Failure(400, "invalid_request_error", "bad"),
        "Check CHAT_MODEL, CHAT_MAX_TOKENS and CHAT_SYSTEM_PROMPT, or rephrase the message.",
    ),
    "API error": (Failure(418, "api_error", "teapot"), "Try again; run with --verbose for the details."),
    "API busy": (Failure(529, "overloaded_error", "Overloaded"), "Try again in a minute."),
    "API rate limit": (
        Failure(429, "rate_limit_error", "slow down", {"retry-after": "7"}),
        "Try again in 7 seconds.",
    ),
}


@pytest.mark.parametrize("failure", TERMINAL_REMEDIES, ids=list(TERMINAL_REMEDIES))
def test_every_failure_says_what_to_do_without_the_pages_words(loopback_api, terminals, failure):
    response, remedy = TERMINAL_REMEDIES[failure]
    loopback_api.script = lambda body: response
    terminal = terminals("hi", env=environment(loopback_api, CHAT_MAX_RETRIES="0"))
    assert terminal.finish() == 1
    line = error_line(terminal.stderr)
    assert line.endswith(remedy)
    assert page_words(line) == []


@pytest.mark.parametrize("kind", list(ErrorKind), ids=[kind.value for kind in ErrorKind])
def test_no_kind_of_failure_is_worded_with_the_pages_words(kind):
    assert page_words(say(ChatError(kind, "Something happened."))) == []


def test_after_an_interrupted_answer_the_session_goes_on_with_the_partial_kept(loopback_api, terminals):
    loopback_api.script = replies(error_mid_stream("The first half of it"))
    terminal = terminals(env=environment(loopback_api))
    terminal.type("tell me")
    terminal.wait_for(lambda: "ask again for a whole answer" in terminal.stderr)
    terminal.type("go on")
    terminal.wait_for(lambda: "You said: go on" in terminal.stdout)
    terminal.process.stdin.close()
    assert terminal.finish() == 0
    assert loopback_api.requests[1]["messages"][:2] == [
        {"role": "user", "content": "tell me"},
        {"role": "assistant", "content": [{"type": "text", "text": "The first half of it"}]},
    ]


# --- blocks other than text ----------------------------------------------------------------------


def test_a_tool_call_is_a_note_on_stderr_and_the_answer_stays_on_stdout(loopback_api, terminals):
    loopback_api.script = lambda body: fixture("tool_use.sse")
    terminal = terminals("weather in SF?", env=environment(loopback_api))
    assert terminal.finish() == 0
    assert terminal.stdout == "Okay, let's check the weather for San Francisco, CA:\n"
    assert terminal.stderr.splitlines()[0] == (
        "Claude asked to run the tool get_weather; terminal mode runs no tools."
    )


# --- in process: the real entry point over the loopback API ---------------------------------------


@dataclass
class Run:
    """What one run of `main` returned and wrote."""

    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch, tmp_path) -> Callable[..., Run]:
    """Run chat.cli.main in process in an empty tmp dir, with only the settings given."""
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "CHAT_")) or name in ("NO_COLOR", "COLUMNS"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def run(*argv: str, api: LoopbackMessagesAPI | None = None, stdin: str = "", **env: str) -> Run:
        if api is not None:
            env = {"ANTHROPIC_API_KEY": TEST_KEY, "ANTHROPIC_BASE_URL": api.url, **env}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), out, err)
        return Run(code, out.getvalue(), err.getvalue())

    return run


BANNER_END = "Ctrl-C stops an answer; Ctrl-D, /quit or exit ends the session.\n"


def test_an_interactive_session_opens_with_the_model_and_how_to_quit_on_stderr(cli, loopback_api):
    run = cli(api=loopback_api)
    assert run.code == 0 and run.stdout == "> \n"
    assert run.stderr == f"Chatting with Claude Sonnet 5.5 (Anthropic API).\n{BANNER_END}"


def test_the_banner_of_the_offline_model_says_its_replies_are_canned_and_how_to_reach_claude(cli):
    run = cli("--offline")
    assert run.stderr == (
        "Chatting with the offline model: canned replies, not Claude. Set ANTHROPIC_API_KEY "
        f"(in the environment or ./.env) to talk to Claude.\n{BANNER_END}"
    )


def test_a_one_shot_question_has_no_banner_only_the_receipt_on_stderr(cli, loopback_api):
    run = cli("hi", api=loopback_api)
    assert run.code == 0 and run.stdout == "You said: hi\n"
    assert run.stderr == "(10 tokens in · 3 out · < $0.0001)\n"


@pytest.mark.parametrize("command", ["/quit", "exit", " Quit "])
def test_a_quit_command_ends_the_session_and_sends_nothing(cli, loopback_api, command):
    run = cli(api=loopback_api, stdin=f"{command}\nhello\n")
    assert run.code == 0 and loopback_api.requests == []
    assert "You said" not in run.stdout


def test_each_answer_is_followed_by_a_receipt_of_its_tokens_and_cost_on_stderr(cli, loopback_api):
    loopback_api.script = lambda body: text_reply("Two ", "words.", input_tokens=1000)
    run = cli("hi", api=loopback_api)
    assert run.stdout == "Two words.\n"
    assert run.stderr == "(1,000 tokens in · 2 out · $0.0020)\n"  # Sonnet 5.5: $2 and $10 a million


def test_the_receipt_of_the_offline_model_says_it_costs_nothing(cli):
    run = cli("--offline", "hello", CHAT_OFFLINE_DELAY="0")
    assert run.code == 0 and run.stderr == "(offline: no cost)\n"


def test_an_answer_cut_at_max_tokens_says_which_setting_raises_the_limit(cli, loopback_api):
    message = ScriptedMessage([TextBlock(["Half of"])], stop_reason="max_tokens")
    loopback_api.script = lambda body: Stream.of(message)
    run = cli("hi", api=loopback_api, CHAT_MAX_TOKENS="50")
    assert run.stderr.splitlines()[0] == (
        "Cut off at the max tokens limit (50 tokens, thinking included): "
        "ask Claude to continue, or raise CHAT_MAX_TOKENS."
    )


def test_an_answer_paused_by_the_api_says_to_type_continue(cli, loopback_api):
    message = ScriptedMessage([TextBlock(["Still searching"])], stop_reason="pause_turn")
    loopback_api.script = lambda body: Stream.of(message)
    run = cli("news today?", api=loopback_api)
    assert run.stderr.splitlines()[0].startswith("Paused: the web searches took long enough")


def test_thinking_is_labelled_on_stderr_and_kept_out_of_the_answer(cli, loopback_api):
    loopback_api.script = lambda body: fixture("thinking.sse")
    run = cli("27 * 453?", api=loopback_api, CHAT_THINKING="1")
    assert loopback_api.requests[0]["thinking"]["type"] == "adaptive"
    assert run.stdout == "27 * 453 = 12,231.\n"
    assert run.stderr.startswith("Thinking: The user wants 27 * 453. 27 * 453 = 12231.\n\n(")
    assert "\x1b" not in run.stderr  # not a terminal: no styles


def test_the_interactive_banner_says_when_thinking_is_shown(cli, loopback_api):
    run = cli(api=loopback_api, CHAT_THINKING="1")
    assert "Thinking is shown as it arrives." in run.stderr.splitlines()[0]


WEB_SOURCES = [
    "https://world-weather.info/forecast/usa/new_york/may-2025/",
    "https://www.accuweather.com/en/us/new-york/10021/weather-forecast/349727",
    "https://forecast.weather.gov/MapClick.php?lat=40.7142&lon=-74.0059",
]
NYC_SOURCES = {
    1: "Weather in New York City in May 2025 (New York) - detailed Weather Forecast for a month",
    2: "New York, NY Weather Forecast | AccuWeather",
}


def test_a_web_search_is_named_on_stderr_as_it_starts_then_its_numbered_results(cli, loopback_api):
    loopback_api.script = lambda body: fixture("web_search.sse")
    run = cli("weather in NYC?", api=loopback_api)
    notes = run.stderr.splitlines()
    assert notes[0] == "Searching the web: weather NYC today"
    results = [re.fullmatch(r"  \[(\d)\] (.+) <(\S+)>", line) for line in notes[1:4]]
    assert [(int(m.group(1)), m.group(3)) for m in results] == list(enumerate(WEB_SOURCES, start=1))
    assert results[1].group(2) == NYC_SOURCES[2]


def test_citations_are_numbered_markers_in_the_answer_with_the_sources_listed_after_it(cli, loopback_api):
    loopback_api.script = lambda body: fixture("web_search.sse")
    run = cli("weather in NYC?", api=loopback_api)
    assert run.stdout == (
        "I'll check the current weather in New York City for you.\n"
        "Here's the current weather information for New York City:\n\n# Weather in New York City\n\n"
        "Today is mostly cloudy, with a high near 68\u00b0F and a low around 55\u00b0F [1], and there is a "
        "40% chance of showers this afternoon [2]. If you're heading out, an umbrella would be a good idea.\n"
        "\nSources:\n"
        f"[1] {NYC_SOURCES[1]} <{WEB_SOURCES[0]}>\n"
        f"[2] {NYC_SOURCES[2]} <{WEB_SOURCES[1]}>\n"
    )


def test_the_receipt_counts_the_web_searches(cli, loopback_api):
    loopback_api.script = lambda body: fixture("web_search.sse")
    run = cli("weather in NYC?", api=loopback_api)
    assert (
        run.stderr.splitlines()[-1] == "(10,682 tokens in · 510 out · $0.0365 · 1 web search)"
    )  # $0.01 of it the search


def test_a_spent_budget_names_the_variables_that_set_it(cli, loopback_api):
    run = cli("hi", api=loopback_api, CHAT_DAILY_TOKEN_BUDGET="100")
    assert run.code == 1 and loopback_api.requests == []
    line = error_line(run.stderr)
    assert "lower CHAT_MAX_TOKENS" in line and line.endswith(
        "CHAT_DAILY_TOKEN_BUDGET sets it (0 turns it off)."
    )
    assert page_words(line) == []


def test_the_rate_limit_names_the_variable_that_sets_it(cli, loopback_api):
    run = cli(api=loopback_api, stdin="one\ntwo\n", CHAT_RATE_LIMIT_PER_MINUTE="1")
    line = error_line(run.stderr)
    assert line.startswith("Error: Slow down: you can send at most 1 messages a minute.")
    assert line.endswith("CHAT_RATE_LIMIT_PER_MINUTE sets the limit (0 turns it off).")
    assert len(loopback_api.requests) == 1


# --- on a terminal: a pseudo-TTY ------------------------------------------------------------------


def on_a_terminal(
    *args: str, env: dict[str, str], columns: int = 80, cwd: Path = ROOT, typed: bytes = b""
) -> str:
    """Run `python -m chat` with stdin, stdout and stderr on one pseudo-terminal; return what it showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**env, "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "chat", *args],
        cwd=cwd,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    os.write(leader, typed)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        shown.extend(chunk)
    os.close(leader)
    assert process.wait(30) == 0, shown.decode()
    return shown.decode().replace("\r\n", "\n")


def test_on_a_terminal_thinking_is_dimmed_and_the_answer_is_not(loopback_api, tmp_path):
    loopback_api.script = lambda body: fixture("thinking.sse")
    shown = on_a_terminal("27 * 453?", env=environment(loopback_api, CHAT_THINKING="1"), cwd=tmp_path)
    thinking, answer = shown.split("\n\n", 1)
    assert thinking.startswith(f"{DIM}Thinking:{RESET}") and f"{DIM} 12231.{RESET}" in thinking
    assert answer.startswith("27 * 453 = 12,231.\n") and "\x1b" not in answer.split("\n")[0]


def test_on_a_terminal_no_color_shows_thinking_plain_with_its_label(loopback_api, tmp_path):
    loopback_api.script = lambda body: fixture("thinking.sse")
    env = environment(loopback_api, CHAT_THINKING="1", NO_COLOR="1")
    shown = on_a_terminal("27 * 453?", env=env, cwd=tmp_path)
    assert shown.startswith("Thinking: The user wants 27 * 453. 27 * 453 = 12231.\n\n27 * 453 = 12,231.\n")
    assert "\x1b" not in shown


def test_on_a_terminal_lines_break_at_spaces_within_its_width_and_no_word_is_split(loopback_api, tmp_path):
    words = [f"{'w' * (n % 7 + 1)}{n}" for n in range(120)]
    loopback_api.script = lambda body: echo_reply(" ".join(words), words_per_chunk=3)
    shown = on_a_terminal("go", env=environment(loopback_api), columns=37, cwd=tmp_path)
    answer = shown.splitlines()[:-1]  # the receipt is last
    assert len(answer) > 10 and all(len(line) <= 37 for line in answer)
    assert [word for line in answer for word in line.split(" ")] == words


def test_on_a_terminal_the_search_and_its_results_come_between_the_text_before_and_after(
    loopback_api, tmp_path
):
    loopback_api.script = lambda body: fixture("web_search.sse")
    shown = on_a_terminal(
        "weather in NYC?", env=environment(loopback_api, NO_COLOR="1"), columns=200, cwd=tmp_path
    )
    lines = shown.splitlines()
    assert lines[:2] == [
        "I'll check the current weather in New York City for you.",
        "Searching the web: weather NYC today",
    ]
    assert lines[2].startswith("  [1] Weather in New York City") and lines[5].startswith("Here's the current")


def test_on_a_terminal_the_banner_breaks_at_spaces_too(tmp_path):
    shown = on_a_terminal("--offline", env=environment(), columns=40, cwd=tmp_path, typed=b"\x04")
    banner = [line for line in shown.splitlines() if line and not line.startswith(">")]
    assert len(banner) > 3 and all(len(line) <= 40 for line in banner)
    assert " ".join(banner).startswith("Chatting with the offline model: canned replies, not Claude. Set")


# --- the word wrapper -----------------------------------------------------------------------------


def test_a_word_streamed_in_pieces_moves_to_the_next_line_whole():
    screen = io.StringIO()
    wrapped = Wrapped(screen, 11)
    for piece in ["hel", "lo wor", "ld, ag", "ain and ", "more"]:
        wrapped.write(piece)
    wrapped.end_line()
    assert screen.getvalue() == "hello\nworld,\nagain and\nmore\n"


def test_wide_characters_count_two_columns_when_lines_are_broken():
    screen = io.StringIO()
    wrapped = Wrapped(screen, 9)
    wrapped.write("\u65e5\u672c\u8a9e \u65e5\u672c\u8a9e ok")
    wrapped.end_line()
    assert screen.getvalue() == "\u65e5\u672c\u8a9e\n\u65e5\u672c\u8a9e ok\n"


def test_text_that_goes_to_no_terminal_is_written_unchanged():
    screen = io.StringIO()
    wrapped = Wrapped(screen, None)
    wrapped.write(LONG_ANSWER)
    wrapped.end_line()
    assert screen.getvalue() == LONG_ANSWER + "\n"
