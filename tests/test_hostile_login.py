"""Issue 12 item 8, through the real app served on 127.0.0.1 with a login: who may stop an answer,
how fast a password may be guessed, and which client address the guards count by."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import gradio as gr
import httpx
import pytest
from playwright.sync_api import Page

from bench.page_client import PageChat, PageConfig
from tests.browser.chat_page import ChatPage, chromium
from tests.conftest import free_port, launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY, echo_script
from ui import gradio_fixes
from ui.addresses import client_address
from ui.server import ServerSettings, start

USER, PASSWORD = "ada", "correct horse"
LONG_MESSAGE = " ".join(f"word{n}" for n in range(200))  # echoed two words an update, 0.02 s apart
LAST_WORD = "word199"
THROTTLED = r"Too many login attempts from your address: try again in \d+ seconds?\."


@pytest.fixture
def api() -> Iterator[LoopbackMessagesAPI]:
    with LoopbackMessagesAPI(echo_script(delay=0.02)) as server:
        yield server


def protected(api: LoopbackMessagesAPI, tmp_path: Path, **server: object) -> Iterator[str]:
    """The app behind the login ada / "correct horse", with these server settings."""
    settings = make_settings(api_key=TEST_KEY, base_url=api.url, data_dir=tmp_path / "data")
    with launched_app(settings, ServerSettings(username=USER, password=PASSWORD, **server)) as url:
        yield url


@pytest.fixture
def url(api: LoopbackMessagesAPI, tmp_path: Path) -> Iterator[str]:
    yield from protected(api, tmp_path)


@pytest.fixture
def proxied_url(api: LoopbackMessagesAPI, tmp_path: Path) -> Iterator[str]:
    yield from protected(api, tmp_path, trusted_proxies=("127.0.0.1",))


async def logged_in(url: str) -> httpx.AsyncClient:
    """A browser that has logged in (it holds its own access-token cookie)."""
    browser = httpx.AsyncClient(timeout=30)
    response = await browser.post(url + "login", data={"username": USER, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return browser


Meddling = Callable[[httpx.AsyncClient, PageChat], Awaitable[httpx.Response]]


async def stop(stranger: httpx.AsyncClient, tab: PageChat) -> httpx.Response:
    """Post /cancel for the tab's session and event, as the page's Stop does."""
    body = {
        "session_hash": tab.session_hash,
        "fn_index": tab.config.event("_submit_fn")["id"],
        "event_id": tab.event_id,
    }
    return await stranger.post(tab.config.url + "/gradio_api/cancel", json=body)


async def answer_meddled_with(
    url: str, stranger: httpx.AsyncClient | None, meddle: Meddling = stop
) -> tuple[PageChat, httpx.Response]:
    """A logged-in tab's long answer, on whose third update `stranger` (None: no login) meddles with
    the tab's session (by default, presses Stop for it); the tab, and the answer to the meddling."""
    owner = await logged_in(url)
    stranger = stranger or httpx.AsyncClient(timeout=30)
    try:
        tab = PageChat(owner, await PageConfig.fetch(owner, url))
        meddled = None
        async with asyncio.timeout(30):
            async for answer in tab.send(LONG_MESSAGE):
                if answer.updates == 3 and meddled is None:
                    meddled = await meddle(stranger, tab)
        assert meddled is not None
        return tab, meddled
    finally:
        await owner.aclose()
        await stranger.aclose()


def login(url: str, password: str, forwarded_for: str | None = None) -> httpx.Response:
    """One login attempt (from 127.0.0.1, naming `forwarded_for` as the client if given)."""
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    return httpx.post(url + "login", data={"username": USER, "password": password}, headers=headers)


def fail_five_times(url: str, forwarded_for: str | None = None) -> None:
    """Spend a minute's allowance of failed logins."""
    for attempt in range(5):
        assert login(url, f"guess {attempt}", forwarded_for).status_code == 400


# Stop and reset


async def test_an_anonymous_stop_with_a_users_session_hash_does_not_stop_the_answer(url):
    tab, cancel = await answer_meddled_with(url, stranger=None)
    assert cancel.status_code == 401
    assert "needs the login" in cancel.json()["detail"]
    assert tab.answer.text.endswith(LAST_WORD)  # the answer ran to its end


async def test_the_logged_in_owner_can_still_stop_the_answer(url):
    owner = await logged_in(url)
    tab = PageChat(owner, await PageConfig.fetch(owner, url))
    try:
        async with asyncio.timeout(30):
            async for answer in tab.send(LONG_MESSAGE):
                if answer.updates == 3:
                    await tab.cancel()  # raises unless /cancel answers 2xx
    finally:
        await owner.aclose()
    assert tab.answer.text and not tab.answer.text.endswith(LAST_WORD)


async def test_another_login_cannot_stop_someone_elses_answer(url):
    tab, cancel = await answer_meddled_with(url, stranger=await logged_in(url))
    assert cancel.status_code == 403
    assert "Only the login that sent this message" in cancel.json()["detail"]
    assert tab.answer.text.endswith(LAST_WORD)


async def test_an_anonymous_heartbeat_for_a_users_session_is_refused(url):
    # Gradio closes a session's events when its heartbeat connection ends: a stranger's must not open.
    async def heartbeat(stranger: httpx.AsyncClient, tab: PageChat) -> httpx.Response:
        return await stranger.get(url + f"gradio_api/heartbeat/{tab.session_hash}")

    tab, refused = await answer_meddled_with(url, stranger=None, meddle=heartbeat)
    assert refused.status_code == 401
    assert tab.answer.text.endswith(LAST_WORD)


