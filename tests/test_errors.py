"""explain(): each kind of failure becomes a neutral ChatError; the page adds what to do (ui.wording.say)."""

from __future__ import annotations

import email.utils
import logging
import time

import anthropic
import httpx2
import pytest

from chat import ChatError, ErrorKind
from chat.errors import explain
from ui.wording import say

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/messages")


def status_error(status: int, error_type: str, message: str, headers: dict | None = None) -> Exception:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    response = httpx2.Response(status, headers=headers, json=body, request=REQUEST)
    client = anthropic.Anthropic(api_key="sk-test-not-real")
    return client._make_status_error(f"Error code: {status}", body=body, response=response)


def test_a_chat_error_passes_through_unchanged():
    error = ChatError(ErrorKind.API_ERROR, "already explained")
    assert explain(error) is error


def test_retry_after_as_an_http_date_is_turned_into_seconds():
    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    error = explain(status_error(429, "rate_limit_error", "slow", {"retry-after": when}))
    assert error.kind is ErrorKind.API_RATE_LIMITED
    assert "Try again in 9" in error.message  # 89-91 s, depending on the second boundary
    assert error.facts["retry_after"] in (89, 90, 91)


def test_an_unreadable_retry_after_says_to_wait_a_minute():
    error = explain(status_error(429, "rate_limit_error", "slow", {"retry-after": "soonish"}))
    assert "Wait a minute" in error.message and error.facts["retry_after"] is None


def test_busy_does_not_claim_retries_when_they_are_off():
    error = status_error(529, "overloaded_error", "Overloaded")
    assert explain(error, retries=2).kind is ErrorKind.API_BUSY
    assert "after retrying" in explain(error, retries=2).message
    assert "after retrying" not in explain(error, retries=0).message


def test_a_timeout_before_the_stream_says_claude_did_not_start_in_time():
    error = explain(anthropic.APITimeoutError(REQUEST))
    assert error.kind is ErrorKind.START_TIMEOUT
    assert "did not start answering in time" in error.message


def test_an_unlisted_status_gives_its_code_and_no_details():
    error = explain(status_error(409, "conflict_error", "internal detail 1234"))
    assert error.kind is ErrorKind.API_ERROR and error.facts["status"] == 409
    assert "error 409" in error.message and "1234" not in say(error)


def test_an_unexpected_failure_is_generic_on_screen_and_full_in_the_log(caplog):
    try:
        {}["internal_field_name"]
    except KeyError as exc:
        error = explain(exc)
    assert error.kind is ErrorKind.UNEXPECTED
    assert error.message == "Something went wrong while answering."
    assert say(error) == "Something went wrong while answering. Try again; the details are in the server log."
    assert "internal_field_name" in caplog.text and "Traceback" in caplog.text


def test_an_expected_failure_is_logged_as_a_warning_without_a_traceback(caplog):
    with caplog.at_level(logging.WARNING, logger="chat.errors"):
        explain(status_error(401, "authentication_error", "invalid x-api-key"))
    assert "AuthenticationError" in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize(
    ("exc", "words", "cause"),
    [
        (httpx2.ReadError("reset"), "cut mid-answer", "connection"),
        (httpx2.RemoteProtocolError("incomplete chunked read"), "cut mid-answer", "connection"),
        (httpx2.ReadTimeout("timed out"), "stopped sending", "stall"),
    ],
)
def test_raw_transport_errors_mid_stream_keep_the_partial_answer(exc, words, cause):
    error = explain(exc)
    assert error.kind is ErrorKind.INTERRUPTED and error.facts["cause"] == cause
    assert words in error.message
    assert "partial answer is kept" in say(error) and "press Retry" in say(error)


def test_the_service_sentence_names_no_page_remedy():
    error = explain(httpx2.ReadError("reset"))
    assert "Retry" not in error.message and say(error).startswith(error.message)
