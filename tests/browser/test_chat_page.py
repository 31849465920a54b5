"""The chat as a person uses it: headless Chromium on the real app, Claude played by the loopback API."""

from __future__ import annotations

import re
import time

import app
from chat.wire import error_event
from tests.browser.chat_page import ARTIFACTS, ChatPage
from tests.loopback_api import LoopbackMessagesAPI, Stream, echo_reply

QUESTION = "Why is the sky blue?"
ANSWER = (
    "Sunlight looks white, but it is a mix of every colour. On its way down it meets the molecules of "
    "the air, which are far smaller than the wavelength of light, and these scatter short wavelengths "
    "much more strongly than long ones (Rayleigh scattering: about five times more for blue than for "
    "red). So blue light is bounced all over the sky and reaches your eye from every direction, while "
    "red and yellow mostly travel straight on. At sunset the light crosses much more air, most of the "
    "blue is scattered away before it reaches you, and the sky turns orange and red."
)
MID_STREAM_SCREENSHOT = ARTIFACTS / "mid-stream.png"  # `make screenshot` copies it to docs/


def test_an_answer_grows_in_place_then_completes(chat_page: ChatPage, loopback_api: LoopbackMessagesAPI):
    loopback_api.script = lambda body: echo_reply(ANSWER, delay=0.06, words_per_chunk=2)
    chat_page.ask(QUESTION)
    early = chat_page.watch_answers(until=lambda answers: len(" ".join(answers).split()) >= 40)
    chat_page.screenshot(MID_STREAM_SCREENSHOT)
    later = chat_page.watch_answers(until=lambda answers: answers == [ANSWER])
    chat_page.wait_until_idle()

    states = early + later
    growing = [answers[0] for answers in states if answers and answers[0] and ANSWER.startswith(answers[0])]
    assert len({len(text) for text in growing}) >= 3, f"the answer did not grow in steps: {states}"
    assert all(len(answers) <= 1 for answers in states), f"the answer must grow in one bubble: {states}"
    assert chat_page.answers() == [ANSWER]


def test_stop_keeps_the_partial_answer_and_closes_the_upstream_stream(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    long_answer = " ".join(f"word{number}" for number in range(600))
    loopback_api.script = lambda body: echo_reply(long_answer, delay=0.05, words_per_chunk=2)
    chat_page.ask("Write something very long.")
    chat_page.watch_answers(until=lambda answers: len(" ".join(answers).split()) >= 10)

    chat_page.press_stop()
    clicked_at = time.monotonic()
    exchange = loopback_api.exchanges[0]
    assert loopback_api.wait_for(lambda: exchange.client_left_at is not None, timeout=10), (
        "the upstream connection stayed open after Stop"
    )
    chat_page.wait_until_idle()
    stopped = chat_page.answer()
    chat_page.page.wait_for_timeout(1000)

    assert exchange.finished_at is None and exchange.client_left_at >= clicked_at - 1.0
    assert chat_page.answer() == stopped, "the answer kept growing after Stop"
    assert stopped and long_answer.startswith(stopped) and len(stopped) < len(long_answer)


def test_a_mid_stream_failure_shows_the_error_and_keeps_the_partial_answer(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    partial = "The first part of the answer arrives before Claude"
    loopback_api.script = lambda body: overloaded_after(partial)
    chat_page.ask(QUESTION)

    assert re.search(r"overloaded", chat_page.error_message(), re.IGNORECASE)
    assert chat_page.answer() == partial
    assert chat_page.boxes()[-1] == app.NOTICE_TITLE
    assert re.search(r"overloaded", chat_page.reply_text(), re.IGNORECASE)
    chat_page.wait_until_idle()  # the message box is usable again: no reload needed to go on


def test_reloading_the_page_logs_no_errors_in_the_browser_console(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    chat_page.ask("first visit")
    chat_page.watch_answers(until=lambda answers: answers == ["You said: first visit"])
    chat_page.wait_until_idle()
    chat_page.reload()
    chat_page.ask("after reload")
    chat_page.watch_answers(until=lambda answers: answers[-1:] == ["You said: after reload"])
    chat_page.wait_until_idle()

    assert chat_page.console_errors == []


def overloaded_after(text: str) -> Stream:
    """A stream that sends this text, then an overloaded_error event instead of the end."""
    events = list(echo_reply(text, words_per_chunk=3).events)
    last_delta = max(number for number, event in enumerate(events) if b"content_block_delta" in event)
    failure = error_event("overloaded_error", "Overloaded")
    return Stream([*events[: last_delta + 1], failure], delay=0.05)
