"""Terminal mode (`python -m chat`), run as a real process against the loopback Messages API."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chat.cli import say
from chat.errors import ChatError, ErrorKind
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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CHAT_"))}
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
    assert terminal.stderr.strip() == "Stopped."


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
    assert terminal.stderr.strip() == (
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
    line = terminal.stderr.strip()
    assert line.startswith("Error: ") and line.endswith(remedy) and "\n" not in line
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


def test_a_tool_call_is_a_bracketed_line_after_the_text(loopback_api, terminals):
    loopback_api.script = lambda body: fixture("tool_use.sse")
    terminal = terminals("weather in SF?", env=environment(loopback_api))
    assert terminal.finish() == 0
    assert terminal.stdout.rstrip("\n").splitlines() == [
        "Okay, let's check the weather for San Francisco, CA:",
        "[Claude asked to run the tool get_weather; this app runs no tools]",
    ]


WEB_SOURCES = [
    "https://world-weather.info/forecast/usa/new_york/may-2025/",
    "https://www.accuweather.com/en/us/new-york/10021/weather-forecast/349727",
    "https://forecast.weather.gov/MapClick.php?lat=40.7142&lon=-74.0059",
]


def test_a_web_search_is_a_bracketed_line_with_its_sources_between_the_text_blocks(loopback_api, terminals):
    loopback_api.script = lambda body: fixture("web_search.sse")
    terminal = terminals("weather in NYC?", env=environment(loopback_api))
    assert terminal.finish() == 0
    lines = terminal.stdout.splitlines()
    search = lines.index("[Searched the web: weather NYC today]")
    assert lines[search - 1] == "I'll check the current weather in New York City for you."
    sources = lines[search + 1 : search + 1 + len(WEB_SOURCES)]
    assert [re.fullmatch(r"  - .+ <(\S+)>", line).group(1) for line in sources] == WEB_SOURCES
    assert sources[1] == f"  - New York, NY Weather Forecast | AccuWeather <{WEB_SOURCES[1]}>"
    answer = "\n".join(lines[search + 1 + len(WEB_SOURCES) :])
    assert answer == (
        "Here's the current weather information for New York City:\n\n# Weather in New York City\n\n"
        "Today is mostly cloudy, with a high near 68\u00b0F and a low around 55\u00b0F, and there is a 40% "
        "chance of showers this afternoon. If you're heading out, an umbrella would be a good idea."
    )
