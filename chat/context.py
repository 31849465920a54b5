"""How full a conversation's context window is, and the check made before a request that may not fit.

The meter reads the last ended exchange's usage: its prompt (uncached input, cache reads and
writes) plus its answer is what the next request starts from. Near the window, a request is
counted with `messages.count_tokens` before it is sent, and refused if it and its max_tokens do
not fit; when counting fails (the network, a provider without it) the request goes anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chat.errors import ChatError, ErrorKind
from chat.exchange import Exchange
from chat.limits import worst_case_tokens
from chat.usage import PriceTable, turn_stats

log = logging.getLogger(__name__)

NEAR_FRACTION = 0.8  # from here the meter warns, and a request is counted before it is sent
COUNT_TIMEOUT = 10.0  # seconds count_tokens may take before the request is sent uncounted
# What count_tokens takes of a Messages request (anthropic/types/message_count_tokens_params.py).
COUNT_FIELDS = (
    "messages",
    "model",
    "system",
    "thinking",
    "tools",
    "tool_choice",
    "output_config",
    "cache_control",
)


@dataclass(frozen=True)
class ContextUse:
    """Tokens a conversation's next request starts from, out of its model's context window."""

    used: int
    window: int

    @property
    def fraction(self) -> float:
        """How full the window is (1.0: full)."""
        return self.used / self.window if self.window > 0 else 0.0

    @property
    def near(self) -> bool:
        """True from 80% full."""
        return self.fraction >= NEAR_FRACTION


def tokens_after(exchange: Exchange) -> int | None:
    """The tokens a request after this exchange starts from (None: the API reported no usage)."""
    if not exchange.status.ended or exchange.usage is None:
        return None
    usage = turn_stats(exchange, PriceTable({})).usage  # a cut-short answer's output is estimated
    return usage.prompt + usage.output


def context_use(exchanges: Sequence[Exchange], window: int) -> ContextUse:
    """The context the next request starts from: the last ended exchange with a usage says."""
    for exchange in reversed(exchanges):
        used = tokens_after(exchange)
        if used is not None:
            return ContextUse(used, window)
    return ContextUse(0, window)


def estimate(used: int, request: Mapping[str, Any]) -> int:
    """A generous bound on a request's tokens: the context so far, its new message, and its max_tokens."""
    messages = request.get("messages") or []
    prompt = worst_case_tokens({"messages": messages[-1:]}) if messages else 0
    return used + prompt + int(request.get("max_tokens", 0))


def needs_count(used: int, request: Mapping[str, Any], window: int) -> bool:
    """True when the request may come near the window: count it before sending."""
    return estimate(used, request) >= NEAR_FRACTION * window


async def check_fits(client: Any, request: Mapping[str, Any], window: int) -> int | None:
    """Count the request's input tokens; raise ChatError (CONTEXT_TOO_LONG) when it and its max_tokens
    exceed the window. Return the count, or None when counting failed (the request is sent anyway)."""
    params = {key: request[key] for key in COUNT_FIELDS if key in request}
    model = str(request.get("model", ""))
    try:
        counter = client.with_options(max_retries=0, timeout=COUNT_TIMEOUT)
        counted = int((await counter.messages.count_tokens(**params)).input_tokens)
    except Exception as exc:
        log.warning("count_tokens failed (%s: %s); sending to %s uncounted", type(exc).__name__, exc, model)
        return None
    max_tokens = int(request.get("max_tokens", 0))
    if counted + max_tokens <= window:
        return counted
    raise ChatError(
        ErrorKind.CONTEXT_TOO_LONG,
        f"With this message the conversation is {counted:,} tokens long; with up to {max_tokens:,} "
        f"more for the answer it would not fit the {window:,}-token context window of {model}. "
        "Nothing was sent.",
        counted=counted,
        max_tokens=max_tokens,
        window=window,
        model=model,
    )
