"""Issue 12 item 8, measured: a password guesser and an anonymous Stop, against the real app with a login.

    PYTHONPATH=. python -m bench.login_attack            # this checkout
    PYTHONPATH=/work/main python bench/login_attack.py   # the same against another checkout

It serves the app (login ada / "correct horse") over the loopback Messages API, then
1. starts a logged-in answer of about 5 s and, after its third update, posts /gradio_api/cancel
   with that session's hash and no login, and says whether the answer still ran to its end;
2. posts 200 wrong passwords to /login at once from 127.0.0.1 and counts the answers by status
   (400 = the password was checked, 429 = refused unchecked) and the time they took.
"""

from __future__ import annotations

import asyncio
import collections
import time

import httpx

from bench.page_client import PageChat, PageConfig
from tests.conftest import launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY, echo_script
from ui.server import ServerSettings

USER, PASSWORD = "ada", "correct horse"
LONG_MESSAGE = " ".join(f"word{n}" for n in range(200))  # echoed two words a chunk: about 100 updates


async def guess_passwords(url: str, attempts: int = 200) -> None:
    """Post `attempts` wrong passwords at once; print the statuses and the time."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(http.post("login", data={"username": USER, "password": f"guess{n}"}) for n in range(attempts))
        )
        took = time.perf_counter() - started
    statuses = collections.Counter(response.status_code for response in responses)
    refused = next((r.json().get("detail") for r in responses if r.status_code == 429), None)
    print(f"{attempts} wrong passwords in {took:.2f} s: statuses {dict(sorted(statuses.items()))}")
    print(f"  passwords checked (400): {statuses[400]}; refused unchecked (429): {statuses[429]}")
    if refused:
        print(f"  refusal: {refused}")


async def anonymous_stop(url: str) -> None:
    """Start a logged-in answer, post an anonymous /cancel for its session, report what happened."""
    async with httpx.AsyncClient(timeout=30) as owner, httpx.AsyncClient(timeout=30) as stranger:
        assert (await owner.post(url + "login", data={"username": USER, "password": PASSWORD})).is_success
        tab = PageChat(owner, await PageConfig.fetch(owner, url))
        cancel: httpx.Response | None = None
        async for answer in tab.send(LONG_MESSAGE):
            if answer.updates == 3 and cancel is None:
                fn_index = tab.config.event("_submit_fn")["id"]
                body = {"session_hash": tab.session_hash, "fn_index": fn_index, "event_id": tab.event_id}
                cancel = await stranger.post(url + "gradio_api/cancel", json=body)
    assert cancel is not None and tab.answer is not None
    finished = tab.answer.text.endswith("word199")
    print(f"anonymous /cancel answered {cancel.status_code} {cancel.text[:100]}")
    outcome = "ran to its end" if finished else "was stopped"
    print(f"  the owner's answer {outcome} ({tab.answer.updates} updates)")


def main() -> None:
    """Serve the app with a login and run both measurements."""
    with LoopbackMessagesAPI(echo_script(delay=0.05)) as api:
        settings = make_settings(api_key=TEST_KEY, base_url=api.url)
        with launched_app(settings, ServerSettings(username=USER, password=PASSWORD)) as url:
            asyncio.run(anonymous_stop(url))  # first: after the guesses, this address is locked out
            asyncio.run(guess_passwords(url))


if __name__ == "__main__":
    main()
