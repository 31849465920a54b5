"""The Gradio workarounds in ui/gradio_fixes.py, pinned to the Gradio version they were checked on.

If Gradio is upgraded, the first test fails: re-check each workaround's premise (the tests below
say what each relies on) and drop those Gradio no longer needs.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio.chat_interface import ChatInterface

from bench.page_client import PageChat, PageConfig
from tests.conftest import free_port
from ui.gradio_fixes import (
    CLOSE_SIDEBAR_JS,
    FOOTER_DIVIDER_CSS,
    GRADIO_VERSION,
    LATEX_DELIMITER,
    LONG_RUN,
    NO_CHANGE,
    SENDING_STEPS,
    STRAY_WAITING_CSS,
    _state_copies_after_answers,
    add_stop_receipt,
    after_sending,
    complete_streams_without_resending,
    exchanges_on_screen,
    last_turn_start,
    long_runs_as_code,
    message_box,
    message_parts,
    page_blocks,
    queue_control_guard,
    stopped_by_cancel,
)


def test_the_workarounds_were_checked_on_the_installed_gradio():
    assert gr.__version__ == GRADIO_VERSION


def test_chat_interface_shows_a_message_with_files_as_one_user_message_of_parts():
    # Premise of fix 2: a message's files and text arrive as parts of user messages, and a history
    # holds no index of the exchange, so the screen's position must be counted from roles.
    interface = ChatInterface.__new__(ChatInterface)
    interface.multimodal = True
    shown = interface._message_as_message_dict({"text": "hi", "files": ["/tmp/a.png"]}, "user")
    assert shown == [{"role": "user", "content": [{"path": "/tmp/a.png"}, "hi"]}]


def test_retry_pops_the_last_run_of_user_messages():
    # Premise of fix 2: Gradio's own retry and undo remove the last run of user messages and
    # everything after it, so counting runs tells how many exchanges the screen still shows.
    source = inspect.getsource(ChatInterface._pop_last_user_message)
    assert 'history[i]["role"] == "user"' in source


def test_each_run_of_user_messages_is_one_exchange():
    history = [
        {"role": "user", "content": [{"type": "file", "file": {"path": "a.png"}}]},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": "A red square."},
        {"role": "assistant", "content": "1 in · 2 out", "metadata": {"title": "Usage"}},
        {"role": "user", "content": "And this?"},
        {"role": "assistant", "content": "Another."},
        {"role": "user", "content": "Last"},
    ]
    assert exchanges_on_screen(history) == 3


def test_an_empty_or_malformed_history_shows_no_exchange():
    assert exchanges_on_screen([]) == 0
    assert exchanges_on_screen("not a history") == 0  # type: ignore[arg-type]
    assert exchanges_on_screen([42, None]) == 0  # type: ignore[list-item]


def test_the_last_turn_starts_at_its_first_user_message():
    history = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "1"},
        {"role": "user", "content": [{"path": "a.png"}]},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "2"},
    ]
    assert last_turn_start(history) == 2


def test_a_custom_message_box_needs_stop_btn_for_a_stop_button():
    # Premise of fix 5: MultimodalTextbox's own default has no Stop button.
    assert inspect.signature(gr.MultimodalTextbox.__init__).parameters["stop_btn"].default is False
    assert message_box().stop_btn is True


def test_gradio_passes_a_missing_payload_on_as_none():
    # Premise of fix 4: without the guard, preprocess(None) returns None and ChatInterface fails.
    assert gr.MultimodalTextbox().preprocess(None) is None


def test_the_guarded_box_reads_a_missing_payload_as_blank():
    assert message_box().preprocess(None) == {"text": "", "files": []}


def test_the_guarded_box_refuses_a_payload_that_is_not_text_and_files():
    box = message_box()
    with pytest.raises(gr.Error, match=r"The message must be text"):
        box.data_model.model_validate({"text": 42, "files": []})


def test_message_parts_reads_a_string_or_a_dict():
    assert message_parts("hi") == ("hi", [])
    assert message_parts({"text": "hi", "files": ["a.png"]}) == ("hi", ["a.png"])
    assert message_parts(None) == ("", [])


def test_the_cancel_route_closes_the_chat_function_so_it_cannot_yield_a_receipt():
    # Premise of fix 3: POST /gradio_api/cancel closes the event's iterator (it cannot yield again).
    from gradio import routes

    source = inspect.getsource(routes)
    cancel = source[source.index('"/cancel"') :]
    assert "safe_aclose_iterator(app.iterators[body.event_id])" in cancel[:3000]


def test_chat_interface_copies_the_screen_into_its_state_after_each_answer():
    # Premise of fix 3: the stop receipt is chained on ChatInterface's own copy of the screen into
    # its history state after an answer (found by the chat function's name, `_submit_fn`).
    with gr.Blocks():
        interface = gr.ChatInterface(lambda message, history: message, multimodal=True, textbox=message_box())
        copies = _state_copies_after_answers(interface)
    assert copies, "ChatInterface no longer copies the screen into its state after _submit_fn"


def test_the_stop_receipt_is_chained_after_every_copy_of_the_screen():
    with gr.Blocks() as demo:
        interface = gr.ChatInterface(lambda message, history: message, multimodal=True, textbox=message_box())
        copies = _state_copies_after_answers(interface)

        def after_copies() -> list[int]:
            return sorted(fn.trigger_after for fn in demo.fns.values() if fn.trigger_after in copies)

        before = after_copies()

        async def redraw(shown: list, *inputs: object) -> list:
            return shown

        add_stop_receipt(interface, redraw, [])
    assert after_copies() == sorted([*before, *copies])


def closing_chat(closes: list[bool]) -> gr.ChatInterface:
    """A chat whose endless answer records, when Gradio closes it, whether Stop closed it."""

    async def count(message: str, history: list) -> AsyncIterator[str]:
        try:
            for number in range(2000):
                await asyncio.sleep(0.01)
                yield str(number)
        finally:
            closes.append(stopped_by_cancel())

    return gr.ChatInterface(count)


async def answer_until_updates(
    tab: PageChat, updates: int, then: Callable[[], Awaitable[None]] | None
) -> None:
    """Send a message, read `updates` updates, then press Stop (`then`) or leave (None: the tab drops)."""
    async for answer in tab.send("count"):
        if answer.updates >= updates:
            if then is None:
                return  # the SSE connection closes with this generator: the tab is gone
            await then()


@pytest.mark.parametrize(
    ("stop", "closed_by_stop"), [(True, True), (False, False)], ids=["stop", "tab-drops"]
)
async def test_stop_and_a_dropped_tab_both_close_the_chat_function_told_apart(stop, closed_by_stop):
    # Premise of fix 6: /cancel cancels the event's task before closing the generator; a dropped
    # tab only closes it (the task ends its run normally).
    closes: list[bool] = []
    demo = closing_chat(closes)
    demo.queue().launch(prevent_thread_lock=True, quiet=True, server_port=free_port())
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            tab = PageChat(http, await PageConfig.fetch(http, demo.local_url))
            async with asyncio.timeout(10):
                await answer_until_updates(tab, 3, tab.cancel if stop else None)
                while not closes:
                    await asyncio.sleep(0.01)
    finally:
        demo.close()
    assert closes == [closed_by_stop]


def test_after_sending_runs_beside_the_answer_once_the_message_is_on_screen():
    # Premise of fix 7: each typed message is appended to the screen by `_append_message_to_history`
    # before the answer starts; a listener chained on it runs while the answer streams.
    with gr.Blocks() as demo:
        interface = gr.ChatInterface(lambda message, history: message)
        marker = gr.Textbox()
        after_sending(interface, lambda history: "sent", [interface.chatbot], [marker])
    appends = {i for i, fn in demo.fns.items() if fn.name == "_append_message_to_history"}
    chained = [fn for fn in demo.fns.values() if fn.outputs == [marker]]
    assert appends and {fn.trigger_after for fn in chained} == appends


def test_gradios_stop_and_reset_routes_ask_for_no_login():
    # Premise of fix 8: /cancel (which needs only a session hash), /reset and a stream's close take
    # no login dependency, unlike /queue/join; and the heartbeat's end closes the session's events.
    from gradio import routes

    source = inspect.getsource(routes)
    assert '@router.post("/cancel")\n        async def cancel_event(body: CancelBody):' in source
    assert '@router.post("/reset")\n        async def reset_iterator(body: ResetBody):' in source
    assert '@router.post("/stream/{event_id}/close")\n        async def _(event_id: str):' in source
    assert '@router.post("/queue/join", dependencies=[Depends(login_check)])' in source
    assert 'await cancel_tasks({f"{body.session_hash}_{body.fn_index}"})' in source


def test_gradio_records_the_request_that_started_each_event():
    # Premise of fix 8: an event's owner is read from the access-token cookie of the request that
    # queued it, under the cookie names get_current_user reads.
    from gradio import queueing, routes

    assert "self.request = request" in inspect.getsource(queueing.Event.__init__)
    source = inspect.getsource(routes)
    assert (
        'f"access-token-{app.cookie_id}"' in source and 'f"access-token-unsecure-{app.cookie_id}"' in source
    )


def test_gradios_login_route_checks_every_attempt_and_fails_with_400():
    # Premise of fix 8: nothing throttles /login, and a wrong password is a 400 (which the guard counts).
    from gradio import routes

    source = inspect.getsource(routes)
    login = source[source.index('@app.post("/login")') :][:2500]
    assert 'raise HTTPException(status_code=400, detail="Incorrect credentials.")' in login


def test_gradios_login_page_reacts_only_to_a_400_or_a_200():
    # Premise of fix 8: the login page ignores a 429, so the page needs the guard's script to show it.
    from pathlib import Path

    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    (login_page,) = assets.glob("Login-*.js")
    script = login_page.read_text()
    assert "n.status===400?" in script and "n.status==200&&location.reload()" in script


def test_launch_app_kwargs_middleware_runs_inside_gradios_compression():
    # Premise of fix 8: middleware given through launch(app_kwargs=...) sees uncompressed pages
    # (Gradio adds its Brotli middleware later, outside it), so the login page script can be added.
    with gr.Blocks() as demo:
        gr.Markdown("hi")
    demo.launch(
        prevent_thread_lock=True,
        quiet=True,
        server_port=free_port(),
        app_kwargs={"middleware": [queue_control_guard(login_attempts_per_minute=5)]},
    )
    try:
        names = [m.cls.__name__ for m in demo.app.user_middleware]
    finally:
        demo.close()
    assert names.index("BrotliMiddleware") < names.index("QueueControlGuard")


def test_uvicorn_reads_forwarded_allow_ips_when_its_config_is_made(monkeypatch):
    # Premise of the trusted proxies (ui/server.py start): Gradio makes uvicorn.Config without proxy
    # options, so FORWARDED_ALLOW_IPS, read then, decides whose X-Forwarded-For is believed.
    import uvicorn
    from gradio import http_server

    assert "forwarded_allow_ips" not in inspect.getsource(http_server)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    assert uvicorn.Config(app=None).forwarded_allow_ips == "10.0.0.0/8"
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    assert uvicorn.Config(app=None).forwarded_allow_ips == "127.0.0.1,::1"  # any local caller, otherwise


def test_the_chatbots_markdown_lexer_still_scans_for_an_email_address_at_every_stop():
    # Premise of fix 9: the inline text rule of the bundled marked looks ahead through the whole
    # run of e-mail characters for an "@" (quadratic on a long run with stops in it).
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    lookahead = r"(?=[a-zA-Z0-9.!#$%&'*+\/=?_`{\|}~-]+@)"
    assert any(lookahead in path.read_text(errors="ignore") for path in assets.glob("markdown-code-*.js"))


def test_the_chatbot_renders_only_double_dollar_latex_by_default():
    # Premise of fix 9's LATEX_DELIMITER: ui/markdown.py leaves what the Chatbot takes as LaTeX alone.
    assert gr.Chatbot().latex_delimiters == [
        {"left": LATEX_DELIMITER, "right": LATEX_DELIMITER, "display": True}
    ]


def test_a_run_longer_than_the_limit_becomes_inline_code_and_a_shorter_one_is_left_alone():
    short, long = "x_" * (LONG_RUN // 2), "y_" * (LONG_RUN // 2) + "z"
    assert long_runs_as_code(f"{short} {long}.") == f"{short} `{long}.`"


def test_a_long_run_holding_backticks_gets_a_longer_fence_padded_off_its_own_backticks():
    run = "`" + "a" * LONG_RUN + "``b"
    assert long_runs_as_code(run) == f"``` {run} ```"


async def test_blocks_still_take_css_and_hand_it_on_at_launch():
    # Premise of fix 10: Gradio 6 warns about Blocks(css=) but still serves it.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with page_blocks(".probe { color: red }") as demo:
            gr.Markdown("x")
    demo.queue().launch(prevent_thread_lock=True, quiet=True, server_port=free_port())
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            config = (await http.get(f"{demo.local_url}config")).json()
        assert config["css"] == ".probe { color: red }"
    finally:
        demo.close()


def test_a_clicked_starter_prompt_is_put_on_screen_by_example_clicked_and_after_sending_follows_it():
    # Premise of fix 7 for starter prompts: a clicked example reaches the screen through
    # `example_clicked` (not `_append_message_to_history`), and is answered after it.
    with gr.Blocks() as demo:
        interface = gr.ChatInterface(lambda message, history: message, examples=["hi"], cache_examples=False)
        marker = gr.Textbox()
        after_sending(interface, lambda history: "sent", [interface.chatbot], [marker])
    steps = {i for i, fn in demo.fns.items() if fn.name in SENDING_STEPS}
    assert {demo.fns[i].name for i in steps} == set(SENDING_STEPS)
    chained = [fn for fn in demo.fns.values() if fn.outputs == [marker]]
    assert {fn.trigger_after for fn in chained} == steps


def chatbot_bundle() -> str:
    """The Chatbot's compiled frontend (the asset that draws its waiting dots)."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    (bundle,) = [
        text
        for path in assets.glob("Index-*.js")
        if 'aria-label="Loading response"' in (text := path.read_text(errors="ignore"))
    ]
    return bundle


