"""An exchange as chat messages: thinking, tool and source boxes, the answer, and its receipt.

Every box is a `gr.ChatMessage` with a metadata title (Gradio draws it collapsible). The screen
is never read back: the conversation's exchanges are the record. Whatever came from Claude or a
tool is drawn through ui/markdown.py: its Markdown renders, its HTML shows as text, and its images
are links (unless remote images are allowed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import gradio as gr

from chat import blocks
from chat.context import ContextUse
from chat.errors import ChatError
from chat.exchange import Exchange, Status, Timings
from chat.offline import OFFLINE_MODEL
from chat.usage import PriceTable, Spend, TokenUsage, TurnStats, turn_stats
from ui.markdown import code_span, destination, fenced, is_web_address, link, literal, markdown
from ui.wording import say

BoxStatus = Literal["pending", "done"]
THINKING_TITLE = "Thinking"
REDACTED_TITLE = "Thinking (redacted)"
USAGE_TITLE = "Usage"
STOPPED_TITLE = "Stopped"
INTERRUPTED_TITLE = "Interrupted"
SOURCES_TITLE = "Sources"
NOTICE_TITLE = "\u26a0\ufe0f Error"
CONTEXT_WARNING_SIGN = "\u26a0\ufe0f"
FAILURE_CLASS = "chat-failure"  # a notice's body, so the page can draw its whole box as a failure
OFFLINE_COST = "offline: no cost"
_FAILURE_START = f'<div class="{FAILURE_CLASS}" role="alert">\n\n'
_FAILURE_END = "\n\n</div>"
NOT_RUN = "This app runs no tools, so Claude was told it could not be run."
# Inline code wraps anywhere rather than widening its message: a long unbroken run is shown as
# inline code (ui/gradio_fixes.py, fix 9), and Gradio's own rule lets it overflow the bubble.
MESSAGE_CSS = ".message-content code { overflow-wrap: anywhere !important; }"


@dataclass(frozen=True)
class Shown:
    """What to draw of one exchange: its blocks so far, its timings, and whether it is still live."""

    exchange: Exchange
    content: Sequence[dict[str, Any]]
    timings: Timings
    live: bool


def shown(
    exchange: Exchange, content: Sequence[dict[str, Any]] | None = None, timings: Timings | None = None
) -> Shown:
    """An exchange to draw (`content` and `timings` from the live reply while it streams)."""
    live = not exchange.status.ended
    return Shown(
        exchange, exchange.content if content is None else content, timings or exchange.timings, live
    )


def exchange_messages(
    item: Shown,
    prices: PriceTable | None = None,
    spend: Spend | None = None,
    *,
    allow_remote_images: bool = False,
    context: ContextUse | None = None,
    latest: bool = True,
) -> list[gr.ChatMessage]:
    """The chat messages of one answer: each block in order, cited sources, then how it ended.

    With `context` (how full the window was once it ended), the receipt says so, and from 80%
    a warning under the `latest` answer says what to do (once, not under every earlier one).
    An answer the offline model gave (its exchange says so) is priced at nothing.
    """
    messages: list[gr.ChatMessage] = []
    sources = blocks.Sources()

    def marker(citation: blocks.Citation) -> str:  # a numbered link to the cited page
        number = sources.number(citation)
        url = citation.url or ""
        return f" [[{number}]]({destination(url)})" if is_web_address(url) else f" [{number}]"

    texts: list[blocks.TextPart] = []
    parts = blocks.parts(item.content)
    if item.live:  # a text block just started has nothing to show yet: the box above it is still live
        parts = [p for p in parts if not (isinstance(p, blocks.TextPart) and not p.text)]

    def flush() -> None:
        if texts:
            text = blocks.joined_text(texts, marker)
            messages.append(gr.ChatMessage(content=markdown(text, allow_remote_images=allow_remote_images)))
            texts.clear()

    for index, part in enumerate(parts):
        if isinstance(part, blocks.TextPart):
            texts.append(part)
            continue
        flush()
        last = index == len(parts) - 1
        messages.append(_part_box(part, item, streaming=item.live and last, images=allow_remote_images))
    flush()
    if sources.cited:
        messages.append(
            box(SOURCES_TITLE, _sources_body(sources), log=f"{len(sources.cited)} cited", status="done")
        )
    exchange = item.exchange
    if exchange.status.ended:
        messages += _ending_notes(exchange)
        if prices is not None and exchange.status is not Status.FAILED:
            canned = exchange.model == OFFLINE_MODEL
            messages.append(usage_box(turn_stats(exchange, prices), spend, prices, context, offline=canned))
            if context is not None and context.near and latest:
                messages.append(context_warning(context))
        if exchange.error is not None:
            messages.append(notice_message(exchange.error))
        elif exchange.status is Status.FAILED:
            messages.append(notice_box("This answer did not finish."))
    return messages


def notice_message(error: ChatError) -> gr.ChatMessage:
    """A failure notice in a box of its own, under the partial answer (see ui/gradio_fixes.py)."""
    return notice_box(markdown(say(error)))


def notice_box(body: str) -> gr.ChatMessage:
    """A failure's box: its body marked so the page draws it as a failure, not as a receipt."""
    return gr.ChatMessage(content=f"{_FAILURE_START}{body}{_FAILURE_END}", metadata={"title": NOTICE_TITLE})


