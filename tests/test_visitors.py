"""Whose conversations a tab sees (ui/visitors.py): tokens, owner keys and the browser secret."""

from __future__ import annotations

import stat

from ui.visitors import (
    Tab,
    browser_secret,
    is_conversation_id,
    is_token,
    new_conversation_id,
    new_token,
    user_owner,
    visitor_owner,
)


def test_a_visitor_token_is_random_url_safe_and_long():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(is_token(token) and len(token) >= 43 for token in tokens)


def test_the_store_sees_a_hash_of_the_token_never_the_token():
    token = new_token()
    owner = visitor_owner(token)
    assert token not in owner and owner == visitor_owner(token) and owner != visitor_owner(new_token())


def test_a_username_and_a_visitor_token_can_never_be_the_same_owner():
    token = new_token()
    assert user_owner(token) != visitor_owner(token)
    assert user_owner("ann") == "user:ann"


def test_values_a_browser_could_send_that_are_no_token_are_refused():
    for value in (None, "", "short", "x" * 31, "has spaces " * 4, {"token": new_token()}, 42, "é" * 40):
        assert not is_token(value), value
    assert is_conversation_id(new_conversation_id())
    assert not is_conversation_id("../../etc/passwd") and not is_conversation_id("a" * 65)


def test_a_tab_no_page_load_set_up_becomes_a_visitor_of_its_own_on_a_new_chat():
    first, second = Tab().settled(), Tab().settled()
    assert first.owner.startswith("visitor:") and first.owner != second.owner
    assert is_conversation_id(first.conversation_id)
    opened = Tab("user:ann", "chosen-chat-id-0001")
    assert opened.settled() == Tab("user:ann", "chosen-chat-id-0001")  # one that is set up stays


def test_the_browser_secret_is_made_once_kept_private_and_read_back(tmp_path):
    secret = browser_secret(tmp_path / "data")
    assert len(secret) >= 43 and browser_secret(tmp_path / "data") == secret  # after a restart too
    mode = stat.S_IMODE((tmp_path / "data" / "browser-secret").stat().st_mode)
    assert mode == 0o600
    assert browser_secret(tmp_path / "other") != secret
