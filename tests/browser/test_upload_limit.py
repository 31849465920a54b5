"""An upload over the server's limit (APP_MAX_FILE_MB, 25 MB by default): the page says so, nothing goes."""

from __future__ import annotations

from tests.browser.chat_page import MESSAGE_BOX_FILES, ChatPage
from tests.loopback_api import LoopbackMessagesAPI
from ui.server import MB

TOO_BIG = 26 * MB


def test_a_file_over_the_upload_limit_is_refused_on_the_page_naming_it_and_the_limit(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI, tmp_path
):
    big = tmp_path / "scan.pdf"
    big.write_bytes(b"%PDF-1.7\n" + bytes(TOO_BIG))
    chat_page.page.set_input_files(MESSAGE_BOX_FILES, [str(big)])
    assert chat_page.error_message() == 'File(s) exceed the maximum allowed size of 25.0 Mb: "scan.pdf"'
    assert chat_page.page.locator("[aria-label='Uploaded files'] .thumbnail-item").count() == 0
    assert loopback_api.requests == []


def test_a_conversation_file_over_the_upload_limit_is_refused_on_the_page(chat_page: ChatPage, tmp_path):
    big = tmp_path / "conversation.json"
    big.write_bytes(b'{"messages": []}' + b" " * TOO_BIG)
    chat_page.load_export(big)
    assert (
        chat_page.error_message() == 'File(s) exceed the maximum allowed size of 25.0 Mb: "conversation.json"'
    )
