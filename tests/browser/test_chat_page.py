"""The chat as a person uses it: headless Chromium on the real app, Claude played by the loopback API."""

from __future__ import annotations

from tests.browser.chat_page import ARTIFACTS, ChatPage
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import echo_reply

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
    crowded = [answers for answers in states if len(answers) > 1]
    assert not crowded, f"the answer must grow in one bubble; seen more than one: {crowded}"
    texts = [answers[0] for answers in states if answers and answers[0]]
    assert all(ANSWER.startswith(text) for text in texts), f"the bubble showed other text: {texts}"
    assert texts == sorted(texts, key=len), f"the answer shrank on the way: {texts}"
    assert len(set(texts)) >= 3, f"the answer did not grow in steps: {texts}"
    assert chat_page.answers() == [ANSWER]


def test_reloading_the_page_logs_no_errors_in_the_browser_console(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    chat_page.send("first visit", "You said: first visit")
    chat_page.reload()
    chat_page.send("after reload", "You said: after reload")

    assert chat_page.console_errors == []
