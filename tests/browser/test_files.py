"""Files in the page: attached to a message, loaded from an export, sent again by Retry."""

from __future__ import annotations

import base64
import json

from tests.browser.chat_page import ChatPage
from tests.conftest import write_image
from tests.loopback_api import LoopbackMessagesAPI


def test_a_file_attached_in_the_page_is_sent_and_kept_with_its_turn(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI, tmp_path
):
    chat_page.send("what colour?", "You said: what colour?", files=[write_image(tmp_path / "red.png")])
    chat_page.send("and now?", "You said: and now?")

    first, second = loopback_api.requests
    assert [block["type"] for block in first["messages"][0]["content"]] == ["image", "text"]
    assert second["messages"][0] == first["messages"][0]


def test_a_conversation_loaded_in_the_page_is_shown_and_continued(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI, tmp_path
):
    image = base64.b64encode(write_image(tmp_path / "blue.png", size=(60, 40)).read_bytes()).decode()
    source = {"type": "base64", "media_type": "image/png", "data": image}
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "source": source}, {"type": "text", "text": "what is it?"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "A blue rectangle."}]},
    ]
    export = tmp_path / "conversation.json"
    export.write_text(json.dumps({"model": "claude-sonnet-5-5", "max_tokens": 9, "messages": messages}))
    chat_page.load_export(export)
    chat_page.wait_for_text("A blue rectangle.")

    assert chat_page.images_shown() >= 1
    chat_page.send("sure?", "You said: sure?")
    assert loopback_api.requests[-1]["messages"] == [*messages, {"role": "user", "content": "sure?"}]


def test_retry_sends_the_message_with_its_files_again(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI, tmp_path
):
    chat_page.send("what colour?", "You said: what colour?", files=[write_image(tmp_path / "red.png")])
    chat_page.press("Retry")

    assert loopback_api.wait_for(lambda: len(loopback_api.requests) == 2, timeout=20)
    assert loopback_api.requests[1] == loopback_api.requests[0]
    chat_page.wait_for_answer("You said: what colour?")