def test_the_chatbot_draws_waiting_dots_after_every_reply_that_ends_with_a_finished_box():
    # Premise of fix 12: inside its loop over message groups (not only for the last group), the
    # Chatbot shows its waiting dots while generating after a group ending in a "done" assistant box.
    bundle = chatbot_bundle()
    per_group = re.search(
        r"`hidden`&&u\(\)&&C\(t\)\[C\(t\)\.length-1\]\.role===`assistant`"
        r"&&C\(t\)\[C\(t\)\.length-1\]\.metadata\?\.status===`done`",
        bundle,
    )
    assert per_group is not None
    assert "message bot pending" in bundle  # the dots' class, which fix 12's rule selects


def test_the_stray_dots_rule_spares_the_dots_after_the_last_reply():
    # Fix 12 hides only dots that have a later message row after them.
    assert ":has(~ .message-row)" in STRAY_WAITING_CSS and ".message.pending" in STRAY_WAITING_CSS


def test_a_sidebar_starts_open_and_has_a_toggle_button_to_close_it():
    # Premise of fix 13: Gradio opens a sidebar whatever the window's width; its toggle closes it.
    assert gr.Sidebar().open is True
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    assert any(
        'class="toggle-button' in path.read_text(errors="ignore")
        and "Toggle Sidebar" in path.read_text(errors="ignore")
        for path in assets.glob("Index-*.js")
    )
    assert ".sidebar.open > .toggle-button" in CLOSE_SIDEBAR_JS


