"""explain(): each kind of failure becomes a message that says what happened and what to do."""

from __future__ import annotations

import email.utils
import logging
import time

import anthropic
import httpx2
import pytest

from chat import ChatError, Settings
from chat.errors import UNEXPECTED, explain

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/messages")


def status_error(status: int, error_type: str, message: str, headers: dict | None = None) -> Exception:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    response = httpx2.Response(status, headers=headers, json=body, request=REQUEST)
    client = anthropic.Anthropic(api_key="sk-test-not-real")
    return client._make_status_error(f"Error code: {status}", body=body, response=response)


def test_a_chat_error_passes_through_unchanged():
    error = ChatError("already explained")
    assert explain(error) is error


def test_retry_after_as_an_http_date_is_turned_into_seconds():
    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    message = explain(status_error(429, "rate_limit_error", "slow", {"retry-after": when})).message
    assert "Try again in 9" in message  # 89-91 s, depending on the second boundary


def test_an_unreadable_retry_after_says_to_wait_a_minute():
    message = explain(status_error(429, "rate_limit_error", "slow", {"retry-after": "soonish"})).message
    assert "Wait a minute" in message


def test_busy_does_not_claim_retries_when_they_are_off():
    error = status_error(529, "overloaded_error", "Overloaded")
    assert "after retrying" in explain(error, Settings(max_retries=2)).message
    assert "after retrying" not in explain(error, Settings(max_retries=0)).message


def test_a_timeout_before_the_stream_says_claude_did_not_start_in_time():
    message = explain(anthropic.APITimeoutError(REQUEST)).message
    assert "did not start answering in time" in message


def test_an_unlisted_status_gives_its_code_and_no_details():
    message = explain(status_error(409, "conflict_error", "internal detail 1234")).message
    assert "error 409" in message and "1234" not in message


def test_an_unexpected_failure_is_generic_on_screen_and_full_in_the_log(caplog):
    try:
        {}["internal_field_name"]
    except KeyError as error:
        message = explain(error).message
    assert message == UNEXPECTED
    assert "internal_field_name" in caplog.text and "Traceback" in caplog.text


def test_an_expected_failure_is_logged_as_a_warning_without_a_traceback(caplog):
    with caplog.at_level(logging.WARNING, logger="chat.errors"):
        explain(status_error(401, "authentication_error", "invalid x-api-key"))
    assert "AuthenticationError" in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (httpx2.ReadError("reset"), "cut mid-answer"),
        (httpx2.RemoteProtocolError("incomplete chunked read"), "cut mid-answer"),
        (httpx2.ReadTimeout("timed out"), "stopped sending"),
    ],
)
def test_raw_transport_errors_mid_stream_keep_the_partial_answer(error, words):
    message = explain(error).message
    assert words in message and "partial answer is kept" in message
