"""What to show for a reply, as plain data: the UI maps it onto its own chat messages.

A reply shows as an optional thinking box, the answer text, then notes (stopped, cut off,
declined) and a usage line. Everything but the answer text is display-only: the UI must mark
it so (Gradio: a metadata title) and the history never sends it to Claude.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chat.history import display_only, same_words, text_of
from chat.reply import Reply, ReplyStatus
from chat.usage import PriceTable, Spend, TokenUsage, TurnStats, turn_stats

BoxStatus = Literal["pending", "done"]


@dataclass(frozen=True)
class Box:
    """A collapsible, display-only box: a title, a short line beside it, and a body."""

    title: str
    body: str = ""
    log: str = ""
    status: BoxStatus | None = None  # pending: spinner, open; done: closed; None: open
    duration: float | None = None


@dataclass(frozen=True)
class ReplyView:
    """A reply as the screen should show it right now."""

    thinking: Box | None
    answer: str
    notes: tuple[Box, ...] = ()


THINKING_TITLE = "Thinking"
USAGE_TITLE = "Usage"
STOPPED_TITLE = "Stopped"


def reply_view(reply: Reply, prices: PriceTable | None = None, spend: Spend | None = None) -> ReplyView:
    """The view of a reply: live while it streams; with its receipt once it has ended."""
    notes: list[Box] = []
    if reply.ended:
        notes += _ending_notes(reply)
        if prices is not None and reply.status is not ReplyStatus.FAILED:
            notes.append(usage_box(turn_stats(reply, prices), spend, prices))
    return ReplyView(_thinking_box(reply), reply.text, tuple(notes))


def unmarked_stopped_turn(shown: Sequence[Mapping[str, Any]], reply: Reply) -> int | None:
    """Where the stopped reply's turn starts on screen, if it is the last turn and not marked yet.

    The index is that of its user message; None when the screen shows another turn last
    (after an undo, say) or already shows the receipt.
    """
    if reply.status is not ReplyStatus.STOPPED:
        return None
    users = [index for index, message in enumerate(shown) if message.get("role") == "user"]
    if not users:
        return None
    turn = shown[users[-1] + 1 :]
    asked = reply.request["messages"][-1]["content"]
    answer = " ".join(text_of(m.get("content")) for m in turn if not display_only(m)).split()
    if not same_words(text_of(asked), text_of(shown[users[-1]].get("content"))):
        return None
    if answer != reply.text.split()[: len(answer)]:
        return None
    if any((m.get("metadata") or {}).get("title") == STOPPED_TITLE for m in turn):
        return None
    return users[-1]


def usage_box(stats: TurnStats, spend: Spend | None, prices: PriceTable) -> Box:
    """The compact usage line of one answer, with the conversation's total in its body."""
    approx = "≈ " if stats.estimated else ""
    parts = [f"{approx}{_usage_line(stats.usage)}", _cost(stats.cost, approx)]
    if stats.time_to_first_token is not None:
        parts.append(f"{stats.time_to_first_token:.2f} s to first token")
    if stats.tokens_per_second is not None:
        parts.append(f"{approx}{stats.tokens_per_second:.0f} tokens/s")
    body = [
        f"This answer ({stats.model}): {approx}{_usage_detail(stats.usage)}; {_cost(stats.cost, approx)}."
    ]
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
    body.append(f"Costs are estimates from list prices checked {prices.checked}: {prices.source}")
    return Box(USAGE_TITLE, "\n\n".join(body), log=" · ".join(parts), status="done")


def _thinking_box(reply: Reply) -> Box | None:
    if not reply.thinking:
        return None
    thinking_ends = reply.answer_started_at or reply.finished_at
    if thinking_ends is None:
        return Box(THINKING_TITLE, reply.thinking, status="pending")
    started = reply.first_token_at or reply.started_at
    log = "stopped" if reply.answer_started_at is None and reply.status is ReplyStatus.STOPPED else ""
    return Box(
        THINKING_TITLE, reply.thinking, log=log, status="done", duration=round(thinking_ends - started, 1)
    )


def _ending_notes(reply: Reply) -> list[Box]:
    if reply.status is ReplyStatus.STOPPED:
        received = turn_stats(reply, PriceTable({})).usage.output
        body = "You stopped this answer. What arrived stays in the conversation, as shown."
        return [Box(STOPPED_TITLE, body, log=f"≈ {received:,} tokens received", status="done")]
    stop_reason = reply.message.stop_reason if reply.message is not None else None
    if stop_reason == "max_tokens":
        limit = reply.request.get("max_tokens")
        body = (
            f"The answer reached the max tokens limit ({limit:,} tokens, thinking included). "
            "Ask Claude to continue, or raise Max tokens in Settings and retry."
        )
        return [Box("Cut off at max tokens", body, log=f"limit {limit:,} tokens")]
    if stop_reason == "model_context_window_exceeded":
        body = (
            "The conversation filled the model's context window. Undo or edit earlier turns, "
            "or clear the chat and start again with a summary."
        )
        return [Box("Cut off: context window full", body)]
    if stop_reason == "refusal":
        return [Box("Claude declined to continue", "Rephrase the request, or start a new chat.")]
    return []


def _usage_line(usage: TokenUsage) -> str:
    line = f"{usage.input:,} in · {usage.output:,} out"
    if usage.cache_read:
        line += f" · {usage.cache_read:,} cache read"
    if usage.cache_write:
        line += f" · {usage.cache_write:,} cache write"
    return line


def _usage_detail(usage: TokenUsage) -> str:
    return (
        f"{usage.input:,} input, {usage.cache_read:,} cache-read, {usage.cache_write:,} cache-write "
        f"and {usage.output:,} output tokens"
    )


def _cost(cost: float | None, approx: str) -> str:
    if cost is None:
        return "cost unknown (no price for this model)"
    if 0 < cost < 0.0001:
        return "< $0.0001"
    return f"{approx}${cost:.4f}" if cost < 1 else f"{approx}${cost:.2f}"
