"""How long Chromium takes to show an answer of one unbroken line (issue 12, "Rendering").

Runs the real app against the loopback Messages API in headless Chromium; after a warm-up message,
asks once per size and prints the seconds from pressing Enter until the answer bubble holds the
whole line ("shown") and until the page takes input again ("idle"), and the widths of the bubble,
the chat and the page. `--kind snake_case` is the line that froze the tab on main (89 s at 100k).

    PYTHONPATH=. python bench/render_lines.py --kind snake_case 100000 300000
    (kinds: a, url, base64, snake_case; --profile out.cpuprofile saves the tab's CPU profile)
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import tempfile
import time
from pathlib import Path

from tests.browser.chat_page import MESSAGE_BOX, ChatPage, chromium
from tests.browser.conftest import loopback_settings
from tests.conftest import launched_app
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import last_user_text, text_reply

KINDS = {
    "a": lambda size: "a" * size,
    "url": lambda size: ("https://example.invalid/" + "x" * size)[:size],
    "base64": lambda size: base64.b64encode(random.Random(size).randbytes(size))[:size].decode(),
    "snake_case": lambda size: ("snake_case_" * size)[:size],  # froze the tab on main
}
SHOWN_JS = """(n) => {
    const parts = document.querySelectorAll('.bot.message:not(.pending) .message-content');
    return Array.from(parts).some(p => p.textContent.length >= n);
}"""
IDLE_JS = """(box) => !document.querySelector('.stop-button') && !document.querySelector(box).disabled"""
# Typing 100k characters key by key would take minutes: set the value as a paste would.
FILL_JS = """(box, text) => { box.value = text; box.dispatchEvent(new Event('input', {bubbles: true})); }"""
WIDTHS_JS = """() => {
    const bubble = [...document.querySelectorAll('.bot.message:not(.pending)')].pop();
    const chat = document.querySelector('.bubble-wrap') || document.querySelector('[role=log]');
    return {bubble: bubble.scrollWidth, chat: chat.clientWidth,
            page: document.documentElement.scrollWidth, viewport: window.innerWidth};
}"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="+", type=int)
    parser.add_argument("--kind", choices=sorted(KINDS), default="a")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--echo", action="store_true", help="send the line too: it shows in both bubbles")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        LoopbackMessagesAPI() as api,
        launched_app(loopback_settings(api, Path(tmp) / "data")) as url,
    ):
        for size in args.sizes:
            line = KINDS[args.kind](size)
            api.script = lambda body, line=line: text_reply(
                "ready" if last_user_text(body) == "warm up" else line
            )
            with chromium(Path(tmp) / f"profile-{size}") as browser:
                tab = browser.new_page()
                page = ChatPage(tab, url)
                page.open()
                page.send("warm up", "ready")  # the app's first answer opens its store: not counted
                cdp = None
                if args.profile:
                    cdp = browser.new_cdp_session(tab)
                    cdp.send("Profiler.enable")
                    cdp.send("Profiler.start")
                started = time.monotonic()
                if args.echo:
                    api.script = lambda body: text_reply(
                        "ready" if last_user_text(body) == "warm up" else last_user_text(body)
                    )
                    tab.locator(MESSAGE_BOX).evaluate(FILL_JS, line)
                    tab.locator(MESSAGE_BOX).press("Enter")
                else:
                    page.ask("go")
                tab.wait_for_function(SHOWN_JS, arg=size, timeout=args.timeout * 1000, polling=100)
                seconds = time.monotonic() - started
                tab.wait_for_function(IDLE_JS, arg=MESSAGE_BOX, timeout=args.timeout * 1000, polling=100)
                idle = time.monotonic() - started
                if cdp is not None:
                    args.profile.write_text(json.dumps(cdp.send("Profiler.stop")["profile"]))
                widths = tab.evaluate(WIDTHS_JS)
                print(
                    f"{size:>8} chars ({args.kind}{', echoed' if args.echo else ''}): shown after "
                    f"{seconds:.2f} s, idle after {idle:.2f} s; widths {widths}"
                )


if __name__ == "__main__":
    main()