def notice_text(content: str) -> str:
    """What a failure's box says (its content without the mark `notice_box` puts around it)."""
    return content.removeprefix(_FAILURE_START).removesuffix(_FAILURE_END)


def box(
    title: str, body: str = "", log: str = "", status: BoxStatus | None = None, duration: float | None = None
) -> gr.ChatMessage:
    """A display-only box: pending shows a spinner and stays open; done closes it."""
    metadata: dict[str, Any] = {"title": title}
    if log:
        metadata["log"] = log
    if status:
        metadata["status"] = status
    if duration is not None:
        metadata["duration"] = duration
    return gr.ChatMessage(content=body, metadata=metadata)  # type: ignore[arg-type]


def _part_box(part: blocks.Part, item: Shown, *, streaming: bool, images: bool) -> gr.ChatMessage:
    if isinstance(part, blocks.ThinkingPart):
        return _thinking_box(part, item, streaming=streaming, images=images)
    if isinstance(part, blocks.RedactedThinkingPart):
        body = (
            "Part of Claude's thinking was encrypted by the API. It is kept and sent back to Claude, unread."
        )
        return box(REDACTED_TITLE, body, status="done")
    if isinstance(part, blocks.ToolCallPart):
        if part.server:
            title = literal(f"{blocks.tool_action(part, ongoing=streaming)}: {part.query or '…'}")
            return box(title, "", status="pending" if streaming else "done")
        body = f"{fenced(part.input_json(), 'json')}\n\n{NOT_RUN}"
        title = f"Tool call: {literal(part.name)}"
        return box(title, body, log="not run", status="pending" if streaming else "done")
    if isinstance(part, blocks.ToolResultPart):
        if part.error:
            return box(
                literal(f"{blocks.tool_result_name(part)} failed"),
                f"The tool reported {code_span(part.error)}.",
                status="done",
            )
        links = "\n".join(
            f"- {link(s.title, s.url)}" + (f" ({literal(s.page_age)})" if s.page_age else "")
            for s in part.sources
        )
        count = len(part.sources)
        if part.type == "web_search_tool_result":
            return box(f"Found {count} source{'s' * (count != 1)}", links, status="done")
        return box(literal(f"{blocks.tool_result_name(part)} result"), links, status="done")
    assert isinstance(part, blocks.OtherBlock)
    body = (
        f"Claude sent a {code_span(part.type)} block, which this app cannot show yet. "
        "It is kept in the conversation."
    )
    return box(f"Unsupported block: {literal(part.type)}", body, status="done")


