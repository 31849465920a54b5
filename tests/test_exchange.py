"""The exchange record: plain JSON data holding the request as sent and the answer as returned."""

from __future__ import annotations

import json

import pytest

from chat import ChatError, Status, TurnOptions
from chat.exchange import Exchange
from tests.conftest import Chat, write_image
from tests.upstream import cut_mid_stream, fixture, text_reply


async def test_a_complete_exchange_keeps_the_final_message_as_returned():
    chat = Chat(fixture("thinking.sse"))
    reply = await chat.send("What is 27 * 453?")
    exchange = chat.conversation.exchanges[0]
    assert exchange.status is Status.COMPLETE and not exchange.partial
    assert exchange.response == reply.message.to_dict(mode="json", exclude_none=True, warnings=False)
    assert [block["type"] for block in exchange.content] == ["thinking", "text"]
    assert exchange.content[0]["signature"].startswith("EqQBCgIYAhIM")


async def test_the_exchange_keeps_every_request_option_it_was_sent_with():
    chat = Chat(text_reply("Arr."))
    options = TurnOptions(
        model="claude-opus-5-5", max_tokens=200, system_prompt="Be a pirate.", thinking=True
    )
    await chat.send("Hello", options=options)
    request = chat.conversation.exchanges[0].request
    sent = chat.requests[0]
    assert request == {key: value for key, value in sent.items() if key not in ("messages", "stream")}
    assert request["model"] == "claude-opus-5-5" and request["max_tokens"] == 200
    assert request["system"] == "Be a pirate." and request["thinking"]["type"] == "adaptive"


async def test_a_failed_exchange_keeps_the_snapshot_marked_partial_with_its_error():
    chat = Chat(cut_mid_stream("The first half of"))
    with pytest.raises(ChatError):
        await chat.send("tell me")
    exchange = chat.conversation.exchanges[0]
    assert exchange.status is Status.FAILED and exchange.partial
    assert exchange.text == "The first half of"
    assert exchange.error is not None and exchange.error.kind.value == "interrupted"
    assert exchange.usage is not None  # message_start's usage: what the API counted of the prompt


async def test_an_exchange_round_trips_through_json_unchanged(tmp_path):
    chat = Chat(fixture("web_search.sse"))
    await chat.send("Weather?", [write_image(tmp_path / "red.png")])
    exchange = chat.conversation.exchanges[0]
    data = json.loads(json.dumps(exchange.to_dict()))
    assert Exchange.from_dict(data).to_dict() == exchange.to_dict()


async def test_an_exchange_refers_to_its_files_by_hash_and_never_holds_their_bytes(tmp_path):
    chat = Chat(text_reply("A red square."))
    await chat.send("What is this?", [write_image(tmp_path / "red.png")])
    exchange = chat.conversation.exchanges[0]
    (ref,) = exchange.prompt.files
    assert ref.name == "red.png" and ref.media_type == "image/png" and len(ref.sha256) == 64
    assert "base64" not in json.dumps(exchange.to_dict())
    assert chat.service.files.read(ref) == (tmp_path / "red.png").read_bytes()


async def test_timings_count_seconds_from_the_request():
    chat = Chat(fixture("thinking.sse"))
    await chat.send("What is 27 * 453?")
    timings = chat.conversation.exchanges[0].timings
    assert 0 <= timings.first_token <= timings.answer_started <= timings.finished


def test_a_record_left_streaming_reads_back_as_stopped():
    record = Exchange.from_dict({"prompt": {"text": "hi"}, "request": {}, "status": "streaming"})
    assert record.status is Status.STOPPED
