"""Tokens, estimated cost and speed of each answer, and the running total of a conversation."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chat.exchange import Exchange, Status

PRICES_FILE = Path(__file__).with_name("prices.json")
CHARS_PER_TOKEN = 4  # rough, for answers stopped before the API reported their output tokens
_DATE_SUFFIX = re.compile(r"-\d{8}$")


@dataclass(frozen=True)
class TokenUsage:
    """Token counts as the API bills them."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    web_searches: int = 0  # server tool uses: not tokens, billed per use
    web_fetches: int = 0

    @classmethod
    def from_api(cls, usage: Mapping[str, Any]) -> TokenUsage:
        """Read the API's usage (as plain data; the 1-hour cache writes are split out when it says)."""
        written = usage.get("cache_creation_input_tokens") or 0
        one_hour = (usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens") or 0
        server_tools = usage.get("server_tool_use")
        if not isinstance(server_tools, Mapping):  # a loaded export may hold anything here
            server_tools = {}
        return cls(
            input=usage.get("input_tokens") or 0,
            output=usage.get("output_tokens") or 0,
            cache_read=usage.get("cache_read_input_tokens") or 0,
            cache_write_5m=written - one_hour,
            cache_write_1h=one_hour,
            web_searches=_count(server_tools.get("web_search_requests")),
            web_fetches=_count(server_tools.get("web_fetch_requests")),
        )

    @property
    def cache_write(self) -> int:
        """Tokens written to the prompt cache, whatever their lifetime."""
        return self.cache_write_5m + self.cache_write_1h

    @property
    def prompt(self) -> int:
        """All prompt tokens: uncached input, cache reads and cache writes."""
        return self.input + self.cache_read + self.cache_write

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write_5m + other.cache_write_5m,
            self.cache_write_1h + other.cache_write_1h,
            self.web_searches + other.web_searches,
            self.web_fetches + other.web_fetches,
        )


@dataclass(frozen=True)
class Prices:
    """US dollars per million tokens for one model."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    long_prompt: Prices | None = None  # the rates when the prompt exceeds long_prompt_above tokens
    long_prompt_above: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prices:
        """Read one model's entry of prices.json."""
        rates = {name: float(data[name]) for name in ("input", "output", "cache_write_5m", "cache_write_1h")}
        long_prompt = data.get("long_prompt")
        return cls(
            **rates,
            cache_read=float(data["cache_read"]),
            long_prompt=cls.from_dict(long_prompt) if long_prompt else None,
            long_prompt_above=int(long_prompt["above_tokens"]) if long_prompt else 0,
        )

    def cost(self, usage: TokenUsage) -> float:
        """The list price of these tokens, in US dollars."""
        if self.long_prompt is not None and usage.prompt > self.long_prompt_above:
            return self.long_prompt.cost(usage)
        dollars_per_million = (
            usage.input * self.input
            + usage.output * self.output
            + usage.cache_read * self.cache_read
            + usage.cache_write_5m * self.cache_write_5m
            + usage.cache_write_1h * self.cache_write_1h
        )
        return dollars_per_million / 1_000_000


@dataclass(frozen=True)
class ToolPrices:
    """US dollars per 1,000 uses of each server tool, on top of the tokens its results add."""

    web_search_per_1000: float = 0.0
    web_fetch_per_1000: float = 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolPrices:
        """Read the `server_tools` entry of prices.json."""
        return cls(float(data["web_search_per_1000"]), float(data["web_fetch_per_1000"]))

    def cost(self, usage: TokenUsage) -> float:
        """The list price of these tool uses, in US dollars."""
        return (
            usage.web_searches * self.web_search_per_1000 + usage.web_fetches * self.web_fetch_per_1000
        ) / 1000


@dataclass(frozen=True)
class PriceTable:
    """Prices by model id (and of the server tools), with where they came from and when checked."""

    models: Mapping[str, Prices]
    source: str = ""
    checked: str = ""
    tools: ToolPrices = field(default_factory=ToolPrices)

    @classmethod
    def load(cls, path: Path = PRICES_FILE) -> PriceTable:
        """Read the table kept in chat/prices.json."""
        data = json.loads(path.read_text(encoding="utf-8"))
        models = {model: Prices.from_dict(entry) for model, entry in data["models"].items()}
        tools = ToolPrices.from_dict(data["server_tools"]) if "server_tools" in data else ToolPrices()
        return cls(models, data.get("source", ""), data.get("checked", ""), tools)

    def for_model(self, model: str) -> Prices | None:
        """The prices of a model id (a dated id falls back to its alias), None if unknown."""
        return self.models.get(model) or self.models.get(_DATE_SUFFIX.sub("", model))


@dataclass(frozen=True)
class TurnStats:
    """What one answer used, cost and how fast it came."""

    model: str
    usage: TokenUsage
    cost: float | None  # None: no price known for the model
    estimated: bool  # the output tokens are estimated: the answer stopped before the API counted them
    time_to_first_token: float | None
    tokens_per_second: float | None


def turn_stats(exchange: Exchange, prices: PriceTable) -> TurnStats:
    """The usage of an ended exchange (its output estimated when partial), priced from the table."""
    asked = str(exchange.request.get("model", ""))
    reported = TokenUsage.from_api(exchange.usage) if exchange.usage else TokenUsage()
    estimated = exchange.partial
    usage = (
        replace(reported, output=estimate_tokens(exchange.thinking + exchange.text))
        if estimated
        else reported
    )
    model = exchange.model
    model_prices = prices.for_model(model) or prices.for_model(asked)
    timings = exchange.timings
    return TurnStats(
        model=model,
        usage=usage,
        cost=model_prices.cost(usage) + prices.tools.cost(usage) if model_prices else None,
        estimated=estimated,
        time_to_first_token=timings.first_token,
        tokens_per_second=_rate(usage.output, timings.first_token, timings.finished),
    )


def tokens_used(exchange: Exchange) -> int:
    """Tokens an exchange cost: the API's count when complete, an estimate when cut short."""
    if exchange.status is Status.COMPLETE and exchange.usage:
        usage = TokenUsage.from_api(exchange.usage)
        return usage.prompt + usage.output
    if exchange.usage is None and not (exchange.text or exchange.thinking):
        return 0  # nothing reached Claude, or nothing came back
    usage = turn_stats(exchange, PriceTable({})).usage
    return usage.prompt + usage.output


def estimate_tokens(text: str) -> int:
    """A rough token count for text the API has not counted (about four characters a token)."""
    return -(-len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Spend:
    """The running total of a conversation: every answer asked for, retried and stopped ones too."""

    answers: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost: float = 0.0
    unpriced: int = 0  # answers from models with no known price (not in `cost`)
    estimated: bool = False

    def plus(self, stats: TurnStats) -> Spend:
        """This total with one more answer."""
        return Spend(
            answers=self.answers + 1,
            usage=self.usage + stats.usage,
            cost=self.cost + (stats.cost or 0.0),
            unpriced=self.unpriced + (stats.cost is None),
            estimated=self.estimated or stats.estimated,
        )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _rate(tokens: int, start: float | None, end: float | None) -> float | None:
    span = None if start is None or end is None else max(end - start, 0.0)
    return tokens / span if span and tokens else None