def test_the_footer_keeps_a_divider_after_its_last_link_for_the_settings_link():
    # Premise of fix 14: a "·" follows the (hidden) recording button whether or not Settings is shown.
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    footer = '</button> <div class="divider svelte-zxu34v">·</div> <!></footer>'  # then, maybe, Settings
    assert any(footer in path.read_text(errors="ignore") for path in assets.glob("Blocks-*.js"))
    assert FOOTER_DIVIDER_CSS.startswith("footer > .divider:last-child")


def chat_and_other_stream() -> tuple[gr.Blocks, object, object]:
    """A page with a ChatInterface (its `_submit_fn`, and /chat) and the block function of each."""
    with gr.Blocks() as demo:
        gr.ChatInterface(lambda message, history: message, api_name="chat")
    functions = {fn.name: fn for fn in demo.fns.values()}
    api = next(fn for fn in demo.fns.values() if fn.api_name == "chat")
    return demo, functions["_submit_fn"], api


def stream_of(demo: gr.Blocks, block_fn: object, values: list[list[dict]]) -> list[list[object]]:
    """What Gradio sends for each of these yields of one run, then for the run's end (final)."""
    sent = [demo.handle_streaming_diffs(block_fn, [None, value], "session", "run", False) for value in values]
    sent.append(demo.handle_streaming_diffs(block_fn, [None, None], "session", "run", True))
    return sent