async def test_another_login_cannot_read_someone_elses_answer_stream(url):
    async def read_stream(stranger: httpx.AsyncClient, tab: PageChat) -> httpx.Response:
        return await stranger.get(url + "gradio_api/queue/data", params={"session_hash": tab.session_hash})

    tab, refused = await answer_meddled_with(url, stranger=await logged_in(url), meddle=read_stream)
    assert refused.status_code == 403
    assert tab.answer.text.endswith(LAST_WORD)


def test_an_anonymous_reset_is_refused(url):
    assert httpx.post(url + "gradio_api/reset", json={"event_id": "x"}).status_code == 401


# Password guessing


def test_a_sixth_wrong_password_in_a_minute_is_refused_unchecked_with_429_and_a_message(url):
    fail_five_times(url)
    refused = login(url, PASSWORD)  # even the right one: it is not checked
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many login attempts from your address")
    assert int(refused.headers["retry-after"]) in range(1, 61)


def test_a_right_password_works_once_the_minute_has_passed(url, monkeypatch):
    fail_five_times(url)
    assert login(url, PASSWORD).status_code == 429
    now = gradio_fixes.monotonic()
    monkeypatch.setattr(gradio_fixes, "monotonic", lambda: now + 61)
    assert login(url, PASSWORD).status_code == 200


async def test_two_hundred_wrong_passwords_at_once_check_only_five(url):
    async with httpx.AsyncClient(timeout=30) as http:
        responses = await asyncio.gather(
            *(http.post(url + "login", data={"username": USER, "password": f"guess{n}"}) for n in range(200))
        )
    statuses = [response.status_code for response in responses]
    assert statuses.count(400) == 5 and statuses.count(429) == 195


def log_in_on_the_page(page: Page, password: str) -> int:
    """Fill Gradio's login form and press Login; the status the login route answered."""
    page.get_by_label("username").fill(USER)
    page.get_by_label("password").fill(password)
    with page.expect_response(lambda response: response.url.endswith("/login")) as answered:
        page.get_by_role("button", name="Login").click()
    return answered.value.status


def test_the_login_page_shows_why_a_sixth_attempt_is_refused(url, tmp_path):
    # Gradio's login page reacts only to a 400 or a 200: the 429's message must still show on it.
    with chromium(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(url, wait_until="load")
        statuses = [log_in_on_the_page(page, f"guess {attempt}") for attempt in range(6)]
        shown = page.get_by_role("alert").inner_text()
        incorrect_shown = page.get_by_text("Incorrect Credentials").is_visible()
    assert statuses == [400] * 5 + [429]
    assert re.fullmatch(THROTTLED, shown) and not incorrect_shown


def test_in_a_browser_the_logged_in_pages_stop_still_stops_the_answer(url, tmp_path):
    cancels: list[int] = []
    with chromium(tmp_path / "profile") as browser:
        tab = ChatPage(browser.new_page(), url)
        tab.page.on("response", lambda r: cancels.append(r.status) if r.url.endswith("/cancel") else None)
        tab.page.goto(url, wait_until="load")
        assert log_in_on_the_page(tab.page, PASSWORD) == 200
        tab.message_box().wait_for(state="visible")
        tab.ask(LONG_MESSAGE)
        tab.watch_answers(until=lambda answers: "word20" in " ".join(answers))
        tab.press_stop()
        tab.wait_until_idle()
        stopped = tab.answer()
    assert cancels and set(cancels) == {200}  # Gradio's own /cancel, with the login, is let through
    assert "word20" in stopped and LAST_WORD not in stopped
    assert tab.console_errors == []


def test_login_attempts_are_not_limited_when_the_setting_is_0(api, tmp_path):
    for served in protected(api, tmp_path, login_attempts_per_minute=0):
        fail_five_times(served)
        assert login(served, "guess 6").status_code == 400
        assert login(served, PASSWORD).status_code == 200


# The client address


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(url):
    fail_five_times(url, forwarded_for="203.0.113.1")
    # Another forwarded address changes nothing: the address counted is the peer, 127.0.0.1.
    assert login(url, PASSWORD, forwarded_for="203.0.113.2").status_code == 429


def test_with_the_peer_trusted_the_forwarded_address_is_counted(proxied_url):
    fail_five_times(proxied_url, forwarded_for="203.0.113.1")
    assert login(proxied_url, PASSWORD, forwarded_for="203.0.113.1").status_code == 429
    assert login(proxied_url, PASSWORD, forwarded_for="203.0.113.2").status_code == 200


@pytest.mark.parametrize(
    ("trusted", "seen"), [((), "127.0.0.1"), (("127.0.0.1",), "203.0.113.9")], ids=["untrusted", "trusted"]
)
def test_the_page_sees_the_forwarded_address_only_from_a_trusted_proxy(trusted, seen):
    with gr.Blocks() as demo:
        shown = gr.Textbox()
        demo.load(client_address, None, shown, api_name="address")
    start(demo, ServerSettings(trusted_proxies=trusted), server_port=free_port(), quiet=True)
    try:
        response = httpx.post(
            demo.local_api_url + "call/address", json={"data": []}, headers={"x-forwarded-for": "203.0.113.9"}
        )
        event_id = response.json()["event_id"]
        events = httpx.get(demo.local_api_url + f"call/address/{event_id}", timeout=10).text
    finally:
        demo.close()
    assert f'["{seen}"]' in events
