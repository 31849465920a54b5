"""Every workaround of Gradio 6.31's behaviour, in one place (tests/test_gradio_fixes.py pins the version).

1. `gr.Error` raised from a ChatInterface generator covers the chat with an "Error" overlay,
   hides the partial answer and leaves the message box disabled: failures are drawn as a titled
   notice box instead (ui/render.py `notice_message`), drawn as a failure and said only there
   (no toast repeats it). Loading a file takes its progress (and its "Error") on the Load button
   (`show_progress_on`): on its outputs, the Error overlay hid the chat the file did not replace.
2. ChatInterface hands the chat function the screen's history, not an index, and shows one
   message with files as several user messages: `exchanges_on_screen` counts runs of user
   messages, which is how many exchanges the screen still shows.
3. On Stop, Gradio closes the generator, which then cannot yield the stopped answer's receipt:
   once ChatInterface has copied the screen into its history state, a listener chained on that
   copy redraws the stopped turn (`ChatPage.redraw`) into the screen and the state at once.
4. The message box's own payload check is generic, and a missing payload reaches ChatInterface
   as None (an AttributeError there): `guard_message_box` refuses malformed payloads clearly and
   reads a missing one as blank.
5. A custom MultimodalTextbox has no Stop button unless it is given `stop_btn=True`.
6. Gradio closes a chat generator both when Stop is pressed and when its tab drops (a reload,
   a closed lid): answers outlive the tab, so the page must tell the two apart. Stop posts
   /cancel, which cancels the task running the event before closing the generator; a dropped
   tab only closes the generator. `stopped_by_cancel` reads that from the closing task.
7. ChatInterface has no event for "a message was just sent": `after_sending` chains a listener
   on its `_append_message_to_history` step, and on `example_clicked` for a starter prompt (the
   sidebar lists a new chat at once), and
   `after_answers` on its copy of the screen into its state after an answer.
8. With a login on, Gradio still lets anyone stop an answer: POST /gradio_api/cancel (and
   /reset, /stream/{event_id}/close, the heartbeat whose end closes a session's events) need
   no login, and a session hash is all /cancel asks for. Its login route also checks every
   password it is sent, however fast. `QueueControlGuard` (a middleware, installed through
   launch's app_kwargs) lets only the login that started an event act on it or read its stream,
   and refuses a client address's login attempts past a number of failures a minute with 429;
   Gradio's login page ignores any answer but 400 and 200, so a small script on the page shows
   the refusal's message.
9. The Chatbot's Markdown lexer (marked) is quadratic on a long unbroken run of characters that
   could be part of an e-mail address (letters, digits, `._-+/=`...) and hold `_`, `*`, `~` or
   backticks: at each of those it scans the rest of the run for an `@`, and its emphasis rule
   scans it for a closing delimiter. 100,000 characters of `snake_case_` froze the tab for 89 s
   (26 s before they showed); 300,000 for 9 minutes. Breaking the run up does not help (escaped
   delimiters make a token each, and marked's token walk is quadratic in tokens), but inside
   inline code nothing is lexed: `long_runs_as_code` shows each run longer than 1,000 characters
   as inline code, which is also what such a run (a hash, base64, minified code) usually is.
   The Chatbot also takes `$$...$$` out as LaTeX before Markdown (`LATEX_DELIMITER`, its default).
10. Gradio 6 moved `css=` from Blocks to launch(), with a warning, but the page's own look (inline
   code that wraps, for fix 9) belongs to the page, not to how it is served: `page_blocks` passes
   it to Blocks, which still hands it on at launch, without the warning.
11. Gradio keeps a closed tab's session (each updated component's config, copied per session)
    until `state_session_capacity` newer sessions push it out, and its gr.State values an hour;
    a `time_to_live` only counts from an event that output the state, never for one only read.
    `forget_closed_sessions` drops a session whole when its tab closes (its heartbeat stops), and
    `start_expiry` outputs a state once on page load, so its `time_to_live` runs.
12. While any answer streams, the Chatbot draws its "waiting" dots after *every* reply whose last
    message is a finished box (`metadata.status == "done"`), not only after the streaming one:
    each earlier reply ends with its Usage box, so a stray "•••" bubble showed above each new
    question, one more each turn. The rule is meant for the reply being streamed (a finished
    Thinking box, the text still to come), the last in the chat: `PAGE_FIX_CSS` hides the dots
    under any reply that has a later message after it.
13. A `gr.Sidebar` opens at page load whatever the window's width: on a phone it covers the
    whole chat until closed. `close_sidebar_on_phones` closes it on load in a narrow window.
14. The footer's "·" before its Settings link stays when launch(footer_links=...) leaves that
    link out (the page has Settings of its own): `FOOTER_DIVIDER_CSS` hides a divider left last.
15. A streaming event's last message (process_completed) carries every output's whole last value
    again (`Blocks.handle_streaming_diffs`, `final`), though the stream's messages before it have
    already put that value on screen: for the chat, the whole conversation once more per message
    (48 KB of a 151 KB message at turn 40, bench/turns.py). `complete_streams_without_resending`
    makes the page's chat event (`_submit_fn`, which retry, edit and the starter prompts run too)
    end with Gradio's "no change" update instead; the /chat API, whose clients read their result
    from that last message, keeps it. The stop receipt (fix 3) reads the history from the chat
    state, which ChatInterface has just copied from the screen, rather than have the page send it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from time import monotonic
from typing import Any

import gradio as gr
from gradio.components.multimodal_textbox import MultimodalData
from gradio.context import get_blocks_context
from gradio.events import EventListener
from gradio.route_utils import API_PREFIX
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat.attachments import ACCEPTED_SUFFIXES

GRADIO_VERSION = "6.31.0"  # the version these workarounds were checked against
LATEX_DELIMITER = "$$"  # the Chatbot's only default LaTeX delimiter, left and right (fix 9)
LONG_RUN = 1_000  # fix 9: a longer run of e-mail characters is shown as inline code
_EMAIL_CHARACTER = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]"
_LONG_RUN = re.compile(rf"(?<!{_EMAIL_CHARACTER}){_EMAIL_CHARACTER}{{{LONG_RUN + 1},}}")  # from a run's start
_BACKTICKS = re.compile(r"`+")
# Fix 12: the Chatbot's waiting dots (a `.message.pending` in a container) under a reply followed
# by another message. The dots after the last reply, and those after the chat, still show.
STRAY_WAITING_CSS = (
    ".message-wrap > :has(> .message.pending):has(~ .message-row) { display: none !important; }"
)
FOOTER_DIVIDER_CSS = "footer > .divider:last-child { display: none; }"  # fix 14


class MessageBoxPayload(MultimodalData):
    """What the message box accepts from the page or a script: text, and a list of files."""

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> MessageBoxPayload:
        """Refuse anything else with a message that says what to send (Gradio's own is generic)."""
        text, files = (obj.get("text"), obj.get("files", [])) if isinstance(obj, dict) else (None, None)
        if not isinstance(text, str) or not isinstance(files, list):
            raise gr.Error('The message must be text: send {"text": "...", "files": []}.')
        return super().model_validate(obj, **options)


def message_box() -> gr.MultimodalTextbox:
    """The message box: text and files, with Stop (fix 5) and a clear refusal of bad payloads (fix 4)."""
    textbox = gr.MultimodalTextbox(
        file_types=list(ACCEPTED_SUFFIXES),
        file_count="multiple",
        submit_btn=True,
        stop_btn=True,
        elem_id="message-box",
    )
    guard_message_box(textbox)
    return textbox


def guard_message_box(textbox: gr.MultimodalTextbox) -> None:
    """Make the message box refuse malformed API payloads clearly and read a missing one as blank."""
    textbox.data_model = MessageBoxPayload
    preprocess = textbox.preprocess
    textbox.preprocess = lambda payload: (  # type: ignore[method-assign]
        preprocess(payload) if payload is not None else {"text": "", "files": []}
    )


def message_parts(message: str | Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """The text and files of a message from the box: a string, or a dict with 'text' and 'files'."""
    if isinstance(message, Mapping):
        return str(message.get("text") or ""), list(message.get("files") or [])
    return message or "", []


def exchanges_on_screen(history: Sequence[Mapping[str, Any]]) -> int:
    """How many exchanges a ChatInterface history shows: its runs of user messages (fix 2)."""
    if isinstance(history, str | bytes) or not isinstance(history, Sequence):
        return 0
    runs, previous = 0, None
    for message in history:
        role = message.get("role") if isinstance(message, Mapping) else None
        if role == "user" and previous != "user":
            runs += 1
        previous = role
    return runs


def last_turn_start(history: Sequence[Mapping[str, Any]]) -> int:
    """The index of the first message of the screen's last user run (the last exchange's start)."""
    index = len(history)
    while index > 0 and history[index - 1].get("role") != "user":
        index -= 1
    while index > 0 and history[index - 1].get("role") == "user":
        index -= 1
    return index


def stopped_by_cancel() -> bool:
    """Fix 6: inside a closing chat generator, True for Stop (Gradio's /cancel), False for a dropped tab."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def after_sending(interface: gr.ChatInterface, fn: Any, inputs: list[Any], outputs: list[Any]) -> None:
    """Fix 7: run `fn` as soon as a typed message is on screen, beside its answer (not after it)."""
    fns = get_blocks_context().fns
    for index, block_fn in list(fns.items()):
        if block_fn.name in SENDING_STEPS:
            _after(index)(fn, inputs, outputs, **QUIET)


def after_answers(interface: gr.ChatInterface, fn: Any, inputs: list[Any], outputs: list[Any]) -> None:
    """Fix 7: run `fn` after each answer, once ChatInterface has copied the screen into its state."""
    for index in _state_copies_after_answers(interface):
        _after(index)(fn, inputs, outputs, **QUIET)


# ChatInterface's steps that put a sent message on screen: a typed one, and a starter prompt clicked.
SENDING_STEPS = ("_append_message_to_history", "example_clicked")
QUIET: dict[str, Any] = {
    "show_progress": "hidden",
    "concurrency_limit": None,  # quick, or only waiting: never make one tab wait for another
    "api_visibility": "undocumented",
}


def add_stop_receipt(interface: gr.ChatInterface, redraw: Any, inputs: list[Any]) -> None:
    """Fix 3: after an answer, `redraw(shown, *inputs)` may redraw a stopped last turn, and its state.

    It runs once ChatInterface has copied the screen into its history state at the end of the
    answer (chained on that copy), never beside it: ChatInterface's copy after a cancelled answer
    holds the screen from before the redraw, and landing after a copy made on Stop it would drop
    the receipt from the history the next message is shown under.
    """

    async def redraw_screen_and_state(*values: Any) -> tuple[Any, Any]:
        shown = await redraw(*values)
        return shown, shown  # in one update: no copy of the screen may land between the two

    after_answers(
        interface,
        redraw_screen_and_state,
        [interface.chatbot_state, *inputs],  # just copied from the screen, kept on the server (fix 15)
        [interface.chatbot, interface.chatbot_state],
    )


# Fix 15: the page's chat event, whose last message need not repeat what its stream has shown.
STREAMS_SHOWN_WHOLE = ("_submit_fn",)
NO_CHANGE: dict[str, str] = {"__type__": "update"}  # what gr.skip() sends: the page leaves the value


def complete_streams_without_resending(demo: gr.Blocks) -> None:
    """Fix 15: end the page's chat stream with "no change", not the whole chat again."""
    handle_streaming_diffs = demo.handle_streaming_diffs

    def without_the_last_value_again(block_fn: Any, data: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        data = handle_streaming_diffs(block_fn, data, *args, **kwargs)
        final, run = _argument(args, kwargs, 2, "final"), _argument(args, kwargs, 1, "run")
        if final and run is not None and block_fn.name in STREAMS_SHOWN_WHOLE:
            return [dict(NO_CHANGE) for _ in data]  # run is None: a call without an event id
        return data

    demo.handle_streaming_diffs = without_the_last_value_again  # type: ignore[method-assign]


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
    """`handle_streaming_diffs(block_fn, data, session_hash, run, final, ...)`'s argument after data."""
    return kwargs[name] if name in kwargs else (args[position] if len(args) > position else None)


def _state_copies_after_answers(interface: gr.ChatInterface) -> list[int]:
    """The events with which ChatInterface copies the screen into its state after streaming an answer."""
    fns = get_blocks_context().fns  # ChatInterface keeps its events to itself: find them in the page's
    answers = {index for index, fn in fns.items() if fn.name == "_submit_fn"}
    return [
        index
        for index, fn in fns.items()
        if fn.trigger_after in answers and fn.outputs[:1] == [interface.chatbot_state]
    ]


def _after(index: int) -> Any:
    """A `.then` listener on the page's event at this index (as `Dependency.then` makes one)."""
    then = EventListener(
        "then",
        has_trigger=False,
        trigger_after=index,
        trigger_only_on_success=False,
        trigger_only_on_failure=False,
    )
    return functools.partial(then.listener, None)


# Fix 8: the login, the Stop and reset routes, and login attempts.

LOGIN_WINDOW_SECONDS = 60.0
TRACKED_ADDRESSES = 10_000  # addresses with recent failed logins kept before the expired are swept
LOGIN_PATH = re.compile(r"/login/?$")
# Routes that act on (or read) one session's events, and the Gradio leaves them open or open to any login.
EVENT_ROUTE = re.compile(
    re.escape(API_PREFIX)
    + r"/(?:(?P<cancel>cancel)|(?P<reset>reset)/?|stream/(?P<stream_event>[^/]+)(?:/close)?"
    r"|heartbeat/(?P<heartbeat_session>[^/]+)|(?P<data>queue/data)|call/(?:v2/)?[^/]+/(?P<call_event>[^/]+))$"
)
# On Gradio's login page: its own script shows a message only for a 400; show a 429's detail too.
LOGIN_PAGE_SCRIPT = b"""<script>(() => {
  const fetchFirst = window.fetch;
  window.fetch = async (...args) => {
    const response = await fetchFirst(...args);
    const target = args[0] instanceof Request ? args[0].url : String(args[0]);
    if (!/\\/login\\/?$/.test(new URL(target, location.href).pathname)) return response;
    document.getElementById("login-refused")?.remove();
    const stale = document.querySelector("gradio-app p.creds");  // the last 400's "Incorrect credentials"
    if (stale) stale.style.display = response.status === 429 ? "none" : "";
    if (response.status === 429) {
      const body = await response.clone().json().catch(() => ({}));
      const note = document.createElement("p");
      note.id = "login-refused";
      note.setAttribute("role", "alert");
      note.style.color = "var(--error-text-color, #b91c1c)";
      note.textContent = body.detail || "Too many login attempts: try again in a minute.";
      document.querySelector("gradio-app h2")?.insertAdjacentElement("afterend", note);
    }
    return response;
  };
})();</script>"""


def queue_control_guard(login_attempts_per_minute: int) -> Middleware:
    """Fix 8: the middleware to pass as launch(app_kwargs={"middleware": [...]})."""
    return Middleware(QueueControlGuard, login_attempts_per_minute=login_attempts_per_minute)


class QueueControlGuard:
    """Fix 8: with a login on, only the login that started an event may stop, close or read it,
    and a client address gets a number of failed logins a minute (0: no limit)."""

    def __init__(self, app: ASGIApp, login_attempts_per_minute: int = 5) -> None:
        self.app = app
        self.limit = login_attempts_per_minute
        self.failures: dict[str, deque[float]] = {}  # address -> monotonic times of failed logins
        self.checking: dict[str, int] = {}  # address -> login attempts being checked right now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gradio_app = scope.get("app")
        if scope["type"] != "http" or getattr(gradio_app, "auth", None) is None:
            await self.app(scope, receive, send)  # no login: a session hash is the only key there is
            return
        path, method = scope["path"], scope["method"]
        if method == "POST" and LOGIN_PATH.search(path):
            await self.login(scope, receive, send)
        elif (route := EVENT_ROUTE.search(path)) and (method == "GET") == bool(
            route["heartbeat_session"] or route["data"] or route["call_event"]
        ):
            await self.event_control(gradio_app, route, scope, receive, send)
        elif method == "GET":
            await self.app(scope, receive, _with_login_page_script(send))
        else:
            await self.app(scope, receive, send)

    async def event_control(
        self, gradio_app: Any, route: re.Match[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Let the call through only from a login, and for an event of another login, not at all."""
        request = Request(scope)
        caller = _login_token(gradio_app, request)
        if caller is None:
            await _refuse(send, 401, "Log in first: stopping or following an answer needs the login.")
            return
        session_hash, event_id = route["heartbeat_session"], route["stream_event"] or route["call_event"]
        if route["cancel"]:
            receive, body = await _buffered(receive)
            try:
                fields = json.loads(body)
                session_hash, event_id = str(fields["session_hash"]), str(fields["event_id"])
            except (ValueError, KeyError, TypeError):
                pass  # malformed: Gradio's own validation answers it
        elif route["data"]:
            session_hash = request.query_params.get("session_hash")
        owners = _owners(gradio_app, session_hash, event_id)
        if owners and caller not in owners:
            await _refuse(send, 403, "Only the login that sent this message can stop or follow its answer.")
            return
        await self.app(scope, receive, send)

    async def login(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse an address's login attempts past its failures a minute; count this one's outcome."""
        client = scope.get("client")
        address = client[0] if client else ""
        now = monotonic()
        if len(self.failures) > TRACKED_ADDRESSES:  # many addresses (IPv6 has plenty): forget the old
            self.failures = {
                a: f for a, f in self.failures.items() if f and f[-1] > now - LOGIN_WINDOW_SECONDS
            }
        failures = self.failures.setdefault(address, deque())
        while failures and failures[0] <= now - LOGIN_WINDOW_SECONDS:
            failures.popleft()
        checking = self.checking.get(address, 0)
        if self.limit and len(failures) + checking >= self.limit:  # attempts being checked count too
            oldest = failures[0] if failures else now
            wait = max(1, math.ceil(oldest + LOGIN_WINDOW_SECONDS - now))
            message = (
                f"Too many login attempts from your address: try again in {wait} second{'s' * (wait != 1)}."
            )
            await _refuse(send, 429, message, headers=[(b"retry-after", str(wait).encode())])
            return
        self.checking[address] = checking + 1
        status: list[int] = []

        async def noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            self.checking[address] -= 1
            if not self.checking[address]:
                del self.checking[address]
            if status[:1] == [400]:  # Gradio's "Incorrect credentials."
                self.failures.setdefault(address, failures).append(monotonic())
            elif not failures:
                self.failures.pop(address, None)


def _login_token(gradio_app: Any, request: Request) -> str | None:
    """The caller's login (its access token, as Gradio's get_current_user reads it), if it is valid."""
    cookie_id = gradio_app.cookie_id
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
    return token if token in gradio_app.tokens else None


def _owners(gradio_app: Any, session_hash: str | None, event_id: str | None) -> set[str | None]:
    """The logins that started the live events of this session, or this event (none once they end)."""
    queue = gradio_app.get_blocks()._queue
    return {
        _login_token(gradio_app, event.request)
        for event in list(queue.event_ids_to_events.values())
        if (session_hash is not None and event.session_hash == session_hash) or event._id == event_id
    }


async def _buffered(receive: Receive) -> tuple[Receive, bytes]:
    """Read a request's whole body, and a receive that hands it to the app again."""
    messages, chunks = [], []
    while True:
        message = await receive()
        messages.append(message)
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay, b"".join(chunks)


async def _refuse(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Answer as FastAPI's HTTPException does: JSON with the reason in `detail`."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _with_login_page_script(send: Send) -> Send:
    """A send that adds LOGIN_PAGE_SCRIPT to an HTML page (Gradio's login page among them)."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def sending(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if not content_type.startswith(b"text/html"):
                return await send(message) if start is None else None
            start = message
            return None
        if start is None:
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return None
        page = b"".join(chunks).replace(b"</head>", LOGIN_PAGE_SCRIPT + b"</head>", 1)
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(page)).encode())]})
        await send({"type": "http.response.body", "body": page})
        return None

    return sending


def long_runs_as_code(text: str) -> str:
    """Fix 9: each run of more than LONG_RUN e-mail characters as inline code (nothing in it is lexed)."""

    def as_code(match: re.Match[str]) -> str:
        run = match.group()
        fence = "`" * (max((len(ticks) for ticks in _BACKTICKS.findall(run)), default=0) + 1)
        pad = " " if run.startswith("`") or run.endswith("`") else ""
        return f"{fence}{pad}{run}{pad}{fence}"

    return _LONG_RUN.sub(as_code, text)


def page_blocks(css: str, **options: Any) -> gr.Blocks:
    """Fix 10: a Blocks page carrying its own CSS (Gradio 6 would rather have it passed to launch())."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The parameters have been moved from the Blocks", UserWarning)
        return gr.Blocks(css=css, **options)


def forget_closed_sessions(demo: gr.Blocks) -> None:
    """Fix 11: when a tab closes (its heartbeat stops), drop its whole session, its gr.State values
    through their `delete_callback`s. A tab that comes back (a dropped connection) starts anew."""

    async def forget_session(request: gr.Request) -> None:  # async: on the loop the sessions change on
        holder = getattr(demo, "state_holder", None)
        session = request.session_hash
        if holder is None or session is None or session not in holder:
            return
        holder.delete_state(session)
        with holder.lock:
            holder.session_data.pop(session, None)
            holder.time_last_used.pop(session, None)

    demo.unload(forget_session)


def start_expiry(demo: gr.Blocks, state: gr.State) -> None:
    """Fix 11: output `state` (the same object) on each page load, so its `time_to_live` counts."""
    demo.load(lambda value: value, state, state, queue=False, **QUIET)


PHONE_WIDTH = 768  # px: fix 13 closes the sidebar on load in a window this narrow or narrower
CLOSE_SIDEBAR_JS = f"""() => {{
  if (!window.matchMedia("(max-width: {PHONE_WIDTH}px)").matches) return;
  document.querySelector(".sidebar.open > .toggle-button")?.click();
}}"""


def close_sidebar_on_phones(demo: gr.Blocks) -> None:
    """Fix 13: on page load in a phone-sized window, close the sidebar (it would cover the chat)."""
    demo.load(None, None, None, js=CLOSE_SIDEBAR_JS, queue=False, **QUIET)