CHAT = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hel"}]
LONGER = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}]


def test_a_streams_last_message_carries_its_whole_last_value_again():
    # Premise of fix 15: the first yield goes whole, later ones as diffs, and the end repeats the
    # whole last value, which the stream has already shown.
    demo, submit, _ = chat_and_other_stream()
    first, second, final = stream_of(demo, submit, [CHAT, LONGER])
    assert first[1] == CHAT and second[1] == [["append", [1, "content"], "lo"]]
    assert final[1] == LONGER


def test_the_chats_stream_ends_with_no_change_instead_of_the_whole_chat():
    demo, submit, _ = chat_and_other_stream()
    complete_streams_without_resending(demo)
    first, second, final = stream_of(demo, submit, [CHAT, LONGER])
    assert first[1] == CHAT and second[1] == [["append", [1, "content"], "lo"]]
    assert final == [NO_CHANGE, NO_CHANGE]


def test_the_chat_apis_stream_still_ends_with_its_whole_result():
    demo, _, api = chat_and_other_stream()
    complete_streams_without_resending(demo)
    assert stream_of(demo, api, [CHAT, LONGER])[-1][1] == LONGER


def test_no_change_is_what_gradio_sends_for_a_skipped_output():
    # Premise of fix 15: the page leaves a value as it is for this update (what gr.skip() sends).
    assert gr.skip() == NO_CHANGE


async def test_the_page_shows_the_whole_answer_when_the_stream_ends_with_no_change():
    async def spell(message: str, history: list) -> AsyncIterator[str]:
        for end in range(1, len(message) + 1):
            yield message[:end]

    with gr.Blocks() as demo:
        gr.ChatInterface(spell)
    complete_streams_without_resending(demo)
    demo.queue().launch(prevent_thread_lock=True, quiet=True, server_port=free_port())
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            tab = PageChat(http, await PageConfig.fetch(http, demo.local_url))
            async with asyncio.timeout(10):
                async for _ in tab.send("streamed whole"):
                    pass
    finally:
        demo.close()
    assert tab.answer is not None and tab.answer.text == "streamed whole"