def _thinking_box(part: blocks.ThinkingPart, item: Shown, *, streaming: bool, images: bool) -> gr.ChatMessage:
    text = markdown(part.text, allow_remote_images=images)
    if streaming:
        return box(THINKING_TITLE, text, status="pending")
    timings = item.timings
    ends = timings.answer_started if timings.answer_started is not None else timings.finished
    started = timings.first_token or 0.0
    stopped = timings.answer_started is None and item.exchange.status is Status.STOPPED
    duration = None if ends is None else round(max(ends - started, 0.0), 1)
    return box(THINKING_TITLE, text, log="stopped" if stopped else "", status="done", duration=duration)


def _sources_body(sources: blocks.Sources) -> str:
    lines = []
    for number, citation in sources.cited:
        words = (
            link(citation.title or citation.url, citation.url)
            if citation.url
            else literal(citation.title or "")
        )
        quote = f"\n   > {literal(citation.cited_text)}" if citation.cited_text else ""
        lines.append(f"{number}. {words}{quote}")
    return "\n".join(lines)


def _ending_notes(exchange: Exchange) -> list[gr.ChatMessage]:
    if exchange.status is Status.STOPPED and exchange.error is not None:  # by a restart, not by Stop
        return [box(INTERRUPTED_TITLE, markdown(say(exchange.error)), status="done")]
    if exchange.status is Status.STOPPED:
        received = turn_stats(exchange, PriceTable({})).usage.output
        body = "You stopped this answer. What arrived stays in the conversation, as shown."
        return [box(STOPPED_TITLE, body, log=f"≈ {received:,} tokens received", status="done")]
    stop_reason = exchange.stop_reason
    if stop_reason == "max_tokens":
        limit = exchange.request.get("max_tokens", 0)
        body = (
            f"The answer reached the max tokens limit ({limit:,} tokens, thinking included). "
            "Ask Claude to continue, or raise Max tokens in Settings and retry."
        )
        return [box("Cut off at max tokens", body, log=f"limit {limit:,} tokens")]
    if stop_reason == "model_context_window_exceeded":
        body = (
            "The conversation filled the model's context window. Undo or edit earlier turns, "
            "or clear the chat and start again with a summary."
        )
        return [box("Cut off: context window full", body)]
    if stop_reason == "refusal":
        return [box("Claude declined to continue", "Rephrase the request, or start a new chat.")]
    if stop_reason == "pause_turn":  # the API pauses a long server-tool turn (many searches)
        body = (
            "Claude paused this answer: its web searches took long enough that the API handed the "
            "turn back. Send \u201ccontinue\u201d to let it go on from here."
        )
        return [box("Paused mid-answer", body)]
    if stop_reason == "tool_use":
        return [box("Claude asked for a tool", "This app runs no tools. Ask Claude to answer without it.")]
    return []


