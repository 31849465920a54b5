"""Every workaround of Gradio 6.31's behaviour, in one place (tests/test_gradio_fixes.py pins the version).

1. `gr.Error` raised from a ChatInterface generator covers the chat with an "Error" overlay,
   hides the partial answer and leaves the message box disabled: failures are drawn as a titled
   notice box instead (ui/render.py `notice_message`), plus a `gr.Warning` toast.
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
   on its `_append_message_to_history` step (the sidebar lists a new chat at once), and
   `after_answers` on its copy of the screen into its state after an answer.
8. Gradio keeps a closed tab's session (each updated component's config, copied per session)
   until `state_session_capacity` newer sessions push it out, and its gr.State values an hour;
   a `time_to_live` only counts from an event that output the state, never for one only read.
   `forget_closed_sessions` drops a session whole when its tab closes (its heartbeat stops), and
   `start_expiry` outputs a state once on page load, so its `time_to_live` runs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import gradio as gr
from gradio.components.multimodal_textbox import MultimodalData
from gradio.context import get_blocks_context
from gradio.events import EventListener

from chat.attachments import ACCEPTED_SUFFIXES

GRADIO_VERSION = "6.31.0"  # the version these workarounds were checked against


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
        if block_fn.name == "_append_message_to_history":
            _after(index)(fn, inputs, outputs, **QUIET)


def after_answers(interface: gr.ChatInterface, fn: Any, inputs: list[Any], outputs: list[Any]) -> None:
    """Fix 7: run `fn` after each answer, once ChatInterface has copied the screen into its state."""
    for index in _state_copies_after_answers(interface):
        _after(index)(fn, inputs, outputs, **QUIET)


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
        [interface.chatbot, *inputs],
        [interface.chatbot, interface.chatbot_state],
    )


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


def forget_closed_sessions(demo: gr.Blocks) -> None:
    """Fix 8: when a tab closes (its heartbeat stops), drop its whole session, its gr.State values
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
    """Fix 8: output `state` (the same object) on each page load, so its `time_to_live` counts."""
    demo.load(lambda value: value, state, state, queue=False, **QUIET)
