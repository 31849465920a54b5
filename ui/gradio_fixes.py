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
8. The Chatbot's Markdown lexer (marked) is quadratic on a long unbroken run of characters that
   could be part of an e-mail address (letters, digits, `._-+/=`...) and hold `_`, `*`, `~` or
   backticks: at each of those it scans the rest of the run for an `@`, and its emphasis rule
   scans it for a closing delimiter. 100,000 characters of `snake_case_` froze the tab for 89 s
   (26 s before they showed); 300,000 for 9 minutes. Breaking the run up does not help (escaped
   delimiters make a token each, and marked's token walk is quadratic in tokens), but inside
   inline code nothing is lexed: `long_runs_as_code` shows each run longer than 1,000 characters
   as inline code, which is also what such a run (a hash, base64, minified code) usually is.
   The Chatbot also takes `$$...$$` out as LaTeX before Markdown (`LATEX_DELIMITER`, its default).
9. Gradio 6 moved `css=` from Blocks to launch(), with a warning, but the page's own look (inline
   code that wraps, for fix 8) belongs to the page, not to how it is served: `page_blocks` passes
   it to Blocks, which still hands it on at launch, without the warning.
"""

from __future__ import annotations

import asyncio
import functools
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import gradio as gr
from gradio.components.multimodal_textbox import MultimodalData
from gradio.context import get_blocks_context
from gradio.events import EventListener

from chat.attachments import ACCEPTED_SUFFIXES

GRADIO_VERSION = "6.31.0"  # the version these workarounds were checked against
LATEX_DELIMITER = "$$"  # the Chatbot's only default LaTeX delimiter, left and right (fix 8)
LONG_RUN = 1_000  # fix 8: a longer run of e-mail characters is shown as inline code
_EMAIL_CHARACTER = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]"
_LONG_RUN = re.compile(rf"(?<!{_EMAIL_CHARACTER}){_EMAIL_CHARACTER}{{{LONG_RUN + 1},}}")  # from a run's start
_BACKTICKS = re.compile(r"`+")


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


def long_runs_as_code(text: str) -> str:
    """Fix 8: each run of more than LONG_RUN e-mail characters as inline code (nothing in it is lexed)."""

    def as_code(match: re.Match[str]) -> str:
        run = match.group()
        fence = "`" * (max((len(ticks) for ticks in _BACKTICKS.findall(run)), default=0) + 1)
        pad = " " if run.startswith("`") or run.endswith("`") else ""
        return f"{fence}{pad}{run}{pad}{fence}"

    return _LONG_RUN.sub(as_code, text)


def page_blocks(css: str, **options: Any) -> gr.Blocks:
    """Fix 9: a Blocks page carrying its own CSS (Gradio 6 would rather have it passed to launch())."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The parameters have been moved from the Blocks", UserWarning)
        return gr.Blocks(css=css, **options)
