"""Every failure end to end: the fault-injecting loopback API behind the real app, driven like the page."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from gradio_client import Client

import app
from chat import ChatError, ErrorKind
from tests.conftest import answer_text, assert_valid_history, chat, launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import (
    TEST_KEY,
    Failure,
    Response,
    Stream,
    cut_mid_stream,
    error_mid_stream,
    replies,
    stall_mid_stream,
)
from ui.render import notice_text
from ui.wording import say

PARTIAL = "The first half of an answer"


@contextmanager
def app_failing_with(
    *responses: Response, **overrides: object
) -> Iterator[tuple[Client, LoopbackMessagesAPI]]:
    """The app on a loopback API that answers with these responses first, then echoes."""
    options = {"read_timeout": 5.0, "max_retries": 0, **overrides}
    with LoopbackMessagesAPI(replies(*responses)) as api, tempfile.TemporaryDirectory() as data:
        settings = make_settings(api_key=TEST_KEY, base_url=api.url, data_dir=Path(data), **options)
        with launched_app(settings) as url:
            yield Client(url, verbose=False), api


def failed_chat(client: Client, message: str = "question") -> tuple[str, str]:
    """Send a message that fails: the partial answer left on screen, and the notice shown under it."""
    final = chat(client, message)[-1]
    assert isinstance(final, list), f"expected a failure notice, got {final!r}"
    *answer, notice = final
    assert notice["metadata"]["title"] == app.NOTICE_TITLE
    return answer_text(answer), notice_text(notice["content"])


def the_conversation_goes_on(client: Client, api: LoopbackMessagesAPI, earlier: list[dict]) -> None:
    """The next message gets an answer, and Claude receives the earlier turns plus the new one."""
    assert answer_text(chat(client, "and now?")[-1]) == "You said: and now?"
    sent = api.requests[-1]["messages"]
    assert sent == [*earlier, {"role": "user", "content": "and now?"}]
    assert_valid_history(sent)


def partial_turn(question: str = "question", answer: str = PARTIAL) -> list[dict]:
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": [{"type": "text", "text": answer}]},
    ]


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_key_tells_the_user_how_to_set_it(status):
    with app_failing_with(Failure(status, "authentication_error", "invalid x-api-key")) as (client, api):
        _, shown = failed_chat(client)
        assert f"The API key was rejected (error {status})" in shown and "ANTHROPIC_API_KEY" in shown
        the_conversation_goes_on(client, api, earlier=[])


def test_a_rate_limit_shows_the_retry_after_time():
    limited = Failure(429, "rate_limit_error", "Number of requests exceeded", {"retry-after": "12"})
    with app_failing_with(limited) as (client, api):
        _, shown = failed_chat(client)
        assert "rate limiting" in shown and "Try again in 12 seconds" in shown
        the_conversation_goes_on(client, api, earlier=[])


def test_an_overload_before_the_stream_is_retried_then_says_busy():
    overloaded = Failure(529, "overloaded_error", "Overloaded", {"retry-after-ms": "10"})
    with app_failing_with(overloaded, overloaded, overloaded, max_retries=2) as (client, api):
        _, shown = failed_chat(client)
        assert len(api.requests) == 3
        assert "Claude is busy right now (error 529" in shown and "Try again" in shown
        the_conversation_goes_on(client, api, earlier=[])


def test_a_server_error_that_clears_on_retry_shows_only_the_answer():
    with app_failing_with(Failure(500, "api_error", "oops", {"retry-after-ms": "10"}), max_retries=2) as (
        client,
        api,
    ):
        assert answer_text(chat(client, "hello")[-1]) == "You said: hello"
        assert len(api.requests) == 2


def test_an_overload_mid_stream_keeps_the_partial_answer_and_offers_retry():
    with app_failing_with(error_mid_stream(PARTIAL)) as (client, api):
        partial, shown = failed_chat(client)
        assert partial == PARTIAL
        assert "overloaded mid-answer" in shown and "press Retry" in shown
        the_conversation_goes_on(client, api, earlier=partial_turn())


@pytest.mark.parametrize("how", ["truncate", "reset"])
def test_a_connection_cut_mid_stream_keeps_the_partial_answer(how):
    with app_failing_with(cut_mid_stream(PARTIAL, how)) as (client, api):
        partial, shown = failed_chat(client)
        assert partial == PARTIAL and "connection to Claude was cut mid-answer" in shown
        the_conversation_goes_on(client, api, earlier=partial_turn())


def test_a_stalled_stream_fails_after_the_configured_read_timeout():
    with app_failing_with(stall_mid_stream(PARTIAL), read_timeout=0.5) as (client, api):
        partial, shown = failed_chat(client)
        assert partial == PARTIAL and "stopped sending for 0.5 seconds" in shown
        assert api.wait_for(lambda: api.exchanges[0].client_left_at is not None)
        the_conversation_goes_on(client, api, earlier=partial_turn())


def test_a_conversation_too_long_for_the_context_window_says_to_start_a_new_chat():
    too_long = Failure(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
    with app_failing_with(too_long) as (client, api):
        _, shown = failed_chat(client)
        assert "too long for the model's context window" in shown and "Start a new chat" in shown
        the_conversation_goes_on(client, api, earlier=[])


def test_an_unknown_model_says_to_set_chat_model():
    with app_failing_with(Failure(404, "not_found_error", "model: claude-nope"), model="claude-nope") as (
        client,
        api,
    ):
        _, shown = failed_chat(client)
        assert "The model `claude-nope` was not found (error 404)" in shown and "CHAT_MODEL" in shown
        the_conversation_goes_on(client, api, earlier=[])


def test_an_invalid_request_says_what_to_change():
    objection = "max_tokens: 999999 > 64000, which is the maximum allowed number of output tokens"
    with app_failing_with(Failure(400, "invalid_request_error", objection)) as (client, api):
        _, shown = failed_chat(client)
        assert shown == say(
            ChatError(ErrorKind.INVALID_REQUEST, f"Claude could not answer (error 400): {objection}.")
        )
        assert objection in shown and "max tokens and system prompt in Settings" in shown
        the_conversation_goes_on(client, api, earlier=[])


def test_an_unexpected_failure_shows_a_generic_message_and_logs_the_details(caplog):
    garbled = Stream([b"event: message_start\ndata: {not json at all\n\n"])
    with app_failing_with(garbled) as (client, api):
        _, shown = failed_chat(client)
        assert shown == "Something went wrong while answering. Try again; the details are in the server log."
        assert "Traceback" in caplog.text and "JSONDecodeError" in caplog.text
        the_conversation_goes_on(client, api, earlier=[])