def usage_box(
    stats: TurnStats,
    spend: Spend | None,
    prices: PriceTable,
    context: ContextUse | None = None,
    *,
    offline: bool = False,
) -> gr.ChatMessage:
    """The compact usage line of one answer, with the conversation's total in its body."""
    if offline:  # canned replies: their tokens are counted, but nothing is billed
        spend = None
    approx = "≈ " if stats.estimated else ""
    cost = OFFLINE_COST if offline else _cost(stats.cost, approx)
    parts = [f"{approx}{_usage_line(stats.usage)}", cost]
    if stats.time_to_first_token is not None:
        parts.append(f"{stats.time_to_first_token:.2f} s to first token")
    if stats.tokens_per_second is not None:
        parts.append(f"{approx}{stats.tokens_per_second:.0f} tokens/s")
    if context is not None:
        parts.append(context_line(context))
    model = literal(stats.model)
    body = [f"This answer ({model}): {approx}{_usage_detail(stats.usage)}; {cost}."]
    if stats.estimated:
        body.append("Output tokens are estimated: the API reports them only when an answer ends.")
    if spend is not None and spend.answers:
        total = "≈ " if spend.estimated else ""
        unpriced = (
            f" ({spend.unpriced} answer(s) from unpriced models not included)" if spend.unpriced else ""
        )
        body.append(
            f"This chat so far ({spend.answers} answer{'s' * (spend.answers > 1)}, retries and stops "
            f"included): {_usage_detail(spend.usage)}; {total}${spend.cost:.4f}{unpriced}."
        )
    if context is not None:
        body.append(
            f"{context_line(context)} ({_percent(context)}% of the model's context window): what the "
            "next message starts from."
        )
    if offline:
        body.append("The offline demo model's replies are canned: nothing is sent to Claude or billed.")
    else:
        body.append(f"Costs are estimates from list prices checked {prices.checked}: {prices.source}")
    return box(USAGE_TITLE, "\n\n".join(body), log=" · ".join(parts), status="done")


def context_meter(context: ContextUse) -> str:
    """The page's standing meter: the context line, with a warning sign and the share from 80% full."""
    if context.near:
        return f"{CONTEXT_WARNING_SIGN} **{context_line(context)}** ({_percent(context)}% full)"
    return context_line(context)


def context_line(context: ContextUse) -> str:
    """The meter: "Context: 12.3k of 200k tokens"."""
    return f"Context: {short_count(context.used)} of {short_count(context.window)} tokens"


def context_warning(context: ContextUse) -> gr.ChatMessage:
    """The warning from 80% of the context window: how full it is, and what to do before it fills."""
    body = (
        f"This chat uses {short_count(context.used)} of the model's {short_count(context.window)}-token "
        "context window. Start a new chat (or undo earlier turns) soon: a message that does not fit "
        "is refused, and nothing is sent."
    )
    return box(f"{CONTEXT_WARNING_SIGN} Context {_percent(context)}% full", body)


def short_count(tokens: int) -> str:
    """A token count as people say it: 950, 12.3k, 200k, 1.2M."""
    if tokens < 1_000:
        return str(tokens)
    size, suffix = (1_000, "k") if round(tokens / 1_000, 1) < 1_000 else (1_000_000, "M")
    return f"{tokens / size:.1f}".removesuffix(".0") + suffix


def _percent(context: ContextUse) -> int:
    return int(context.fraction * 100)  # rounded down: 79.9% full does not read as 80%


def _usage_line(usage: TokenUsage) -> str:
    line = f"{usage.input:,} in · {usage.output:,} out"
    if usage.cache_read:
        line += f" · {usage.cache_read:,} cache read"
    if usage.cache_write:
        line += f" · {usage.cache_write:,} cache write"
    return "".join([line, *(f" · {uses}" for uses in _tool_uses(usage))])


def _usage_detail(usage: TokenUsage) -> str:
    tokens = (
        f"{usage.input:,} input, {usage.cache_read:,} cache-read, {usage.cache_write:,} cache-write "
        f"and {usage.output:,} output tokens"
    )
    return ", ".join([tokens, *_tool_uses(usage)])


def _tool_uses(usage: TokenUsage) -> list[str]:
    """The server tools' uses, in words: "2 searches", "1 page fetched"."""
    uses = []
    if usage.web_searches:
        uses.append(f"{usage.web_searches:,} search{'es' * (usage.web_searches != 1)}")
    if usage.web_fetches:
        uses.append(f"{usage.web_fetches:,} page{'s' * (usage.web_fetches != 1)} fetched")
    return uses


def _cost(cost: float | None, approx: str) -> str:
    if cost is None:
        return "cost unknown (no price for this model)"
    if 0 < cost < 0.0001:
        return "< $0.0001"
    return f"{approx}${cost:.4f}" if cost < 1 else f"{approx}${cost:.2f}"
